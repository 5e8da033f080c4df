//! Host-agent reports: codec, authentication, replay, verdicts under injected time.
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use tenbin_core::ServerState;
use tenbin_xdp::report::{key, HealthBook, Report, ReportError, ServiceHealth, Verdict};

const SECRET: &[u8] = b"sixteen byte key, or longer";

fn report(seq: u64, healthy: bool) -> Report {
    Report {
        seq,
        backend: v4(3),
        services: vec![
            ServiceHealth {
                vip: "10.0.0.1".parse().unwrap(),
                port: 80,
                proto: 6,
                healthy,
            },
            ServiceHealth {
                vip: "2001:db8:ffff::2".parse().unwrap(),
                port: 53,
                proto: 17,
                healthy: true,
            },
        ],
    }
}

#[test]
fn round_trip_and_authentication() {
    let k = key(SECRET).unwrap();
    let r = report(7, false);
    let bytes = r.encode(&k).unwrap();
    assert_eq!(Report::decode(&bytes, &k).unwrap(), r);
    // Any flipped bit is refused, and no prefix of the datagram decodes (nor panics).
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(Report::decode(&b, &k).is_err(), "bit flip at {i} accepted");
        assert!(Report::decode(&bytes[..i], &k).is_err());
    }
    let other = key(b"another sixteen byte key").unwrap();
    assert_eq!(Report::decode(&bytes, &other), Err(ReportError::Auth));
    assert!(key(b"short").is_none());
}

#[test]
fn failing_and_silent_backends_go_down() {
    let mut book = HealthBook::new(Duration::from_secs(3));
    let vip: IpAddr = "10.0.0.1".parse().unwrap();
    let t = Duration::from_secs(100);
    assert_eq!(book.verdict(v4(3), vip, 80, 6, t), Verdict::Unknown);
    assert!(book.on_report(&report(1, true), t));
    assert_eq!(book.verdict(v4(3), vip, 80, 6, t), Verdict::Healthy);
    // Replays and older reports are ignored.
    assert!(!book.on_report(&report(1, false), t));
    assert_eq!(book.verdict(v4(3), vip, 80, 6, t), Verdict::Healthy);
    assert!(book.on_report(&report(2, false), t + Duration::from_secs(1)));
    assert_eq!(
        book.verdict(v4(3), vip, 80, 6, t + Duration::from_secs(1)),
        Verdict::Failing
    );
    // A port-0 VIP sees the service through any port it reports.
    assert_eq!(
        book.verdict(v4(3), vip, 0, 6, t + Duration::from_secs(1)),
        Verdict::Failing
    );
    // Unlisted services stay unknown; silence beyond the timeout is stale.
    assert_eq!(book.verdict(v4(3), vip, 81, 6, t), Verdict::Unknown);
    assert!(book.on_report(&report(3, true), t + Duration::from_secs(2)));
    assert_eq!(
        book.verdict(v4(3), vip, 80, 6, t + Duration::from_secs(5)),
        Verdict::Healthy
    );
    assert_eq!(
        book.verdict(v4(3), vip, 80, 6, t + Duration::from_secs(6)),
        Verdict::Stale
    );

    let mut s = spec();
    book.overlay(&mut s, t + Duration::from_secs(6));
    let state = |s: &tenbin_xdp::control::MuxSpec, vip: usize, addr: IpAddr| {
        s.vips[vip]
            .backends
            .iter()
            .find(|b| b.addr == addr)
            .unwrap()
            .state
    };
    assert_eq!(state(&s, 0, v4(3)), ServerState::Down);
    assert_eq!(
        state(&s, 0, v4(1)),
        ServerState::Active,
        "never reported: config decides"
    );
    // A silent host is down for every VIP, even those its reports never listed...
    assert_eq!(state(&s, 1, v4(3)), ServerState::Down);
    // ...while a reporting host leaves unlisted services to the configuration.
    let mut s = spec();
    book.overlay(&mut s, t + Duration::from_secs(2));
    assert_eq!(state(&s, 0, v4(3)), ServerState::Active);
    assert_eq!(state(&s, 1, v4(3)), ServerState::Active);
}

#[test]
fn random_datagrams_never_decode_or_panic() {
    let k = key(SECRET).unwrap();
    let mut r = Rng(99);
    let valid = report(5, true).encode(&k).unwrap();
    for i in 0..20_000 {
        let len = (r.next() % 200) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        if i % 2 == 0 && len >= 8 {
            // Keep a plausible header so that the deeper checks run too.
            b[..8].copy_from_slice(&valid[..8]);
        }
        assert!(Report::decode(&b, &k).is_err());
    }
}
