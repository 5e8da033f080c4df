//! RFC 4271 §8 conformance of one session with a manual clock: transitions, hold time
//! negotiation, keepalive cadence, hold timer expiry, connect retry with backoff, passive
//! sessions, and the UPDATEs it sends (compared octet by octet with hand-written bytes).
mod bgp_common;

use std::net::SocketAddr;
use std::time::Duration;

use bgp_common::*;
use tenbin_ha::bgp::{Down, Event, Notification, Output, PeerConfig, Route, RouteAttrs, State};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn rfc4271_8_active_session_goes_idle_connect_opensent_openconfirm_established() {
    let mut lab = Lab::new(config());
    assert_eq!(lab.s.state(), State::Idle);
    let open = lab.connect();
    // §4.2: version 4, My AS 65001, hold 90, id 10.88.11.2, then one capabilities parameter
    // with MP IPv4 unicast, MP IPv6 unicast, route refresh, 4-octet AS 65001.
    assert_eq!(
        hex(&open),
        format!(
            "{}0033 01 04 fde9 005a 0a580b02 16 02 14 01040001 0001 01040002 0001 0200 4104 0000fde9",
            "ff".repeat(16)
        )
        .replace(' ', "")
    );
    lab.input(&open_msg(3));
    let out = lab.outputs();
    assert!(out.contains(&Output::Send(keepalive())));
    assert!(out.contains(&Output::Event(Event::State {
        from: State::OpenSent,
        to: State::OpenConfirm
    })));
    lab.input(&keepalive());
    let out = lab.outputs();
    assert!(out.contains(&Output::Event(Event::Established {
        hold_time: 3,
        peer_id: "10.88.1.1".parse().unwrap()
    })));
    assert_eq!(lab.s.state(), State::Established);
}

fn open_msg(hold: u16) -> Vec<u8> {
    open(PEER_AS, hold, [10, 88, 1, 1], &caps_all(PEER_AS))
}

#[test]
fn rfc4271_4_4_keepalives_every_third_of_the_negotiated_hold_time() {
    let mut lab = Lab::new(config());
    // Ours 90, theirs 3: the smaller wins (§4.2), keepalives every second.
    lab.establish(3);
    assert_eq!(lab.s.hold_time(), secs(3));
    for i in 1..=5 {
        // The peer keeps talking, so only our keepalive timer fires.
        lab.input(&keepalive());
        assert_eq!(lab.next_timeout(), secs(i));
        assert_eq!(lab.sent(), vec![keepalive()], "second {i}");
    }
}

#[test]
fn rfc4271_6_5_hold_timer_expiry_sends_4_0_and_retries_after_backoff() {
    let mut lab = Lab::new(config());
    lab.establish(3);
    lab.outputs();
    // Silence from the peer: keepalives at 1 s and 2 s, then the hold timer at 3 s.
    lab.next_timeout();
    lab.next_timeout();
    assert_eq!(lab.sent(), vec![keepalive(), keepalive()]);
    assert_eq!(lab.next_timeout(), secs(3));
    let out = lab.outputs();
    let n = Notification::new(4, 0);
    assert!(out.contains(&Output::Send(msg(3, &[4, 0]))), "{out:?}");
    assert!(out.contains(&Output::Close));
    assert!(out.contains(&Output::Event(Event::Down(Down::Sent(n)))));
    assert_eq!(lab.s.state(), State::Active);
    // Backoff 1 s, then a new connection attempt.
    assert_eq!(lab.next_timeout(), secs(4));
    assert!(lab.outputs().contains(&Output::Connect));
    assert_eq!(lab.s.state(), State::Connect);
}

#[test]
fn rfc4271_8_2_2_connect_retry_backs_off_doubling_to_the_maximum() {
    let mut lab = Lab::new(config());
    lab.s.start(lab.now);
    assert!(lab.outputs().contains(&Output::Connect));
    let mut at = Vec::new();
    for _ in 0..6 {
        at.push(lab.next_timeout().as_secs());
        let out = lab.outputs();
        assert!(
            out.contains(&Output::Close) && out.contains(&Output::Connect),
            "{out:?}"
        );
    }
    // 1 s, then 2, 4, 8, 8, 8 between attempts.
    assert_eq!(at, [1, 3, 7, 15, 23, 31]);
    // Established resets the backoff: the next failure waits 1 s again.
    lab.s
        .connected(LOCAL.parse::<SocketAddr>().unwrap(), lab.now);
    lab.input(&open_msg(90));
    lab.input(&keepalive());
    assert_eq!(lab.s.state(), State::Established);
    lab.s.closed(lab.now);
    let t0 = lab.at();
    assert_eq!(lab.next_timeout() - t0, secs(1));
}

