//! RFC 4271 §6 conformance: each malformed message, written by hand, draws the NOTIFICATION
//! (code, subcode, data) its subsection names, and the session closes.
mod bgp_common;

use bgp_common::*;
use tenbin_ha::bgp::{Notification, State};

fn n(code: u8, sub: u8, data: &[u8]) -> Notification {
    Notification::with_data(code, sub, data)
}

fn established() -> Lab {
    let mut lab = Lab::new(config());
    lab.establish(90);
    lab.outputs();
    lab
}

fn opensent() -> Lab {
    let mut lab = Lab::new(config());
    lab.connect();
    lab
}

// §6.1 Message Header error handling.

#[test]
fn rfc4271_6_1_marker_not_all_ones_is_connection_not_synchronized() {
    let mut m = keepalive();
    m[3] = 0;
    assert_eq!(established().expect_notification(&m), n(1, 1, &[]));
}

#[test]
fn rfc4271_6_1_bad_lengths_echo_the_length_field() {
    for len in [18u16, 4097, 0xffff] {
        let mut m = keepalive();
        m[16..18].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            established().expect_notification(&m),
            n(1, 2, &len.to_be_bytes()),
            "length {len}"
        );
    }
    // Lengths that do not fit the type: KEEPALIVE with a body, short OPEN / UPDATE /
    // NOTIFICATION, ROUTE-REFRESH not of 23.
    for (kind, body) in [(4u8, 1usize), (1, 9), (2, 3), (3, 1), (5, 3)] {
        let m = msg(kind, &vec![0; body]);
        let len = u16::try_from(m.len()).unwrap().to_be_bytes();
        assert_eq!(
            established().expect_notification(&m),
            n(1, 2, &len),
            "type {kind}"
        );
    }
}

#[test]
fn rfc4271_6_1_unknown_type_echoes_the_type() {
    for t in [0u8, 6, 255] {
        assert_eq!(
            established().expect_notification(&msg(t, &[])),
            n(1, 3, &[t])
        );
    }
}

// §6.2 OPEN message error handling.

#[test]
fn rfc4271_6_2_version_other_than_4_says_we_support_4() {
    let mut m = open(PEER_AS, 90, [10, 88, 1, 1], &caps_all(PEER_AS));
    m[19] = 3;
    assert_eq!(opensent().expect_notification(&m), n(2, 1, &[0, 4]));
}

#[test]
fn rfc4271_6_2_unexpected_peer_as() {
    let m = open(65099, 90, [10, 88, 1, 1], &caps_all(65099));
    assert_eq!(opensent().expect_notification(&m), n(2, 2, &[]));
    // RFC 6793: the 4-octet capability, not the My AS field, names the AS.
    let m = open(PEER_AS, 90, [10, 88, 1, 1], &caps_all(4_200_000_000));
    assert_eq!(opensent().expect_notification(&m), n(2, 2, &[]));
}

#[test]
fn rfc4271_6_2_hold_time_of_one_or_two_seconds_is_unacceptable() {
    for h in [1, 2] {
        let m = open(PEER_AS, h, [10, 88, 1, 1], &caps_all(PEER_AS));
        assert_eq!(opensent().expect_notification(&m), n(2, 6, &[]));
    }
}

#[test]
fn rfc4271_6_2_bad_bgp_identifier() {
    let m = open(PEER_AS, 90, [0, 0, 0, 0], &caps_all(PEER_AS));
    assert_eq!(opensent().expect_notification(&m), n(2, 3, &[]));
    // An internal peer with our own identifier (RFC 6286 §2.2).
    let mut lab = Lab::new(tenbin_ha::bgp::PeerConfig {
        remote_as: MY_AS,
        ..config()
    });
    lab.connect();
    let m = open(MY_AS, 90, [10, 88, 11, 2], &caps_all(MY_AS));
    assert_eq!(lab.expect_notification(&m), n(2, 3, &[]));
}

#[test]
fn rfc4271_6_2_unsupported_optional_parameter() {
    // Parameter type 1 (the deprecated authentication parameter).
    let m = open(PEER_AS, 90, [10, 88, 1, 1], &[1, 2, 0, 0]);
    assert_eq!(opensent().expect_notification(&m), n(2, 4, &[]));
}

#[test]
fn rfc4271_6_2_parameters_running_past_the_message_are_unspecific() {
    let mut m = open(PEER_AS, 90, [10, 88, 1, 1], &caps_all(PEER_AS));
    m[28] += 1;
    assert_eq!(opensent().expect_notification(&m), n(2, 0, &[]));
}

// §6.3 UPDATE message error handling.

#[test]
fn rfc4271_6_3_withdrawn_or_attribute_length_too_large_is_a_malformed_list() {
    let mut m = update(&[], &good_attrs(), &[24, 192, 0, 2]);
    m[19..21].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(established().expect_notification(&m), n(3, 1, &[]));
    let mut m = update(&[], &good_attrs(), &[]);
    m[21..23].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(established().expect_notification(&m), n(3, 1, &[]));
}

#[test]
fn rfc4271_6_3_an_attribute_twice_is_a_malformed_list() {
    let mut a = good_attrs();
    a.extend(attr(0x40, 1, &[0]));
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 1, &[]));
}

#[test]
fn rfc4271_6_3_unrecognized_well_known_attribute_echoes_it() {
    let mut a = good_attrs();
    let unknown = attr(0x40, 99, &[1, 2]);
    a.extend(&unknown);
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 2, &unknown));
    // Unknown optional attributes are fine.
    let mut a = good_attrs();
    a.extend(attr(0xc0, 99, &[1, 2]));
    let mut lab = established();
    lab.input(&update(&[], &a, &[24, 192, 0, 2]));
    assert_eq!(lab.s.state(), State::Established);
}

