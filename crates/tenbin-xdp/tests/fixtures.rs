//! BPF_PROG_TEST_RUN fixtures: input frame → action, output bytes, counter deltas for
//! encapsulation, DSR, pass/drop policies and ICMP. Root only; flows.rs has the flow table.
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::bpf::*;
use common::*;
use tenbin_core::flow::{flow_hash, FlowKey};
use tenbin_xdp::loader::{XDP_DROP, XDP_PASS, XDP_TX};
use tenbin_xdp::packet::{icmp_error_about, outer, Frame, CLIENT_MAC, MUX_MAC, SYN};

#[test]
fn encapsulation_table() {
    let Some(m) = mux("encapsulation_table") else {
        return;
    };
    struct Case {
        name: &'static str,
        key: FlowKey,
        flags: u8,
        proto: u8,
        grow: usize,
        gre: Option<u16>,
    }
    let cases = [
        Case {
            name: "v4 tcp ipip",
            key: client4(1000),
            flags: SYN,
            proto: 4,
            grow: 20,
            gre: None,
        },
        Case {
            name: "v4 udp gre",
            key: FlowKey::v4(
                Ipv4Addr::new(198, 51, 100, 7),
                1001,
                Ipv4Addr::new(10, 0, 0, 2),
                53,
                17,
            ),
            flags: 0,
            proto: 47,
            grow: 24,
            gre: Some(0x0800),
        },
        Case {
            name: "v6 tcp ipip",
            key: client6(1002, "2001:db8:ffff::1", 443, 6),
            flags: SYN,
            proto: 41,
            grow: 40,
            gre: None,
        },
        Case {
            name: "v6 udp gre",
            key: client6(1003, "2001:db8:ffff::2", 53, 17),
            flags: 0,
            proto: 47,
            grow: 44,
            gre: Some(0x86dd),
        },
    ];
    for c in cases {
        let f = Frame::new(c.key).flags(c.flags).payload(100).build();
        let vk = tenbin_xdp::abi::VipKey::of_flow(&c.key);
        let vip_id = m.vip_id(ip_of(vk), vk.port, vk.proto).unwrap();
        let before = m.writer().vip_counters(vip_id).unwrap();
        let out = run(&m, &f);
        assert_eq!(out.action, XDP_TX, "{}", c.name);
        assert_eq!(out.frame.len(), f.len() + c.grow, "{}", c.name);
        let o = outer(&out.frame).unwrap();
        assert!(o.header_ok && o.length_ok, "{}: {o:?}", c.name);
        assert_eq!(o.proto, c.proto, "{}", c.name);
        assert_eq!(o.gre_type, c.gre, "{}", c.name);
        assert_eq!(o.src_mac, MUX_MAC, "{}", c.name);
        let (_, id) = backend_addr(&m, &out);
        assert_eq!(o.dst_mac, mac_of(&m, id), "{}", c.name);
        // The inner packet is the original IP packet, untouched.
        assert_eq!(&out.frame[o.inner_offset..], &f[14..], "{}", c.name);
        // Outer source: the configured prefix, host bits from the flow hash.
        let h = flow_hash(&c.key, SEED);
        match o.src {
            IpAddr::V4(s) => assert_eq!(u32::from(s), 0xac10_0000 | (h & 0xffff), "{}", c.name),
            IpAddr::V6(s) => assert_eq!(
                s,
                Ipv6Addr::from((0xfd00u128 << 112) | u128::from(h)),
                "{}",
                c.name
            ),
        }
        let after = m.writer().vip_counters(vip_id).unwrap();
        assert_eq!(after.packets - before.packets, 1, "{}", c.name);
        assert_eq!(
            after.bytes - before.bytes,
            (f.len() - 14) as u64,
            "{}",
            c.name
        );
        assert_eq!(after.new_flows - before.new_flows, 1, "{}", c.name);
        let bc = m.writer().backend_counters(id).unwrap();
        assert!(bc.packets >= 1);
        assert_eq!(m.writer().flow(&c.key).unwrap(), Some(id), "{}", c.name);
    }
}

