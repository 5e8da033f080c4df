//! Parity: for 100 000 random flows the BPF program picks the backend that tenbin-core's
//! Maglev table gives for `flow_hash` (root only).
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use tenbin_core::flow::{flow_hash, FlowKey};
use tenbin_core::maglev::{MaglevEntry, MaglevTable};
use tenbin_core::BackendId;
use tenbin_testkit::skip;
use tenbin_xdp::abi::{Mode, RING_SIZE};
use tenbin_xdp::control::{Controller, MaglevRings};
use tenbin_xdp::loader::{Program, XDP_TX};
use tenbin_xdp::packet::{outer, Frame, SYN};

#[test]
fn bpf_matches_core_maglev_for_100k_flows() {
    if !skip::need_root("BPF_PROG_TEST_RUN") {
        return;
    }
    // Weighted backends, both families, so that weights and v6 hashing are covered.
    let mut b4 = backends(&[v4(1), v4(2), v4(3), v4(4), v4(5)], 1);
    let mut b6 = backends(&[v6(1), v6(2), v6(3)], 11);
    for (b, w) in b4.iter_mut().zip([1, 2, 3, 5, 8]) {
        b.weight = w;
    }
    b6[2].weight = 4;
    let mut spec = spec();
    spec.vips = vec![
        vip("10.0.0.1", 0, 6, Mode::Ipip, b4.clone()),
        vip("2001:db8:ffff::1", 0, 17, Mode::Gre, b6.clone()),
    ];
    let mut mux = Controller::new(Program::mux(65_536).unwrap(), MaglevRings);
    mux.apply(&spec).unwrap();

    let table = |bs: &[tenbin_xdp::control::BackendSpec]| {
        let keys: Vec<String> = bs.iter().map(|b| b.addr.to_string()).collect();
        let entries: Vec<MaglevEntry<'_>> = bs
            .iter()
            .zip(&keys)
            .map(|(b, k)| MaglevEntry {
                id: BackendId(mux.backend_id(b.addr).unwrap()),
                key: k.as_bytes(),
                weight: b.weight,
            })
            .collect();
        MaglevTable::build(&entries, RING_SIZE).unwrap()
    };
    let (t4, t6) = (table(&b4), table(&b6));

    let mut rng = Rng(0x1234_5678_9abc_def0);
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..100_000u32 {
        let x = rng.next();
        let (key, t) = if i % 2 == 0 {
            let k = FlowKey::v4(
                Ipv4Addr::from((x >> 32) as u32),
                x as u16,
                Ipv4Addr::new(10, 0, 0, 1),
                (x >> 16) as u16,
                6,
            );
            (k, &t4)
        } else {
            let src = Ipv6Addr::from((u128::from(x) << 64) | u128::from(rng.next()));
            let k = FlowKey::v6(
                src,
                x as u16,
                "2001:db8:ffff::1".parse().unwrap(),
                (x >> 16) as u16,
                17,
            );
            (k, &t6)
        };
        let want = t.lookup(u64::from(flow_hash(&key, SEED))).unwrap();
        let out = mux
            .writer()
            .run(&Frame::new(key).flags(SYN).build(), 1)
            .unwrap();
        assert_eq!(out.action, XDP_TX, "flow {i}");
        let dst: IpAddr = outer(&out.frame).unwrap().dst;
        let got = mux.backend_id(dst).unwrap();
        assert_eq!(got, want.0, "flow {i}: {key:?}");
        *seen.entry(got).or_insert(0u32) += 1;
    }
    // Every backend got flows (the check is not vacuous).
    assert_eq!(seen.len(), 8, "{seen:?}");
}
