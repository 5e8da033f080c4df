//! BPF_PROG_TEST_RUN fixtures of the flow table: SYN/RST/draining rules, backend removal,
//! the insert cap, UDP idle expiry, explain and two-arm forwarding. Root only.
mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::bpf::*;
use common::*;
use tenbin_core::flow::FlowKey;
use tenbin_core::ServerState;
use tenbin_xdp::control::{Controller, MaglevRings};
use tenbin_xdp::loader::XDP_TX;
use tenbin_xdp::packet::{outer, Frame, ACK, RST, SYN};

#[test]
fn flow_table_rules_syn_rst_and_draining() {
    let Some(mut m) = mux("flow_table_rules_syn_rst_and_draining") else {
        return;
    };
    // RST creates no entry.
    let k = client4(10_000);
    assert_eq!(
        run(&m, &Frame::new(k).flags(RST | ACK).build()).action,
        XDP_TX
    );
    assert_eq!(m.writer().flow(&k).unwrap(), None);
    // Establish 300 flows, then drain the backend of the first one.
    let keys: Vec<FlowKey> = (0..300).map(|i| client4(20_000 + i)).collect();
    let mut owner = Vec::new();
    for k in &keys {
        owner.push(backend_addr(
            &m,
            &run(&m, &Frame::new(*k).flags(SYN).build()),
        ));
    }
    let drained = owner[0].0;
    let mut s = spec();
    for v in &mut s.vips {
        for b in &mut v.backends {
            if b.addr == drained {
                b.state = ServerState::Draining;
            }
        }
    }
    m.apply(&s).unwrap();
    let hits = stat(&m, "lru_hit");
    for (k, (addr, _)) in keys.iter().zip(&owner) {
        // Established packets keep their backend, the draining one included.
        let out = run(&m, &Frame::new(*k).flags(ACK).build());
        assert_eq!(backend_addr(&m, &out).0, *addr);
        // A new SYN on the same tuple consults the ring: never the draining backend.
        let out = run(&m, &Frame::new(*k).flags(SYN).build());
        assert_ne!(backend_addr(&m, &out).0, drained);
    }
    assert_eq!(stat(&m, "lru_hit") - hits, keys.len() as u64);
    // A non-SYN packet without an entry is placed by the ring and counted as a miss.
    let miss = stat(&m, "lru_miss_other");
    run(&m, &Frame::new(client4(30_000)).flags(ACK).build());
    assert_eq!(stat(&m, "lru_miss_other") - miss, 1);
}

#[test]
fn removed_backend_flows_are_repicked_others_stay() {
    let Some(mut m) = mux("removed_backend_flows_are_repicked_others_stay") else {
        return;
    };
    let keys: Vec<FlowKey> = (0..300).map(|i| client4(40_000 + i)).collect();
    let owner: Vec<IpAddr> = keys
        .iter()
        .map(|k| backend_addr(&m, &run(&m, &Frame::new(*k).flags(SYN).build())).0)
        .collect();
    let mut s = spec();
    for v in &mut s.vips {
        v.backends.retain(|b| b.addr != v4(2));
    }
    m.apply(&s).unwrap();
    assert_eq!(m.backend_id(v4(2)), None);
    for (k, was) in keys.iter().zip(owner) {
        let now = backend_addr(&m, &run(&m, &Frame::new(*k).flags(ACK).build())).0;
        if was == v4(2) {
            assert_ne!(now, was);
        } else {
            assert_eq!(now, was, "established flows of surviving backends stay put");
        }
    }
}

#[test]
fn flow_cap_limits_inserts_not_forwarding() {
    let Some(mut m) = mux("flow_cap_limits_inserts_not_forwarding") else {
        return;
    };
    let mut s = spec();
    s.flow_cap = 5;
    m.apply(&s).unwrap();
    let capped = stat(&m, "flow_cap");
    let mut inserted = 0;
    for i in 0..20 {
        let k = client4(50_000 + i);
        assert_eq!(run(&m, &Frame::new(k).flags(SYN).build()).action, XDP_TX);
        inserted += usize::from(m.writer().flow(&k).unwrap().is_some());
    }
    // Test runs may land on either CPU within one second window: 5 per CPU at most.
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    assert!(inserted >= 5 && inserted <= 5 * cpus, "{inserted}");
    assert_eq!(stat(&m, "flow_cap") - capped, (20 - inserted) as u64);
}