#[test]
fn bpf_hash_reproduces_the_core_golden_vectors() {
    let Some(mut m) = mux("bpf_hash_reproduces_the_core_golden_vectors") else {
        return;
    };
    // With /0 and /96 source prefixes the outer source is the flow hash itself.
    let mut s = spec();
    s.src4 = (Ipv4Addr::UNSPECIFIED, 0);
    s.src6 = (Ipv6Addr::UNSPECIFIED, 96);
    s.vips.push(vip(
        "192.0.2.99",
        0,
        6,
        tenbin_xdp::abi::Mode::Ipip,
        backends(&[v4(1)], 1),
    ));
    s.vips.push(vip(
        "2001:db8:ffff::1",
        443,
        17,
        tenbin_xdp::abi::Mode::Ipip,
        backends(&[v6(1)], 11),
    ));
    m.apply(&s).unwrap();
    // The vectors of tenbin-core's flow.rs (and tests/flow_golden.py), with other addresses
    // where the VIP must differ.
    let k4 = FlowKey::v4(
        Ipv4Addr::new(192, 0, 2, 1),
        40000,
        Ipv4Addr::new(10, 0, 0, 1),
        80,
        6,
    );
    let out = run(&m, &Frame::new(k4).flags(SYN).build());
    assert_eq!(
        outer(&out.frame).unwrap().src,
        IpAddr::V4(Ipv4Addr::from(0x98e4_45cdu32))
    );
    let k6 = FlowKey::v6(
        "2001:db8::1".parse().unwrap(),
        40000,
        "2001:db8:ffff::1".parse().unwrap(),
        443,
        17,
    );
    let out = run(&m, &Frame::new(k6).build());
    assert_eq!(
        outer(&out.frame).unwrap().src,
        IpAddr::V6(Ipv6Addr::from(0x0e5d_3ec0u128))
    );
}

#[test]
fn l2_dsr_only_rewrites_the_destination_mac() {
    let Some(m) = mux("l2_dsr_only_rewrites_the_destination_mac") else {
        return;
    };
    for key in [
        FlowKey::v4(
            Ipv4Addr::new(198, 51, 100, 7),
            5000,
            Ipv4Addr::new(10, 0, 0, 3),
            8443,
            6,
        ),
        client6(5001, "2001:db8:ffff::3", 4500, 17),
    ] {
        let f = Frame::new(key).flags(SYN).payload(20).build();
        let out = run(&m, &f);
        assert_eq!(out.action, XDP_TX);
        assert_eq!(out.frame.len(), f.len());
        assert_eq!(&out.frame[6..12], &MUX_MAC);
        assert_eq!(&out.frame[12..], &f[12..]);
        let id = m.writer().flow(&key).unwrap().expect("flow entry");
        assert_eq!(&out.frame[0..6], &mac_of(&m, id));
    }
}

#[test]
fn pass_and_drop_policies() {
    let Some(m) = mux("pass_and_drop_policies") else {
        return;
    };
    let unknown = FlowKey::v4(
        Ipv4Addr::new(198, 51, 100, 7),
        1,
        Ipv4Addr::new(10, 0, 0, 77),
        80,
        6,
    );
    let mut frag = Frame::new(client4(2));
    frag.fragment = true;
    let full = Frame::new(client4(3)).flags(SYN).build();
    let icmp_echo = {
        let mut f = Frame::new(client4(4)).build();
        f[14 + 9] = 1; // protocol ICMP, type 8 in the first byte
        f[34] = 8;
        f
    };
    let v6_ext = {
        let mut f = Frame::new(client6(5, "2001:db8:ffff::2", 53, 17))
            .payload(16)
            .build();
        f[14 + 6] = 0; // next header: hop-by-hop options
        f
    };
    let table: Vec<(&str, Vec<u8>, u32, &str)> = vec![
        (
            "unknown vip",
            Frame::new(unknown).build(),
            XDP_PASS,
            "pass_not_vip",
        ),
        ("ipv4 fragment", frag.build(), XDP_PASS, "pass_fragment"),
        (
            "truncated ip header",
            full[..14 + 12].to_vec(),
            XDP_DROP,
            "drop_malformed",
        ),
        (
            "truncated tcp header",
            full[..14 + 20 + 10].to_vec(),
            XDP_DROP,
            "drop_malformed",
        ),
        (
            "not ip",
            {
                let mut f = full.clone();
                f[12] = 0x08;
                f[13] = 0x06;
                f
            },
            XDP_PASS,
            "pass_not_ip",
        ),
        ("icmp echo to vip", icmp_echo, XDP_PASS, "pass_icmp"),
        (
            "ipv6 extension header",
            v6_ext,
            XDP_PASS,
            "pass_other_proto",
        ),
        (
            "empty ring",
            Frame::new(FlowKey::v4(
                Ipv4Addr::new(198, 51, 100, 7),
                9,
                Ipv4Addr::new(10, 0, 0, 9),
                80,
                6,
            ))
            .flags(SYN)
            .build(),
            XDP_DROP,
            "drop_no_ring",
        ),
    ];
    for (name, f, action, counter) in table {
        let before = stat(&m, counter);
        let out = run(&m, &f);
        assert_eq!(out.action, action, "{name}");
        assert_eq!(stat(&m, counter) - before, 1, "{name}: {counter}");
        if action == XDP_PASS {
            assert_eq!(out.frame, f, "{name}: passed frames are untouched");
        }
    }
}

