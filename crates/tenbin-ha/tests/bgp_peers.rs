//! Messages BIRD 2.0.12 and FRR 8.4.4 really sent (read off the socket by a raw peer; the
//! same files seed the fuzz corpus) decode to what they meant.
use ipnet::IpNet;
use tenbin_ha::bgp::update::Origin;
use tenbin_ha::bgp::wire::{Capability, Context, Message, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use tenbin_ha::bgp::Notification;

macro_rules! seed {
    ($name:literal) => {
        include_bytes!(concat!("../../../fuzz/corpus/bgp_message/", $name)).as_slice()
    };
}

const WIDE: Context = Context {
    four_octet_as: true,
};

fn decode(bytes: &[u8]) -> Message {
    let (m, n) = Message::decode(bytes, WIDE).unwrap().unwrap();
    assert_eq!(n, bytes.len());
    m
}

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn bird_and_frr_opens() {
    for (bytes, extra) in [(seed!("bird-open-01"), 3), (seed!("frr-open-01"), 7)] {
        let Message::Open(o) = decode(bytes) else {
            panic!("OPEN")
        };
        assert_eq!((o.asn(), o.hold_time), (65000, 9));
        for afi in [AFI_IPV4, AFI_IPV6] {
            assert!(o.has(&Capability::Multiprotocol {
                afi,
                safi: SAFI_UNICAST
            }));
        }
        assert!(o.has(&Capability::RouteRefresh));
        let others = o
            .capabilities
            .iter()
            .filter(|c| matches!(c, Capability::Other { .. }))
            .count();
        assert_eq!(others, extra, "{:?}", o.capabilities);
    }
}

#[test]
fn bird_ipv4_update_end_of_rib_and_ipv6_mp_reach_with_extended_length() {
    let Message::Update(u) = decode(seed!("bird-update-03")) else {
        panic!("UPDATE")
    };
    assert_eq!(u.attrs.origin, Some(Origin::Igp));
    assert_eq!(u.attrs.next_hop, Some("10.88.11.1".parse().unwrap()));
    let nlri: Vec<IpNet> = u.nlri.iter().map(|n| IpNet::V4(*n)).collect();
    assert_eq!(nlri, nets(&["198.51.100.0/25", "192.0.2.0/24"]));
    // End-of-RIB for IPv4 (RFC 4724): an empty UPDATE.
    let Message::Update(eor) = decode(seed!("bird-update-04")) else {
        panic!("UPDATE")
    };
    assert!(!eor.announces() && eor.withdrawn.is_empty());
    let Message::Update(u) = decode(seed!("bird-update-05")) else {
        panic!("UPDATE")
    };
    let mp = u.attrs.mp_reach.as_ref().unwrap();
    assert_eq!(mp.nlri, nets(&["2001:db8:1::/48"]));
    assert_eq!(mp.next_hop.len(), 16);
    // End-of-RIB for IPv6: an empty MP_UNREACH_NLRI.
    let Message::Update(eor) = decode(seed!("bird-update-06")) else {
        panic!("UPDATE")
    };
    assert!(eor.attrs.mp_unreach.unwrap().withdrawn.is_empty());
}

#[test]
fn frr_updates_with_med_and_a_link_local_next_hop() {
    let Message::Update(u) = decode(seed!("frr-update-03")) else {
        panic!("UPDATE")
    };
    assert_eq!(u.attrs.med, Some(0));
    let Message::Update(u) = decode(seed!("frr-update-04")) else {
        panic!("UPDATE")
    };
    let mp = u.attrs.mp_reach.as_ref().unwrap();
    assert_eq!(mp.next_hop.len(), 32, "global + link-local");
    assert_eq!(mp.nlri, nets(&["2001:db8:1::/48"]));
}

#[test]
fn bird_cease_on_disable() {
    assert_eq!(
        decode(seed!("bird-notification-08")),
        Message::Notification(Notification::new(6, 2))
    );
}