#[test]
fn explain_agrees_with_the_program() {
    let Some(m) = mux("explain_agrees_with_the_program") else {
        return;
    };
    let mut model = Controller::new(tenbin_xdp::writer::MemWriter::new(), MaglevRings);
    model.apply(&spec()).unwrap();
    let keys = [
        client4(61_000),
        client6(61_001, "2001:db8:ffff::2", 53, 17),
        FlowKey::v4(
            Ipv4Addr::new(198, 51, 100, 7),
            5,
            Ipv4Addr::new(10, 0, 0, 3),
            22,
            6,
        ),
        FlowKey::v4(
            Ipv4Addr::new(198, 51, 100, 7),
            5,
            Ipv4Addr::new(10, 0, 0, 9),
            80,
            6,
        ),
        FlowKey::v4(
            Ipv4Addr::new(198, 51, 100, 7),
            5,
            Ipv4Addr::new(10, 0, 0, 66),
            80,
            6,
        ),
    ];
    for k in keys {
        let e = tenbin_xdp::explain::explain(model.writer(), Some(m.writer()), &k).unwrap();
        assert_eq!(e.agrees(), Some(true), "{e}");
        assert!(e.to_string().contains("agrees   yes"), "{e}");
    }
    // Without a program the model still answers.
    let e = tenbin_xdp::explain::explain(model.writer(), None, &keys[0]).unwrap();
    assert_eq!(e.agrees(), None);
    assert!(e.to_string().contains("ring slot"));
}

#[test]
fn udp_entries_expire_after_idle_time() {
    let Some(mut m) = mux("udp_entries_expire_after_idle_time") else {
        return;
    };
    let k = client6(62_000, "2001:db8:ffff::2", 53, 17);
    let ring = backend_addr(&m, &run(&m, &Frame::new(k).build())).1;
    let seen = m
        .writer()
        .flow_entry(&k)
        .unwrap()
        .expect("UDP entry")
        .seen_ns;
    let other = [v6(1), v6(2), v6(3)]
        .iter()
        .map(|a| m.backend_id(*a).unwrap())
        .find(|id| *id != ring)
        .unwrap();
    // A fresh entry is followed, wherever the ring points.
    m.writer_mut().insert_flow(&k, other, seen).unwrap();
    assert_eq!(backend_addr(&m, &run(&m, &Frame::new(k).build())).1, other);
    // An entry idle for longer than udp_idle (30 s: last seen at boot, and this machine has
    // been up longer) is placed by the ring again and renewed.
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime > 31.0,
        "the machine must have been up for more than udp_idle"
    );
    m.writer_mut().insert_flow(&k, other, 0).unwrap();
    let miss = stat(&m, "lru_miss_other");
    assert_eq!(backend_addr(&m, &run(&m, &Frame::new(k).build())).1, ring);
    assert_eq!(stat(&m, "lru_miss_other") - miss, 1);
    assert_eq!(m.writer().flow(&k).unwrap(), Some(ring));
}

#[test]
fn two_arms_redirect_with_the_egress_mac() {
    let Some(mut m) = mux("two_arms_redirect_with_the_egress_mac") else {
        return;
    };
    let mut s = spec();
    let egress_mac = [0x02, 0xee, 0, 0, 0, 0x01];
    s.egress = Some((1, egress_mac)); // lo: any existing interface will do for a test run
    m.apply(&s).unwrap();
    let f = Frame::new(client4(63_000)).flags(SYN).build();
    let before = stat(&m, "redirect");
    let out = run(&m, &f);
    assert_eq!(out.action, tenbin_xdp::abi::XDP_REDIRECT);
    assert_eq!(stat(&m, "redirect") - before, 1);
    let o = outer(&out.frame).unwrap();
    assert_eq!(o.src_mac, egress_mac);
    assert_eq!(o.proto, 4);
    // Back to one arm.
    s.egress = None;
    m.apply(&s).unwrap();
    assert_eq!(run(&m, &f).action, XDP_TX);
}
