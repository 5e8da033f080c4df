//! Conformance of the sync protocol with a manual clock: two machines wired back to back,
//! and hand-laid bytes for what a peer may send.

use std::time::Duration;

use ring::hmac;

use super::frame::{self, FrameError, Message, Role, WireEntry, MAX_FRAME};
use super::session::{Event, Session, SessionConfig, SessionError};

const KEY: &[u8] = b"0123456789abcdef-shared";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn key(k: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, k)
}

fn cfg(name: &str) -> SessionConfig {
    SessionConfig {
        name: name.into(),
        queue_bound: 4,
        keepalive: ms(1000),
        dead_after: ms(3000),
    }
}

fn entry(key: u64, server: &str, age: u64) -> WireEntry {
    WireEntry {
        key,
        server: server.into(),
        age: ms(age),
    }
}

fn pair(now: Duration) -> (Session, Session) {
    let d = Session::new(Role::Dialer, &key(KEY), [1; 16], cfg("a"), now).unwrap();
    let a = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), now).unwrap();
    (d, a)
}

/// Moves every byte each side wants to send to the other until both are quiet; returns
/// the events of each side, the dialer answering snapshot requests with `tables`.
fn pump(
    d: &mut Session,
    a: &mut Session,
    now: Duration,
    tables: &[(String, Vec<WireEntry>)],
) -> (Vec<Event>, Vec<Event>) {
    let (mut de, mut ae) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let mut moved = false;
        if let Some(b) = d.poll_transmit(now) {
            a.handle_input(&b, now).unwrap();
            moved = true;
        }
        if let Some(b) = a.poll_transmit(now) {
            d.handle_input(&b, now).unwrap();
            moved = true;
        }
        while let Some(e) = d.poll_event() {
            if e == Event::SnapshotWanted {
                d.send_snapshot(tables.to_vec(), now).unwrap();
            }
            de.push(e);
        }
        while let Some(e) = a.poll_event() {
            ae.push(e);
        }
        if !moved {
            break;
        }
    }
    (de, ae)
}

#[test]
fn hello_is_the_documented_layout() {
    let d = Session::new(Role::Dialer, &key(KEY), [7; 16], cfg("n1"), ms(0));
    let bytes = d.unwrap().poll_transmit(ms(0)).unwrap();
    let mut want = vec![0, 0, 0, 25];
    want.extend_from_slice(b"TBSY");
    want.extend_from_slice(&[1, 0]);
    want.extend_from_slice(&[7; 16]);
    want.extend_from_slice(&[2, b'n', b'1']);
    assert_eq!(bytes, want);
}

#[test]
fn connect_sends_a_full_snapshot_then_changes() {
    let (mut d, mut a) = pair(ms(0));
    let tables = vec![(
        "pool/web".to_string(),
        vec![entry(1, "s1", 10), entry(2, "s2", 0)],
    )];
    let (de, ae) = pump(&mut d, &mut a, ms(0), &tables);
    assert_eq!(de[0], Event::Established { peer: "b".into() });
    assert_eq!(de[1], Event::SnapshotWanted);
    assert_eq!(ae[0], Event::Established { peer: "a".into() });
    assert_eq!(
        ae[1],
        Event::Received {
            table: "pool/web".into(),
            entries: tables[0].1.clone()
        }
    );
    assert_eq!(ae[2], Event::SnapshotComplete { entries: 2 });
    let s = d.stats(ms(0));
    assert_eq!(
        (s.state, s.resyncs, s.entries_sent, s.unacked),
        ("established", 1, 2, 0)
    );
    assert_eq!(a.stats(ms(0)).entries_received, 2);

    d.push("pool/web", entry(3, "s1", 0), ms(100));
    d.push("pool/api", entry(4, "s9", 5), ms(150));
    let (_, ae) = pump(&mut d, &mut a, ms(200), &[]);
    // One frame per table; time spent queued is added to the age.
    assert_eq!(
        ae,
        vec![
            Event::Received {
                table: "pool/web".into(),
                entries: vec![entry(3, "s1", 100)]
            },
            Event::Received {
                table: "pool/api".into(),
                entries: vec![entry(4, "s9", 55)]
            },
        ]
    );
    assert_eq!(d.stats(ms(200)).entries_sent, 4);
}

