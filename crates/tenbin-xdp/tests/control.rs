//! Control plane against the in-memory maps: no root needed.
mod common;

use std::net::Ipv4Addr;

use common::*;
use tenbin_core::flow::FlowKey;
use tenbin_core::ServerState;
use tenbin_xdp::abi::{Mode, RING_SIZE};
use tenbin_xdp::control::{ControlError, Controller, MaglevRings};
use tenbin_xdp::writer::{MemWriter, Pick};

fn ctl() -> Controller<MemWriter, MaglevRings> {
    let mut c = Controller::new(MemWriter::new(), MaglevRings);
    c.apply(&spec()).unwrap();
    c
}

fn flows(n: usize) -> Vec<FlowKey> {
    let mut r = Rng(7);
    (0..n)
        .map(|_| {
            let x = r.next();
            FlowKey::v4(
                Ipv4Addr::from((x >> 32) as u32),
                x as u16,
                Ipv4Addr::new(10, 0, 0, 1),
                80,
                6,
            )
        })
        .collect()
}

fn backend_of(c: &Controller<MemWriter, MaglevRings>, k: &FlowKey) -> Option<u32> {
    match c.writer().pick(k) {
        Pick::Backend { backend, .. } => Some(backend),
        _ => None,
    }
}

#[test]
fn first_apply_programs_everything_and_spreads_flows() {
    let c = ctl();
    let w = c.writer();
    assert_eq!(w.vips.len(), 7);
    assert_eq!(w.backends.len(), 6);
    // Six rings: the VIP without backends has none.
    assert_eq!(w.rings.len(), 6);
    assert!(w.rings.values().all(|r| r.len() == RING_SIZE as usize));
    let ids: Vec<u32> = [v4(1), v4(2), v4(3)]
        .iter()
        .map(|a| c.backend_id(*a).unwrap())
        .collect();
    let mut per = [0usize; 3];
    for k in flows(30_000) {
        let b = backend_of(&c, &k).unwrap();
        per[ids.iter().position(|i| *i == b).unwrap()] += 1;
    }
    for n in per {
        assert!(n.abs_diff(10_000) < 1_000, "{per:?}");
    }
}

#[test]
fn reapplying_the_same_spec_writes_no_ring() {
    let mut c = ctl();
    let swaps = c.writer().swaps.clone();
    let r = c.apply(&spec()).unwrap();
    assert!(r.rings_swapped.is_empty() && r.vips_added.is_empty() && r.backends_added.is_empty());
    assert_eq!(c.writer().swaps, swaps);
}

#[test]
fn removing_a_backend_moves_only_its_flows() {
    let mut c = ctl();
    let gone = c.backend_id(v4(2)).unwrap();
    let before: Vec<(FlowKey, u32)> = flows(20_000)
        .into_iter()
        .map(|k| (k, backend_of(&c, &k).unwrap()))
        .collect();
    let mut s = spec();
    s.vips[0].backends.remove(1);
    let r = c.apply(&s).unwrap();
    let vid = c.vip_id("10.0.0.1".parse().unwrap(), 80, 6).unwrap();
    assert_eq!(
        r.rings_swapped,
        vec![vid],
        "only the changed VIP's ring is swapped"
    );
    // Still a member of other VIPs: record kept, id kept.
    assert_eq!(c.backend_id(v4(2)), Some(gone));
    // Maglev's ring keeps almost every surviving slot (the flow table keeps the rest of the
    // established flows in place; see the BPF fixtures).
    let (mut moved, mut survivors, mut shuffled) = (0, 0, 0);
    for (k, b) in before {
        let now = backend_of(&c, &k).unwrap();
        assert_ne!(now, gone);
        if b != gone {
            survivors += 1;
            shuffled += usize::from(now != b);
        } else {
            moved += 1;
        }
    }
    assert!(moved > 5_000, "{moved}");
    assert!(
        shuffled * 100 < survivors,
        "{shuffled} of {survivors} surviving flows moved"
    );
}

