//! RFC 5880 §6.8 with a manual clock: two sessions wired back to back come Up through the
//! three-way handshake, switch from the slow rate to the configured one with a Poll/Final
//! exchange, and one goes Down (diag 1) a detection time after the other falls silent.
use std::time::{Duration, Instant};

use tenbin_ha::bfd::packet::{diag, Control};
use tenbin_ha::bfd::{BfdConfig, BfdOutput, BfdSession, State};

fn cfg(discr: u32) -> BfdConfig {
    BfdConfig {
        desired_min_tx: Duration::from_millis(100),
        required_min_rx: Duration::from_millis(100),
        detect_mult: 3,
        local_discr: discr,
        seed: u64::from(discr),
    }
}

type Change = (State, State, u8);

/// Drains a session: packets sent and state changes.
fn drain(s: &mut BfdSession) -> (Vec<[u8; 24]>, Vec<Change>) {
    let (mut p, mut st) = (Vec::new(), Vec::new());
    while let Some(o) = s.poll_output() {
        match o {
            BfdOutput::Send(b) => p.push(b),
            BfdOutput::State { from, to, diag } => st.push((from, to, diag)),
        }
    }
    (p, st)
}

/// Runs both sessions to `until`, delivering packets instantly (a→b only while `a_talks`).
fn run(
    a: &mut BfdSession,
    b: &mut BfdSession,
    now: &mut Instant,
    until: Instant,
    a_talks: bool,
) -> Vec<(Duration, Control)> {
    let start = *now;
    let mut sent_by_a = Vec::new();
    loop {
        let (pa, _) = drain(a);
        let (pb, _) = drain(b);
        for p in &pa {
            sent_by_a.push((*now - start, Control::parse(p).unwrap()));
            if a_talks {
                b.handle_input(p, *now).unwrap();
            }
        }
        for p in &pb {
            a.handle_input(p, *now).unwrap();
        }
        if !pa.is_empty() || !pb.is_empty() {
            continue;
        }
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= until => {
                *now = t.max(*now);
                a.handle_timeout(*now);
                b.handle_timeout(*now);
            }
            _ => {
                *now = until;
                return sent_by_a;
            }
        }
    }
}

#[test]
fn rfc5880_6_8_6_three_way_handshake_then_the_fast_rate() {
    let mut now = Instant::now();
    let mut a = BfdSession::new(cfg(11), now);
    let mut b = BfdSession::new(cfg(22), now);
    let t0 = now;
    let sent = run(&mut a, &mut b, &mut now, t0 + Duration::from_secs(3), true);
    assert_eq!((a.state(), b.state()), (State::Up, State::Up));
    // Before Up: 1 s desired TX; after: 100 ms, announced with Poll and answered with Final.
    assert_eq!(sent[0].1.desired_min_tx, Duration::from_secs(1));
    let up = sent.iter().position(|(_, c)| c.state == State::Up).unwrap();
    assert!(sent[up].1.poll && sent[up].1.desired_min_tx == Duration::from_millis(100));
    let last = sent.last().unwrap().1;
    assert!(!last.poll, "the Poll sequence ended with the peer's Final");
    assert_eq!(last.your_discr, 22);
    // Once Up, gaps between periodic packets are 75-100 % of 100 ms.
    let tail: Vec<Duration> = sent
        .windows(2)
        .skip(up + 2)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    assert!(tail.len() > 10, "{tail:?}");
    for gap in tail {
        assert!(
            gap >= Duration::from_millis(75) && gap <= Duration::from_millis(100),
            "{gap:?}"
        );
    }
    assert_eq!(a.detection_time(), Duration::from_millis(300));
}

#[test]
fn rfc5880_6_8_4_silence_for_a_detection_time_brings_it_down() {
    let mut now = Instant::now();
    let mut a = BfdSession::new(cfg(11), now);
    let mut b = BfdSession::new(cfg(22), now);
    let t0 = now;
    run(&mut a, &mut b, &mut now, t0 + Duration::from_secs(3), true);
    drain(&mut b);
    let silent = now;
    // a stops reaching b: b goes down one detection time (3 x 100 ms) after a's last packet.
    let mut went_down = None;
    for _ in 0..100 {
        let t = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        now = t;
        a.handle_timeout(now);
        b.handle_timeout(now);
        drain(&mut a);
        let (_, st) = drain(&mut b);
        if st.contains(&(State::Up, State::Down, diag::DETECTION_TIME_EXPIRED)) {
            went_down = Some(now - silent);
            break;
        }
    }
    let after = went_down.expect("b noticed");
    assert!(after <= Duration::from_millis(300), "{after:?}");
    assert_eq!(b.state(), State::Down);
}

#[test]
fn rfc5880_6_8_16_admin_down_takes_the_peer_down_with_diag_3() {
    let mut now = Instant::now();
    let mut a = BfdSession::new(cfg(11), now);
    let mut b = BfdSession::new(cfg(22), now);
    let t0 = now;
    run(&mut a, &mut b, &mut now, t0 + Duration::from_secs(3), true);
    a.admin_down(now);
    let (p, st) = drain(&mut a);
    assert_eq!(st, [(State::Up, State::AdminDown, diag::ADMIN_DOWN)]);
    b.handle_input(&p[0], now).unwrap();
    let (_, st) = drain(&mut b);
    assert_eq!(st, [(State::Up, State::Down, diag::NEIGHBOR_DOWN)]);
}

#[test]
fn packets_for_another_discriminator_are_refused() {
    let now = Instant::now();
    let mut a = BfdSession::new(cfg(11), now);
    let mut p = Control::parse(&{
        let mut b = BfdSession::new(cfg(22), now);
        b.handle_timeout(now);
        drain(&mut b).0[0]
    })
    .unwrap();
    p.your_discr = 99;
    p.state = State::Init;
    assert!(a.handle_input(&p.emit(), now).is_err());
    assert_eq!(a.state(), State::Down);
}

#[test]
fn bird_packets_drive_the_handshake() {
    // BIRD 2.0.12's first packet (Down, 1 s TX while not Up, 100 ms RX) and its Init with
    // Poll once it heard us, read off a socket.
    let down = include_bytes!("../../../fuzz/corpus/bfd_packet/bird-down");
    let init = include_bytes!("../../../fuzz/corpus/bfd_packet/bird-init");
    let c = Control::parse(down).unwrap();
    assert_eq!((c.state, c.detect_mult, c.your_discr), (State::Down, 3, 0));
    assert_eq!(c.desired_min_tx, Duration::from_secs(1));
    assert_eq!(c.required_min_rx, Duration::from_millis(100));
    let now = Instant::now();
    let mut s = BfdSession::new(cfg(7), now);
    s.handle_input(down, now).unwrap();
    assert_eq!(s.state(), State::Init);
    let (_, _) = drain(&mut s);
    s.handle_input(init, now).unwrap();
    assert_eq!(s.state(), State::Up);
    let (sent, _) = drain(&mut s);
    let fin = Control::parse(&sent[0]).unwrap();
    assert!(
        fin.final_ && !fin.poll,
        "BIRD's Poll is answered with Final"
    );
    assert_eq!(fin.your_discr, c.my_discr);
}