#[test]
fn wrong_key_fails_authentication() {
    let mut d = Session::new(Role::Dialer, &key(KEY), [1; 16], cfg("a"), ms(0)).unwrap();
    let mut a = Session::new(
        Role::Acceptor,
        &key(b"another key, 16+"),
        [2; 16],
        cfg("b"),
        ms(0),
    )
    .unwrap();
    a.handle_input(&d.poll_transmit(ms(0)).unwrap(), ms(0))
        .unwrap();
    d.handle_input(&a.poll_transmit(ms(0)).unwrap(), ms(0))
        .unwrap();
    while d.poll_event().is_some() {}
    d.send_snapshot(Vec::new(), ms(0)).unwrap();
    let err = a.handle_input(&d.poll_transmit(ms(0)).unwrap(), ms(0));
    assert_eq!(err, Err(SessionError::Frame(FrameError::Auth)));
    assert!(a.is_closed());
}

#[test]
fn a_replayed_frame_is_refused() {
    let (mut d, mut a) = pair(ms(0));
    pump(&mut d, &mut a, ms(0), &[]);
    d.push("t", entry(1, "s", 0), ms(0));
    let frame = d.poll_transmit(ms(0)).unwrap();
    a.handle_input(&frame, ms(0)).unwrap();
    let err = a.handle_input(&frame, ms(0));
    assert!(matches!(
        err,
        Err(SessionError::Frame(FrameError::Sequence { .. }))
    ));
}

#[test]
fn a_recorded_connection_does_not_verify_on_a_new_one() {
    let (mut d, mut a) = pair(ms(0));
    let mut recorded = d.poll_transmit(ms(0)).unwrap();
    a.handle_input(&recorded, ms(0)).unwrap();
    d.handle_input(&a.poll_transmit(ms(0)).unwrap(), ms(0))
        .unwrap();
    while d.poll_event().is_some() {}
    d.send_snapshot(vec![("t".into(), vec![entry(1, "s", 0)])], ms(0))
        .unwrap();
    recorded.extend(d.poll_transmit(ms(0)).unwrap());
    // Replayed at an acceptor with a fresh nonce: the hello parses, the first frame fails.
    let mut fresh = Session::new(Role::Acceptor, &key(KEY), [3; 16], cfg("b"), ms(0)).unwrap();
    let err = fresh.handle_input(&recorded, ms(0));
    assert_eq!(err, Err(SessionError::Frame(FrameError::Auth)));
}

#[test]
fn reflected_frames_are_refused() {
    let mut d = Session::new(Role::Dialer, &key(KEY), [1; 16], cfg("a"), ms(0)).unwrap();
    let own = d.poll_transmit(ms(0)).unwrap();
    let err = d.handle_input(&own, ms(0));
    assert_eq!(
        err,
        Err(SessionError::Frame(FrameError::SameRole(Role::Dialer)))
    );
    // An authenticated frame sent back to its sender fails the tag (the role is under it).
    let (mut d, mut a) = pair(ms(0));
    pump(&mut d, &mut a, ms(0), &[]);
    d.push("t", entry(1, "s", 0), ms(0));
    let frame = d.poll_transmit(ms(0)).unwrap();
    assert_eq!(
        d.handle_input(&frame, ms(0)),
        Err(SessionError::Frame(FrameError::Auth))
    );
}

