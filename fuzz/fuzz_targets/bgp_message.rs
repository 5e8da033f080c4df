//! Fuzz the BGP message decoder and the session behind it: any bytes, as one message under
//! both AS widths and as a stream into an Established session.
//! Invariants: no panic; a decoded message re-encodes to bytes that decode to the same
//! meaning; a session fed garbage either stays up or sends a NOTIFICATION and closes.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tenbin_ha::bgp::wire::{Context, Message};
use tenbin_ha::bgp::{Output, PeerConfig, Session, State};

fn established(now: Instant) -> Session {
    let mut s = Session::new(PeerConfig {
        local_as: 65001,
        remote_as: 65000,
        router_id: "10.88.11.2".parse().unwrap(),
        hold_time: 9,
        passive: false,
        connect_retry: Duration::from_secs(1),
        connect_retry_max: Duration::from_secs(8),
        ipv4: true,
        ipv6: true,
        next_hop_v4: None,
        next_hop_v6: None,
    });
    s.start(now);
    s.connected("10.88.11.2:40000".parse().unwrap(), now);
    // BIRD's OPEN (AS 65000, hold 9) and a KEEPALIVE.
    let open = include_bytes!("../corpus/bgp_message/bird-open-01");
    s.handle_input(open, now);
    s.handle_input(include_bytes!("../corpus/bgp_message/bird-keepalive-02"), now);
    assert_eq!(s.state(), State::Established);
    while s.poll_output().is_some() {}
    s
}

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [false, true] {
        let ctx = Context { four_octet_as };
        if let Ok(Some((m, n))) = Message::decode(data, ctx) {
            assert!(n <= data.len());
            let again = m.emit(ctx);
            let (m2, n2) = Message::decode(&again, ctx)
                .expect("re-encoded message decodes")
                .expect("whole");
            assert_eq!(n2, again.len());
            assert_eq!(m, m2);
        }
    }
    let now = Instant::now();
    let mut s = established(now);
    s.handle_input(data, now);
    let out: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    if s.state() != State::Established {
        assert!(out.contains(&Output::Close), "{out:?}");
    }
});
