//! Fuzz the BFD control packet decoder and a session behind it.
//! Invariants: no panic; a decoded packet re-encodes to bytes that decode the same; a
//! session handed any bytes either refuses them or stays in a valid state.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tenbin_ha::bfd::packet::Control;
use tenbin_ha::bfd::{BfdConfig, BfdSession};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Control::parse(data) {
        assert_eq!(Control::parse(&c.emit()), Ok(c));
    }
    let now = Instant::now();
    let mut s = BfdSession::new(
        BfdConfig {
            desired_min_tx: Duration::from_millis(100),
            required_min_rx: Duration::from_millis(100),
            detect_mult: 3,
            local_discr: 1,
            seed: 1,
        },
        now,
    );
    for chunk in data.chunks(24) {
        let _ = s.handle_input(chunk, now);
        s.handle_timeout(now + Duration::from_millis(50));
    }
    while s.poll_output().is_some() {}
    if let Some(t) = s.poll_timeout() {
        assert!(t >= now);
    }
});