#[test]
fn a_full_queue_is_dropped_for_a_full_resync() {
    let (mut d, mut a) = pair(ms(0));
    pump(&mut d, &mut a, ms(0), &[]);
    for k in 0..5 {
        d.push("t", entry(k, "s", 0), ms(0));
    }
    let s = d.stats(ms(0));
    assert_eq!((s.overflows, s.queued, s.state), (1, 0, "resync"));
    assert_eq!(d.poll_event(), Some(Event::SnapshotWanted));
    // Changes pushed while a snapshot is due are in the snapshot.
    d.push("t", entry(9, "s", 0), ms(0));
    assert_eq!(d.stats(ms(0)).queued, 0);
    d.send_snapshot(vec![("t".into(), vec![entry(9, "s", 0)])], ms(0))
        .unwrap();
    let (_, ae) = pump(&mut d, &mut a, ms(0), &[]);
    assert!(ae.contains(&Event::SnapshotComplete { entries: 1 }));
    assert_eq!(d.stats(ms(0)).resyncs, 2);
}

#[test]
fn lag_is_the_age_of_the_oldest_unacknowledged_change() {
    let (mut d, mut a) = pair(ms(0));
    pump(&mut d, &mut a, ms(0), &[]);
    d.push("t", entry(1, "s", 0), ms(100));
    assert_eq!(d.stats(ms(300)).lag, ms(200));
    let frame = d.poll_transmit(ms(400)).unwrap();
    let s = d.stats(ms(700));
    assert_eq!((s.unacked, s.lag), (1, ms(600)));
    a.handle_input(&frame, ms(700)).unwrap();
    d.handle_input(&a.poll_transmit(ms(700)).unwrap(), ms(700))
        .unwrap();
    let s = d.stats(ms(700));
    assert_eq!((s.unacked, s.lag), (0, Duration::ZERO));
}

#[test]
fn keepalives_when_idle_and_a_silent_peer_times_out() {
    let (mut d, mut a) = pair(ms(0));
    pump(&mut d, &mut a, ms(0), &[]);
    assert_eq!(d.poll_timeout(), Some(ms(1000)));
    d.handle_timeout(ms(1000)).unwrap();
    let ka = d.poll_transmit(ms(1000)).unwrap();
    a.handle_input(&ka, ms(1000)).unwrap();
    // A keepalive is not acknowledged (it carries no data).
    assert_eq!(a.poll_transmit(ms(1000)), None);
    assert_eq!(d.poll_timeout(), Some(ms(2000)));
    assert_eq!(
        d.handle_timeout(ms(3000)),
        Err(SessionError::Timeout(ms(3000)))
    );
    assert!(d.is_closed());
    // A peer that never says hello times out too.
    let mut lone = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), ms(0)).unwrap();
    assert_eq!(lone.poll_timeout(), Some(ms(3000)));
    assert!(lone.handle_timeout(ms(3000)).is_err());
}

#[test]
fn length_prefixes_are_bounded_and_partial_frames_wait() {
    let mut a = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), ms(0)).unwrap();
    // A prefix announcing more than MAX_FRAME is refused before the body arrives.
    let big = ((MAX_FRAME + 1) as u32).to_be_bytes();
    assert_eq!(
        a.handle_input(&big, ms(0)),
        Err(SessionError::Frame(FrameError::Length(MAX_FRAME + 1)))
    );
    let mut a = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), ms(0)).unwrap();
    assert!(a.handle_input(&[0, 0, 0, 0], ms(0)).is_err());
    // A hello split over three reads is taken whole.
    let mut d = Session::new(Role::Dialer, &key(KEY), [1; 16], cfg("a"), ms(0)).unwrap();
    let hello = d.poll_transmit(ms(0)).unwrap();
    let mut a = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), ms(0)).unwrap();
    for part in [&hello[..2], &hello[2..10], &hello[10..]] {
        a.handle_input(part, ms(0)).unwrap();
    }
    assert_eq!(
        a.poll_event(),
        Some(Event::Established { peer: "a".into() })
    );
}

#[test]
fn malformed_hellos_are_refused() {
    let cases: [(&[u8], FrameError); 4] = [
        (b"XXXX\x01\x00", FrameError::Magic),
        (b"TBSY\x02\x00", FrameError::Version(2)),
        (b"TBSY\x01\x07", FrameError::Role(7)),
        (b"TBSY\x01\x00short", FrameError::Truncated),
    ];
    for (body, want) in cases {
        let mut a = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), ms(0)).unwrap();
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        assert_eq!(a.handle_input(&f, ms(0)), Err(SessionError::Frame(want)));
    }
}