#[test]
fn ip_options_and_vlan_are_carried() {
    let Some(m) = mux("ip_options_and_vlan_are_carried") else {
        return;
    };
    let mut f = Frame::new(client4(7000)).flags(SYN).vlan(42);
    f.ip_options = 2;
    let f = f.build();
    let out = run(&m, &f);
    assert_eq!(out.action, XDP_TX);
    let o = outer(&out.frame).unwrap();
    assert_eq!(o.vlan, Some(42));
    assert!(o.header_ok && o.length_ok);
    assert_eq!(&out.frame[o.inner_offset..], &f[18..]);
}

#[test]
fn oversize_packets_get_icmp_too_big() {
    let Some(m) = mux("oversize_packets_get_icmp_too_big") else {
        return;
    };
    // IPv4 with DF: 1481 bytes of IP + 20 of IPIP > 1500.
    let k = client4(8000);
    let f = Frame::new(k).payload(1481 - 40).build();
    let before = stat(&m, "icmp_too_big");
    let out = run(&m, &f);
    assert_eq!(out.action, XDP_TX);
    assert_eq!(stat(&m, "icmp_too_big") - before, 1);
    let o = outer(&out.frame).unwrap();
    assert!(o.header_ok && o.length_ok);
    assert_eq!(
        (o.proto, o.src, o.dst),
        (
            1,
            "10.0.0.1".parse().unwrap(),
            "198.51.100.7".parse().unwrap()
        )
    );
    assert_eq!(o.dst_mac, CLIENT_MAC);
    let icmp = &out.frame[34..];
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1480);
    assert_eq!(tenbin_xdp::packet::checksum(&[icmp]), 0);
    assert_eq!(&icmp[8..36], &f[14..42], "quotes the IP header and 8 bytes");
    // Without DF: dropped and counted.
    let mut nodf = Frame::new(k).payload(1481 - 40);
    nodf.df = false;
    assert_eq!(run(&m, &nodf.build()).action, XDP_DROP);
    // IPv6 GRE: 1500 - 44 = 1456.
    let k6 = client6(8001, "2001:db8:ffff::2", 53, 17);
    let f = Frame::new(k6).payload(1457 - 48).build();
    let out = run(&m, &f);
    assert_eq!(out.action, XDP_TX);
    let o = outer(&out.frame).unwrap();
    assert_eq!(o.proto, 58);
    assert!(o.length_ok);
    let icmp = &out.frame[54..];
    assert_eq!(icmp[0], 2);
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        1456
    );
    let (s, d) = (o.src, o.dst);
    let (IpAddr::V6(s), IpAddr::V6(d)) = (s, d) else {
        panic!()
    };
    assert_eq!(tenbin_xdp::packet::checksum_v6(s, d, 58, icmp), 0);
    // One byte less fits.
    let f = Frame::new(k6).payload(1456 - 48).build();
    assert_eq!(outer(&run(&m, &f).frame).unwrap().proto, 47);
}

#[test]
fn icmp_errors_follow_their_flow() {
    let Some(m) = mux("icmp_errors_follow_their_flow") else {
        return;
    };
    for key in [client4(9000), client6(9001, "2001:db8:ffff::1", 443, 6)] {
        let first = run(&m, &Frame::new(key).flags(SYN).build());
        let (_, id) = backend_addr(&m, &first);
        let router: IpAddr = if matches!(key.addrs, tenbin_core::flow::FlowAddrs::V4 { .. }) {
            "203.0.113.1".parse().unwrap()
        } else {
            "2001:db8:e::1".parse().unwrap()
        };
        let before = stat(&m, "icmp_err_routed");
        let out = run(&m, &icmp_error_about(&key, router));
        assert_eq!(out.action, XDP_TX);
        assert_eq!(backend_addr(&m, &out).1, id);
        assert_eq!(stat(&m, "icmp_err_routed") - before, 1);
    }
}