#[test]
fn rfc4271_6_3_missing_well_known_attribute_names_its_type() {
    let all = good_attrs();
    let origin = &all[..4];
    let as_path = &all[4..13];
    let next_hop = &all[13..];
    for (attrs, missing) in [
        ([as_path, next_hop].concat(), 1u8),
        ([origin, next_hop].concat(), 2),
        ([origin, as_path].concat(), 3),
    ] {
        let m = update(&[], &attrs, &[24, 192, 0, 2]);
        assert_eq!(established().expect_notification(&m), n(3, 3, &[missing]));
    }
    // A withdrawal alone needs no attributes.
    let mut lab = established();
    lab.input(&update(&[24, 192, 0, 2], &[], &[]));
    assert_eq!(lab.s.state(), State::Established);
}

#[test]
fn rfc4271_6_3_attribute_flags_error_echoes_the_attribute() {
    let mut a = good_attrs();
    a[0] = 0xc0; // ORIGIN marked optional
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 4, &a[..4]));
    let mut a = good_attrs();
    let med = attr(0x40, 4, &[0, 0, 0, 1]); // MED marked well-known
    a.extend(&med);
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 4, &med));
}

#[test]
fn rfc4271_6_3_attribute_length_error_for_fixed_size_attributes() {
    let mut a = good_attrs();
    let origin = attr(0x40, 1, &[0, 0]);
    a.splice(0..4, origin.iter().copied());
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 5, &origin));
    let mut a = good_attrs();
    let lp = attr(0x40, 5, &[0, 0, 100]);
    a.extend(&lp);
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 5, &lp));
}

#[test]
fn rfc4271_6_3_invalid_origin() {
    let mut a = good_attrs();
    a[3] = 3;
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 6, &a[..4]));
}

#[test]
fn rfc4271_6_3_invalid_next_hop() {
    for nh in [[0, 0, 0, 0], [224, 0, 0, 5], [255, 255, 255, 255]] {
        let mut a = good_attrs();
        a[16..20].copy_from_slice(&nh);
        let m = update(&[], &a, &[24, 192, 0, 2]);
        assert_eq!(
            established().expect_notification(&m),
            n(3, 8, &a[13..]),
            "{nh:?}"
        );
    }
}

#[test]
fn rfc4271_6_3_malformed_optional_attribute() {
    let mut a = good_attrs();
    let communities = attr(0xc0, 8, &[0, 0, 0, 1, 2]);
    a.extend(&communities);
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 9, &communities));
    // MP_REACH_NLRI for IPv6 with a 4-byte next hop.
    let mut a = good_attrs();
    let mp = attr(0x80, 14, &[0, 2, 1, 4, 10, 0, 0, 1, 0, 8, 0xfd]);
    a.extend(&mp);
    let m = update(&[], &a, &[]);
    assert_eq!(established().expect_notification(&m), n(3, 9, &mp));
}

#[test]
fn rfc4271_6_3_invalid_network_field() {
    let m = update(&[], &good_attrs(), &[33, 192, 0, 2, 0, 0]);
    assert_eq!(established().expect_notification(&m), n(3, 10, &[]));
    // A prefix whose bytes are cut short.
    let m = update(&[], &good_attrs(), &[24, 192, 0]);
    assert_eq!(established().expect_notification(&m), n(3, 10, &[]));
}

#[test]
fn rfc4271_6_3_malformed_as_path() {
    let mut a = good_attrs();
    a[7] = 9; // segment type 9
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 11, &a[4..13]));
    // An external peer whose path does not start with its own AS.
    let mut a = good_attrs();
    a[9..13].copy_from_slice(&65099u32.to_be_bytes());
    let m = update(&[], &a, &[24, 192, 0, 2]);
    assert_eq!(established().expect_notification(&m), n(3, 11, &[]));
}

// §6.6 Finite State Machine error handling (subcodes from RFC 6608).

#[test]
fn rfc4271_6_6_unexpected_messages_per_state() {
    assert_eq!(opensent().expect_notification(&keepalive()), n(5, 1, &[]));
    let mut lab = opensent();
    lab.input(&open(PEER_AS, 90, [10, 88, 1, 1], &caps_all(PEER_AS)));
    lab.outputs();
    let m = update(&[], &good_attrs(), &[24, 192, 0, 2]);
    assert_eq!(lab.expect_notification(&m), n(5, 2, &[]));
    let m = open(PEER_AS, 90, [10, 88, 1, 1], &caps_all(PEER_AS));
    assert_eq!(established().expect_notification(&m), n(5, 3, &[]));
}

#[test]
fn a_valid_update_keeps_the_session() {
    let mut lab = established();
    let mut a = good_attrs();
    a.extend(attr(0x80, 4, &[0, 0, 0, 7]));
    a.extend(attr(0xc0, 8, &[0xfd, 0xe8, 0, 1]));
    a.extend(attr(0xc0, 32, &[0; 12]));
    let mut mp = vec![0, 2, 1, 16];
    mp.extend([0xfd, 0x88, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    mp.extend([0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]);
    a.extend(attr(0x80, 14, &mp));
    lab.input(&update(&[], &a, &[24, 192, 0, 2]));
    assert_eq!(lab.s.state(), State::Established);
    assert_eq!(lab.s.stats().updates_received, 1);
}