/// An Entries frame laid out byte by byte as the module docs describe, tagged by hand.
#[test]
fn a_hand_laid_entries_frame_decodes() {
    let mut d = Session::new(Role::Dialer, &key(KEY), [1; 16], cfg("a"), ms(0)).unwrap();
    let mut a = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), ms(0)).unwrap();
    let dh = d.poll_transmit(ms(0)).unwrap();
    let ah = a.poll_transmit(ms(0)).unwrap();
    a.handle_input(&dh, ms(0)).unwrap();
    assert!(matches!(a.poll_event(), Some(Event::Established { .. })));
    // conn_key = HMAC(shared, label || dialer hello body || acceptor hello body)
    let mut label = b"tenbin-sync/1".to_vec();
    label.extend_from_slice(&dh[4..]);
    label.extend_from_slice(&ah[4..]);
    let conn = key(hmac::sign(&key(KEY), &label).as_ref());
    let mut signed = vec![3u8]; // kind: entries
    signed.extend_from_slice(&1u64.to_be_bytes()); // seq
    signed.extend_from_slice(&[3, b'p', b'/', b'w', 0, 1]); // table "p/w", one entry
    signed.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    signed.extend_from_slice(&1500u32.to_be_bytes());
    signed.extend_from_slice(&[2, b's', b'1']);
    let mut tagged = vec![0u8]; // sender role: dialer
    tagged.extend_from_slice(&signed);
    let tag = hmac::sign(&conn, &tagged);
    let mut frame = ((signed.len() + 32) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&signed);
    frame.extend_from_slice(tag.as_ref());
    a.handle_input(&frame, ms(0)).unwrap();
    assert_eq!(
        a.poll_event(),
        Some(Event::Received {
            table: "p/w".into(),
            entries: vec![entry(0x1122_3344_5566_7788, "s1", 1500)]
        })
    );
    // The acknowledgement names that frame.
    let ack = a.poll_transmit(ms(0)).unwrap();
    let msg = frame::open(&conn, Role::Acceptor, 1, &ack[4..]).unwrap();
    assert_eq!(msg, Message::Ack { seq: 1 });
    // One flipped bit anywhere fails the tag.
    let mut bad = frame.clone();
    bad[10] ^= 1;
    let mut a2 = Session::new(Role::Acceptor, &key(KEY), [2; 16], cfg("b"), ms(0)).unwrap();
    a2.handle_input(&dh, ms(0)).unwrap();
    assert_eq!(
        a2.handle_input(&bad, ms(0)),
        Err(SessionError::Frame(FrameError::Auth))
    );
}

#[test]
fn a_large_snapshot_is_split_into_bounded_frames() {
    let (mut d, mut a) = pair(ms(0));
    let big: Vec<WireEntry> = (0..20_000).map(|k| entry(k, "server-name", 0)).collect();
    let tables = vec![("pool/big".to_string(), big)];
    let mut sizes = Vec::new();
    a.handle_input(&d.poll_transmit(ms(0)).unwrap(), ms(0))
        .unwrap();
    d.handle_input(&a.poll_transmit(ms(0)).unwrap(), ms(0))
        .unwrap();
    while d.poll_event().is_some() {}
    d.send_snapshot(tables, ms(0)).unwrap();
    let bytes = d.poll_transmit(ms(0)).unwrap();
    let mut rest = &bytes[..];
    while let Some((body, n)) = frame::split_frame(rest).unwrap() {
        sizes.push(body.len());
        rest = &rest[n..];
    }
    assert!(sizes.len() > 3, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s <= MAX_FRAME));
    a.handle_input(&bytes, ms(0)).unwrap();
    let mut got = 0;
    while let Some(e) = a.poll_event() {
        if let Event::Received { entries, .. } = e {
            got += entries.len();
        }
    }
    assert_eq!(got, 20_000);
}
