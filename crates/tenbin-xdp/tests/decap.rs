//! The host agent's decapsulation program, fed with what the Mux emits (root only).
mod common;

use std::net::Ipv4Addr;

use common::*;
use tenbin_core::flow::FlowKey;
use tenbin_testkit::skip;
use tenbin_xdp::control::{Controller, MaglevRings};
use tenbin_xdp::loader::{Program, XDP_PASS, XDP_TX};
use tenbin_xdp::packet::{outer, Frame, SYN};

#[test]
fn decap_restores_what_the_mux_encapsulated() {
    if !skip::need_root("BPF_PROG_TEST_RUN") {
        return;
    }
    let mut mux = Controller::new(Program::mux(4096).unwrap(), MaglevRings);
    mux.apply(&spec()).unwrap();
    let decap = Program::decap().unwrap();
    let c = Ipv4Addr::new(198, 51, 100, 7);
    let flows = [
        FlowKey::v4(c, 1, Ipv4Addr::new(10, 0, 0, 1), 80, 6),
        FlowKey::v4(c, 2, Ipv4Addr::new(10, 0, 0, 2), 53, 17),
        FlowKey::v6(
            "2001:db8:c::7".parse().unwrap(),
            3,
            "2001:db8:ffff::1".parse().unwrap(),
            443,
            6,
        ),
        FlowKey::v6(
            "2001:db8:c::7".parse().unwrap(),
            4,
            "2001:db8:ffff::2".parse().unwrap(),
            53,
            17,
        ),
    ];
    for (i, k) in flows.iter().enumerate() {
        for vlan in [None, Some(7)] {
            let mut f = Frame::new(*k).flags(SYN).payload(33);
            f.vlan = vlan;
            let f = f.build();
            let enc = mux.writer().run(&f, 1).unwrap();
            assert_eq!(enc.action, XDP_TX);
            let before = decap.decap_stats().unwrap()[0];
            let out = decap.run(&enc.frame, 1).unwrap();
            assert_eq!(out.action, XDP_PASS, "flow {i}");
            assert_eq!(out.frame.len(), f.len(), "flow {i}");
            assert_eq!(
                &out.frame[12..],
                &f[12..],
                "flow {i}: inner frame and ethertype restored"
            );
            assert_eq!(
                &out.frame[..6],
                &enc.frame[..6],
                "flow {i}: addressed to the backend"
            );
            assert_eq!(decap.decap_stats().unwrap()[0] - before, 1);
            assert_eq!(outer(&out.frame).unwrap().proto, k.proto);
        }
    }
    // A plain packet passes untouched.
    let plain = Frame::new(flows[0]).build();
    let out = decap.run(&plain, 1).unwrap();
    assert_eq!((out.action, out.frame), (XDP_PASS, plain));
}

#[test]
fn decap_only_for_local_outer_addresses_when_listed() {
    if !skip::need_root("BPF_PROG_TEST_RUN") {
        return;
    }
    let mut mux = Controller::new(Program::mux(4096).unwrap(), MaglevRings);
    mux.apply(&spec()).unwrap();
    let mut decap = Program::decap().unwrap();
    let k = FlowKey::v4(
        Ipv4Addr::new(198, 51, 100, 7),
        1,
        Ipv4Addr::new(10, 0, 0, 1),
        80,
        6,
    );
    let enc = mux
        .writer()
        .run(&Frame::new(k).flags(SYN).build(), 1)
        .unwrap();
    let backend = outer(&enc.frame).unwrap().dst;
    decap.set_locals(&["192.0.2.250".parse().unwrap()]).unwrap();
    let out = decap.run(&enc.frame, 1).unwrap();
    assert_eq!(out.frame, enc.frame, "not ours: untouched");
    assert_eq!(decap.decap_stats().unwrap()[3], 1);
    decap.set_locals(&[backend]).unwrap();
    let out = decap.run(&enc.frame, 1).unwrap();
    assert_eq!(out.frame.len() + 20, enc.frame.len());
}

#[test]
fn mixed_families_4in6_and_6in4() {
    if !skip::need_root("BPF_PROG_TEST_RUN") {
        return;
    }
    let mut s = spec();
    s.vips = vec![
        vip(
            "10.0.0.50",
            80,
            6,
            tenbin_xdp::abi::Mode::Ipip,
            backends(&[v6(7)], 50),
        ),
        vip(
            "2001:db8:ffff::50",
            80,
            6,
            tenbin_xdp::abi::Mode::Gre,
            backends(&[v4(7)], 51),
        ),
    ];
    let mut mux = Controller::new(Program::mux(4096).unwrap(), MaglevRings);
    mux.apply(&s).unwrap();
    let decap = Program::decap().unwrap();
    let cases = [
        (
            FlowKey::v4(
                Ipv4Addr::new(198, 51, 100, 7),
                1,
                Ipv4Addr::new(10, 0, 0, 50),
                80,
                6,
            ),
            4u8,
            None,
            40,
        ),
        (
            FlowKey::v6(
                "2001:db8:c::7".parse().unwrap(),
                2,
                "2001:db8:ffff::50".parse().unwrap(),
                80,
                6,
            ),
            47,
            Some(0x86dd),
            24,
        ),
    ];
    for (k, proto, gre, grow) in cases {
        let f = Frame::new(k).flags(SYN).payload(10).build();
        let enc = mux.writer().run(&f, 1).unwrap();
        assert_eq!(enc.action, XDP_TX);
        assert_eq!(enc.frame.len(), f.len() + grow);
        let o = outer(&enc.frame).unwrap();
        assert_eq!((o.proto, o.gre_type), (proto, gre));
        assert!(o.header_ok && o.length_ok);
        let out = decap.run(&enc.frame, 1).unwrap();
        assert_eq!(out.action, XDP_PASS);
        assert_eq!(
            &out.frame[12..],
            &f[12..],
            "inner frame and ethertype restored"
        );
    }
}
