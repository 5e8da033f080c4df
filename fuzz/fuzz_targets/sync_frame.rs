//! Fuzz the session-sync decoder (tenbin-ha `sync::frame` and the session reading it).
//! The first byte selects what the rest is:
//! - even: raw bytes from a peer, fed to an acceptor in random-sized reads. Invariants: no
//!   panic; an error closes the session; a hello that parses re-encodes to the same body.
//! - odd: `kind payload` of an authenticated frame, which the target tags with a valid
//!   HMAC so the payload decoder is reached. Invariant: what opens re-seals to the very
//!   same bytes (one encoding per message), and a flipped tag bit never opens.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ring::hmac;
use tenbin_ha::sync::frame::{self, Hello, Role};
use tenbin_ha::sync::{Session, SessionConfig};

const KEY: &[u8] = b"fuzz-sync-key-0123456789";

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let shared = hmac::Key::new(hmac::HMAC_SHA256, KEY);
    if sel & 1 == 0 {
        if let Ok(Some((body, _))) = frame::split_frame(rest) {
            if let Ok(h) = Hello::parse(body) {
                assert_eq!(h.body().as_deref(), Ok(body));
            }
        }
        let cfg = SessionConfig::default();
        let mut s = Session::new(Role::Acceptor, &shared, [9; 16], cfg, Duration::ZERO)
            .expect("a hello of a short name");
        let step = usize::from(sel >> 1).max(1);
        for chunk in rest.chunks(step) {
            if s.handle_input(chunk, Duration::ZERO).is_err() {
                assert!(s.is_closed());
                break;
            }
        }
        while s.poll_event().is_some() {}
        let _ = s.poll_transmit(Duration::ZERO);
        return;
    }
    let conn = frame::connection_key(&shared, b"dialer", b"acceptor");
    let mut signed = Vec::with_capacity(rest.len() + 9);
    signed.push(rest.first().copied().unwrap_or(0));
    signed.extend_from_slice(&1u64.to_be_bytes());
    signed.extend_from_slice(rest.get(1..).unwrap_or_default());
    let mut tagged = vec![0u8];
    tagged.extend_from_slice(&signed);
    let tag = hmac::sign(&conn, &tagged);
    let mut body = signed;
    body.extend_from_slice(tag.as_ref());
    if body.len() > frame::MAX_FRAME {
        return;
    }
    if let Ok(msg) = frame::open(&conn, Role::Dialer, 1, &body) {
        let again = frame::seal(&conn, Role::Dialer, 1, &msg).expect("an opened message seals");
        assert_eq!(&again[4..], &body[..]);
        let mut bad = body.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(frame::open(&conn, Role::Dialer, 1, &bad).is_err());
        assert!(frame::open(&conn, Role::Acceptor, 1, &body).is_err());
    }
});
