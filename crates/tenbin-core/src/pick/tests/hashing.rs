//! Unit tests of the hashing algorithms through the `Balancer`: stickiness, walk-on,
//! recovery, source keys and slow start by key admission.

use std::time::Duration;

use super::{pool, servers, Picker};
use crate::health::SlowStart;
use crate::pick::{source_key, Algorithm};
use crate::{BackendId, ServerState};

/// A server going down moves only its own keys, and they come back when it recovers.
fn hashing_is_sticky_and_walks_on(algorithm: Algorithm) {
    let mut b = pool(algorithm, servers(&[1; 8]));
    let mut p = Picker::new();
    for key in 0..200u64 {
        let first = p.pick(&mut b, Some(key), &[]).unwrap();
        assert_eq!(p.pick(&mut b, Some(key), &[]), Some(first));
        let ex = [BackendId(first)];
        let second = p.pick(&mut b, Some(key), &ex).unwrap();
        assert_ne!(second, first);
        assert_eq!(
            p.pick(&mut b, Some(key), &ex),
            Some(second),
            "walk is stable"
        );
    }
    let before: Vec<u32> = (0..500)
        .map(|k| p.pick(&mut b, Some(k), &[]).unwrap())
        .collect();
    assert!(before.contains(&3));
    b.set_state(BackendId(3), ServerState::Down, Duration::ZERO);
    for (k, &was) in before.iter().enumerate() {
        let now = p.pick(&mut b, Some(k as u64), &[]).unwrap();
        assert_ne!(now, 3);
        if was != 3 {
            assert_eq!(now, was, "key {k} moved although its server stayed");
        }
    }
    b.set_state(BackendId(3), ServerState::Active, Duration::ZERO);
    for (k, &was) in before.iter().enumerate() {
        let again = p.pick(&mut b, Some(k as u64), &[]);
        assert_eq!(again, Some(was), "key {k} after recovery");
    }
}

#[test]
fn maglev_is_sticky_and_walks_on() {
    hashing_is_sticky_and_walks_on(Algorithm::Maglev { table_size: 65_537 });
}

#[test]
fn ketama_is_sticky_and_walks_on() {
    hashing_is_sticky_and_walks_on(Algorithm::Ketama);
}

#[test]
fn source_hash_keeps_a_prefix_together() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let k = |s| source_key(ip(s), 24, 48);
    assert_eq!(k("192.0.2.1"), k("192.0.2.254"));
    assert_ne!(k("192.0.2.1"), k("192.0.3.1"));
    assert_eq!(k("::ffff:192.0.2.9"), k("192.0.2.1"));
    assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:ffff::2"));
    assert_ne!(k("2001:db8:1::1"), k("2001:db8:2::1"));
    assert_ne!(source_key(ip("0.0.0.0"), 0, 0), source_key(ip("::"), 0, 0));
    assert_ne!(source_key(ip("192.0.2.1"), 32, 0), k("192.0.2.2") ^ 1);

    let mut b = pool(Algorithm::SourceHash, servers(&[1; 5]));
    let mut p = Picker::new();
    let a = p.pick(&mut b, Some(k("198.51.100.7")), &[]);
    assert_eq!(p.pick(&mut b, Some(k("198.51.100.200")), &[]), a);
}

#[test]
fn hashing_without_a_key_spreads() {
    let mut b = pool(Algorithm::Maglev { table_size: 251 }, servers(&[1; 4]));
    let c = Picker::new().counts(&mut b, 4, 400);
    assert!(c.iter().all(|&n| n > 50), "{c:?}");
}

#[test]
fn non_prime_table_size_still_places() {
    let mut b = pool(Algorithm::Maglev { table_size: 100 }, servers(&[1; 3]));
    let mut p = Picker::new();
    let a = p.pick(&mut b, Some(9), &[]);
    assert!(a.is_some());
    assert_eq!(p.pick(&mut b, Some(9), &[]), a);
}

#[test]
fn hashing_ramps_a_returning_server_by_key_admission() {
    let mut b = pool(Algorithm::Maglev { table_size: 65_537 }, servers(&[1; 4]));
    b.set_slow_start(Some(SlowStart {
        duration: Duration::from_secs(10),
    }));
    let mut p = Picker::new();
    p.now = Duration::from_secs(50);
    let owned: Vec<u64> = (0..4000u64)
        .filter(|&k| p.pick(&mut b, Some(k), &[]) == Some(2))
        .collect();
    assert!(owned.len() > 800, "{}", owned.len());
    b.set_state(BackendId(2), ServerState::Down, Duration::from_secs(50));
    b.set_state(BackendId(2), ServerState::Active, Duration::from_secs(100));
    let mut admitted_before: Vec<u64> = Vec::new();
    for (secs, lo, hi) in [(102, 0.15, 0.25), (105, 0.45, 0.55), (110, 1.0, 1.0)] {
        p.now = Duration::from_secs(secs);
        let admitted: Vec<u64> = owned
            .iter()
            .copied()
            .filter(|&k| p.pick(&mut b, Some(k), &[]) == Some(2))
            .collect();
        let share = admitted.len() as f64 / owned.len() as f64;
        assert!((lo..=hi).contains(&share), "at {secs}s: {share}");
        assert!(
            admitted_before.iter().all(|k| admitted.contains(k)),
            "a key admitted earlier in the ramp left again"
        );
        admitted_before = admitted;
    }
    // Keys of the other servers never moved onto the ramping server, nor elsewhere.
    p.now = Duration::from_secs(102);
    let strangers = (0..4000u64)
        .filter(|k| !owned.contains(k))
        .filter(|&k| p.pick(&mut b, Some(k), &[]) == Some(2))
        .count();
    assert_eq!(strangers, 0);
}