#[test]
fn rfc4271_8_passive_session_waits_and_answers_an_accepted_connection() {
    let mut lab = Lab::new(PeerConfig {
        passive: true,
        ..config()
    });
    lab.s.start(lab.now);
    assert!(!lab.outputs().contains(&Output::Connect));
    assert_eq!(lab.s.state(), State::Active);
    assert!(lab.s.accepts());
    assert_eq!(lab.s.poll_timeout(), None, "no timer while listening");
    lab.s
        .connected(LOCAL.parse::<SocketAddr>().unwrap(), lab.now);
    assert_eq!(lab.sent()[0][18], 1, "OPEN");
    assert!(!lab.s.accepts());
    // A peer that closes puts it back to listening at once.
    lab.s.closed(lab.now);
    assert_eq!(lab.s.state(), State::Active);
    assert!(lab.s.accepts());
}

#[test]
fn rfc4271_4_2_zero_hold_time_disables_keepalives_and_the_hold_timer() {
    let mut lab = Lab::new(config());
    lab.establish(0);
    assert_eq!(lab.s.poll_timeout(), None);
}

#[test]
fn rfc4271_8_opensent_waits_four_minutes_for_the_open() {
    let mut lab = Lab::new(config());
    lab.connect();
    assert_eq!(lab.next_timeout(), secs(240));
    assert!(lab.outputs().contains(&Output::Send(msg(3, &[4, 0]))));
}

#[test]
fn rfc4271_9_announce_sends_exact_ipv4_and_ipv6_updates() {
    let mut lab = Lab::new(config());
    let attrs = RouteAttrs {
        med: Some(5),
        communities: vec![(65001 << 16) | 100],
        large_communities: vec![[65001, 1, 2]],
        ..RouteAttrs::default()
    };
    // Announced before Established: sent once the session is up.
    lab.s.announce(
        Route {
            prefix: "10.99.100.1/32".parse().unwrap(),
            attrs: attrs.clone(),
        },
        lab.now,
    );
    lab.s.announce(route("fd99::1/128"), lab.now);
    lab.establish(90);
    let out = lab.outputs();
    let sent: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(hex(b)),
            _ => None,
        })
        .collect();
    let m = "ff".repeat(16);
    // IPv6 (default attributes) sorts first: ORIGIN IGP, AS_PATH [65001], MP_REACH with next
    // hop fd88:11::2 and fd99::1/128.
    let v6 = format!(
        "{m}004d 02 0000 0036 40010100 4002060201 0000fde9 \
         800e26 0002 01 10 fd880011000000000000000000000002 00 80 fd990000000000000000000000000001"
    );
    // IPv4: ORIGIN, AS_PATH, NEXT_HOP (our side of the session), MED 5, COMMUNITIES
    // 65001:100, LARGE_COMMUNITIES 65001:1:2, then NLRI 10.99.100.1/32.
    let v4 = format!(
        "{m}004d 02 0000 0031 40010100 4002060201 0000fde9 4003040a580b02 80040400000005 \
         c00804fde90064 c0200c 0000fde9 00000001 00000002 200a636401"
    );
    assert_eq!(sent, [v6.replace(' ', ""), v4.replace(' ', "")]);
    assert!(out.contains(&Output::Event(Event::Announced(
        "10.99.100.1/32".parse().unwrap()
    ))));
    assert_eq!(lab.s.announced().count(), 2);

    // Withdraw: the classic field for IPv4, MP_UNREACH for IPv6.
    lab.s.withdraw("10.99.100.1/32".parse().unwrap(), lab.now);
    assert_eq!(lab.sent(), [update(&[32, 10, 99, 100, 1], &[], &[])]);
    lab.s.withdraw("fd99::1/128".parse().unwrap(), lab.now);
    let mut unreach = vec![0, 2, 1, 128, 0xfd, 0x99];
    unreach.extend([0u8; 13]);
    unreach.push(1);
    assert_eq!(lab.sent(), [update(&[], &attr(0x80, 15, &unreach), &[])]);
    assert_eq!(lab.s.announced().count(), 0);
}

#[test]
fn rfc4271_9_2_an_update_restarts_the_keepalive_timer() {
    let mut lab = Lab::new(config());
    lab.establish(3);
    lab.now += Duration::from_millis(500);
    lab.s.announce(route("10.99.100.1/32"), lab.now);
    lab.outputs();
    assert_eq!(lab.s.poll_timeout(), Some(lab.now + secs(1)));
}

#[test]
fn drain_withdraws_everything_and_undrain_announces_again() {
    let mut lab = Lab::new(config());
    lab.establish(90);
    lab.s.announce(route("10.99.100.1/32"), lab.now);
    lab.s.announce(route("10.99.100.2/32"), lab.now);
    lab.outputs();
    lab.s.set_drained(true, lab.now);
    assert_eq!(
        lab.sent(),
        [update(&[32, 10, 99, 100, 1, 32, 10, 99, 100, 2], &[], &[])]
    );
    assert_eq!(lab.s.state(), State::Established, "the session stays up");
    lab.s.set_drained(false, lab.now);
    let sent = lab.sent();
    assert_eq!(sent.len(), 1);
    assert!(hex(&sent[0]).ends_with("200a636401200a636402"));
}

