//! Fuzz the host-agent report decoder the Mux's loop runs on every datagram of its report
//! socket. Invariants: no panic; a datagram that decodes re-encodes to the same bytes (the
//! format has one encoding) and the Mux's book takes it without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use tenbin_xdp::report::{key, HealthBook, Report};

fuzz_target!(|data: &[u8]| {
    let k = key(b"fuzz shared report key").expect("long enough");
    if let Ok(r) = Report::decode(data, &k) {
        assert_eq!(r.encode(&k).expect("re-encodes"), data);
        let mut book = HealthBook::new(Duration::from_secs(1));
        book.on_report(&r, Duration::ZERO);
        let _ = book.next_stale(Duration::ZERO);
    }
    // A datagram under another key must never pass.
    let other = key(b"another key entirely, 16+").expect("long enough");
    if Report::decode(data, &k).is_ok() {
        assert!(Report::decode(data, &other).is_err());
    }
});