#[test]
fn draining_keeps_the_record_but_leaves_the_ring() {
    let mut c = ctl();
    let mut s = spec();
    for v in &mut s.vips {
        for b in &mut v.backends {
            if b.addr == v4(3) {
                b.state = ServerState::Draining;
            }
        }
    }
    c.apply(&s).unwrap();
    let id = c.backend_id(v4(3)).unwrap();
    assert!(c.writer().backends.contains_key(&id));
    assert!(flows(5_000).iter().all(|k| backend_of(&c, k) != Some(id)));
    // Down: the record goes too, so the data plane re-picks its pinned flows.
    for v in &mut s.vips {
        for b in &mut v.backends {
            if b.addr == v4(3) {
                b.state = ServerState::Down;
            }
        }
    }
    c.apply(&s).unwrap();
    assert!(!c.writer().backends.contains_key(&id));
}

#[test]
fn no_eligible_backend_clears_the_ring_and_removed_vips_vanish() {
    let mut c = ctl();
    let mut s = spec();
    for b in &mut s.vips[0].backends {
        b.weight = 0;
    }
    let r = c.apply(&s).unwrap();
    let vid = c.vip_id("10.0.0.1".parse().unwrap(), 80, 6).unwrap();
    assert_eq!(r.rings_cleared, vec![vid]);
    let k = flows(1)[0];
    assert_eq!(c.writer().pick(&k), Pick::NoRing { vip_id: vid });
    s.vips.remove(0);
    let r = c.apply(&s).unwrap();
    assert_eq!(r.vips_removed, vec![vid]);
    assert_eq!(c.writer().pick(&k), Pick::NotVip);
    // Backends still used by other VIPs survive.
    assert!(r.backends_removed.is_empty());
}

#[test]
fn port_zero_vip_matches_every_port() {
    let c = ctl();
    for port in [1u16, 80, 65535] {
        let k = FlowKey::v4(
            Ipv4Addr::new(198, 51, 100, 1),
            999,
            Ipv4Addr::new(10, 0, 0, 3),
            port,
            6,
        );
        assert!(
            matches!(c.writer().pick(&k), Pick::Backend { .. }),
            "port {port}"
        );
    }
    let udp = FlowKey::v4(
        Ipv4Addr::new(198, 51, 100, 1),
        999,
        Ipv4Addr::new(10, 0, 0, 3),
        80,
        17,
    );
    assert_eq!(c.writer().pick(&udp), Pick::NotVip);
}

#[test]
fn invalid_specs_are_refused_before_any_write() {
    let mut s = spec();
    s.vips.push(s.vips[0].clone());
    let mut c = Controller::new(MemWriter::new(), MaglevRings);
    assert!(matches!(
        c.apply(&s),
        Err(ControlError::DuplicateVip { .. })
    ));
    assert!(c.writer().vips.is_empty());

    let mut s = spec();
    s.vips[4].backends.push(backends(&[v6(9)], 40).remove(0));
    assert!(matches!(c.apply(&s), Err(ControlError::DsrFamily { .. })));

    let mut s = spec();
    s.vips[1].backends[0].mac = mac(99);
    assert!(matches!(c.apply(&s), Err(ControlError::MacConflict(_))));

    let mut s = spec();
    s.src6.1 = 64;
    assert!(matches!(c.apply(&s), Err(ControlError::SourcePrefix(64))));
    assert!(c.writer().vips.is_empty() && c.writer().rings.is_empty());
}

#[test]
fn source_prefix_becomes_masks() {
    let c = ctl();
    let cfg = c.writer().config;
    assert_eq!(cfg.src4, u32::from(Ipv4Addr::new(172, 16, 0, 0)));
    assert_eq!(cfg.src4_mask, 0xffff_0000);
    assert_eq!(cfg.src6_mask, 0);
    assert_eq!(cfg.src6, [0xfd00_0000, 0, 0, 0]);
    assert_eq!(cfg.udp_idle_ns, 30_000_000_000);
}

#[test]
fn modes_are_written_per_vip() {
    let c = ctl();
    let modes: Vec<u8> = c.writer().vips.values().map(|v| v.mode).collect();
    for m in [Mode::Ipip, Mode::Gre, Mode::Dsr] {
        assert!(modes.contains(&(m as u8)));
    }
}

#[test]
fn outer_view_never_panics_on_random_frames() {
    let mut r = Rng(5);
    for _ in 0..20_000 {
        let len = (r.next() % 120) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        if len > 14 {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        let _ = tenbin_xdp::packet::outer(&f);
    }
}