#[test]
fn rfc2918_route_refresh_sends_the_family_again() {
    let mut lab = Lab::new(config());
    lab.establish(90);
    lab.s.announce(route("10.99.100.1/32"), lab.now);
    lab.s.announce(route("fd99::1/128"), lab.now);
    lab.outputs();
    lab.input(&msg(5, &[0, 1, 0, 1]));
    let sent = lab.sent();
    assert_eq!(sent.len(), 1, "IPv4 only");
    assert!(hex(&sent[0]).ends_with("200a636401"));
}

#[test]
fn rfc4486_stop_sends_cease_administrative_shutdown() {
    let mut lab = Lab::new(config());
    lab.establish(90);
    lab.s.announce(route("10.99.100.1/32"), lab.now);
    lab.outputs();
    lab.s.stop();
    let out = lab.outputs();
    assert_eq!(out[0], Output::Send(msg(3, &[6, 2])));
    assert!(out.contains(&Output::Close));
    assert!(out.contains(&Output::Event(Event::Withdrawn(
        "10.99.100.1/32".parse().unwrap()
    ))));
    assert_eq!(lab.s.state(), State::Idle);
    assert_eq!(lab.s.poll_timeout(), None, "stopped for good");
    assert_eq!(lab.s.stats().flaps, 1);
}

#[test]
fn rfc4271_6_4_a_received_notification_closes_and_retries() {
    let mut lab = Lab::new(config());
    lab.establish(90);
    lab.input(&msg(3, &[6, 4]));
    let out = lab.outputs();
    assert!(out.contains(&Output::Close));
    assert!(out.contains(&Output::Event(Event::Down(Down::Received(
        Notification::new(6, 4)
    )))));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Send(b) if b[18] == 3)),
        "never a NOTIFICATION in answer to one"
    );
    assert_eq!(lab.s.state(), State::Active);
}

#[test]
fn ibgp_sends_local_pref_and_an_empty_as_path() {
    let mut lab = Lab::new(PeerConfig {
        remote_as: MY_AS,
        ..config()
    });
    lab.connect();
    lab.input(&open(MY_AS, 90, [10, 88, 1, 1], &caps_all(MY_AS)));
    lab.input(&keepalive());
    assert_eq!(lab.s.state(), State::Established);
    lab.outputs();
    lab.s.announce(route("10.99.100.1/32"), lab.now);
    let sent = hex(&lab.sent()[0]);
    // AS_PATH of length zero, LOCAL_PREF 100.
    assert!(sent.contains("400200"), "{sent}");
    assert!(sent.contains("40050400000064"), "{sent}");
}

#[test]
fn rfc6793_a_two_octet_peer_gets_as_trans_and_as4_path() {
    let mut lab = Lab::new(PeerConfig {
        local_as: 4_200_000_000,
        ..config()
    });
    let open_sent = lab.connect();
    assert_eq!(hex(&open_sent[20..22]), "5ba0", "AS_TRANS in My AS");
    // A peer without the 4-octet capability (only MP IPv4).
    lab.input(&open(
        PEER_AS,
        90,
        [10, 88, 1, 1],
        &param(&[1, 4, 0, 1, 0, 1]),
    ));
    lab.input(&keepalive());
    lab.outputs();
    lab.s.announce(route("10.99.100.1/32"), lab.now);
    let sent = hex(&lab.sent()[0]);
    assert!(
        sent.contains("400204 0201 5ba0".replace(' ', "").as_str()),
        "{sent}"
    );
    assert!(
        sent.contains("c01106 0201 fa56ea00".replace(' ', "").as_str()),
        "{sent}"
    );
}

#[test]
fn input_split_at_every_byte_is_reassembled() {
    let mut lab = Lab::new(config());
    lab.connect();
    let mut bytes = open_msg(90);
    bytes.extend(keepalive());
    bytes.extend(update(&[], &good_attrs(), &[24, 192, 0, 2]));
    for b in bytes {
        lab.input(&[b]);
    }
    assert_eq!(lab.s.state(), State::Established);
    assert!(lab.outputs().contains(&Output::Event(Event::Received {
        announced: 1,
        withdrawn: 0
    })));
}

#[test]
fn rfc9384_bfd_down_ends_the_session_with_cease_10() {
    let mut lab = Lab::new(config());
    lab.establish(90);
    lab.outputs();
    lab.s.abort(Notification::new(6, 10), lab.now);
    let out = lab.outputs();
    assert_eq!(out[0], Output::Send(msg(3, &[6, 10])));
    assert!(out.contains(&Output::Close));
    assert_eq!(lab.s.state(), State::Active, "and retries");
    // Not connected: nothing to end.
    lab.s.abort(Notification::new(6, 10), lab.now);
    assert!(lab.outputs().is_empty());
}
