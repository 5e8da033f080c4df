//! RFC 5798 conformance of the VRRP state machine, by section, with a manual clock: time is
//! an `Instant` the test moves, nothing sleeps.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tenbin_ha::vrrp::packet::{Repr, GROUP_V4, GROUP_V6};
use tenbin_ha::vrrp::{ChecksumMode, Machine, Output, Probe, Received, Settings, State};

const ME: &str = "10.77.0.2";
const PEER: &str = "10.77.0.1";
const VIP: &str = "10.77.0.100";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn settings(priority: u8, interval: u16) -> Settings {
    Settings {
        vrid: 51,
        priority,
        interval,
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary: ip(ME),
        vips: vec![ip(VIP)],
        checksum: ChecksumMode::PseudoHeader,
        probe: false,
    }
}

/// A machine that has started; its startup outputs are drained.
fn started(s: Settings, t0: Instant) -> Machine {
    let mut m = Machine::new(s, t0);
    m.startup(t0);
    drain(&mut m);
    m
}

fn drain(m: &mut Machine) -> Vec<Output> {
    std::iter::from_fn(|| m.poll_output()).collect()
}

fn bytes(priority: u8, interval: u16, src: &str, mode: ChecksumMode) -> Vec<u8> {
    let src = ip(src);
    let dst = if src.is_ipv4() {
        IpAddr::V4(GROUP_V4)
    } else {
        IpAddr::V6(GROUP_V6)
    };
    let addr = if src.is_ipv4() {
        ip(VIP)
    } else {
        ip("2001:db8::100")
    };
    Repr {
        vrid: 51,
        priority,
        max_adver_int: interval,
        addrs: vec![addr],
    }
    .emit(src, dst, mode)
}

/// Feeds an advertisement from `src` (TTL 255, to the group).
fn feed(m: &mut Machine, priority: u8, interval: u16, src: &str, now: Instant) {
    let b = bytes(priority, interval, src, ChecksumMode::PseudoHeader);
    feed_raw(m, &b, src, 255, now);
}

fn feed_raw(m: &mut Machine, payload: &[u8], src: &str, ttl: u8, now: Instant) {
    let src = ip(src);
    let dst = if src.is_ipv4() {
        IpAddr::V4(GROUP_V4)
    } else {
        IpAddr::V6(GROUP_V6)
    };
    m.handle_input(
        &Received {
            src,
            dst,
            ttl,
            payload,
        },
        now,
    );
}

fn sent_priorities(out: &[Output]) -> Vec<u8> {
    out.iter()
        .filter_map(|o| match o {
            Output::Advertise(r) => Some(r.priority),
            _ => None,
        })
        .collect()
}

fn states(out: &[Output]) -> Vec<State> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transition { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

/// Runs the machine's timers until `until`, returning everything it output.
fn run_until(m: &mut Machine, until: Instant) -> Vec<Output> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match m.poll_timeout() {
            Some(t) if t <= until => {
                m.handle_timeout(t);
                out.extend(drain(m));
            }
            _ => break,
        }
    }
    out
}

#[test]
fn rfc5798_6_1_skew_time_and_master_down_interval() {
    let m = Machine::new(settings(100, 100), Instant::now());
    // (256 - 100) * 100 cs / 256 = 60.9375 cs; 3 * 1 s + that = 3.609375 s.
    assert_eq!(m.skew_time(), Duration::from_micros(609_375));
    assert_eq!(m.master_down_interval(), Duration::from_micros(3_609_375));
    let fast = Machine::new(settings(254, 10), Instant::now());
    assert_eq!(
        fast.master_down_interval(),
        Duration::from_micros(300_000 + 781)
    );
}

#[test]
fn rfc5798_6_4_1_owner_starts_as_master_and_advertises() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(255, 100), t0);
    m.startup(t0);
    let out = drain(&mut m);
    assert_eq!(sent_priorities(&out), vec![255]);
    assert!(out.contains(&Output::TakeOver));
    assert_eq!(states(&out), vec![State::Master]);
    assert_eq!(m.poll_timeout(), Some(t0 + ms(1000)));
}

#[test]
fn rfc5798_6_4_1_non_owner_starts_as_backup_with_master_down_timer() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(100, 100), t0);
    m.startup(t0);
    assert_eq!(states(&drain(&mut m)), vec![State::Backup]);
    assert_eq!(m.poll_timeout(), Some(t0 + m.master_down_interval()));
}

#[test]
fn rfc5798_6_4_2_backup_takes_over_when_master_down_timer_fires() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    let out = run_until(&mut m, t0 + ms(3609));
    assert!(
        out.is_empty(),
        "nothing before Master_Down_Interval: {out:?}"
    );
    let out = run_until(&mut m, t0 + ms(3610));
    assert_eq!(states(&out), vec![State::Master]);
    assert_eq!(sent_priorities(&out), vec![100]);
    assert!(out.contains(&Output::TakeOver));
}

#[test]
fn rfc5798_6_4_2_advertisements_keep_a_backup_backup() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    for i in 1..=20 {
        let now = t0 + ms(1000 * i);
        assert!(run_until(&mut m, now).is_empty());
        feed(&mut m, 200, 100, PEER, now);
    }
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.counters().received, 20);
}

#[test]
fn rfc5798_6_4_2_backup_learns_master_adver_interval() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    // The master advertises every 20 cs although we are configured for 100 cs.
    feed(&mut m, 200, 20, PEER, t0);
    assert_eq!(m.master_adver_interval(), 20);
    // 3 * 200 ms + (156 * 20 cs / 256) = 600 + 121.875 ms.
    assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_micros(721_875)));
    let out = run_until(&mut m, t0 + ms(722));
    assert_eq!(states(&out), vec![State::Master]);
    // As master it advertises its own interval again.
    let adv = out.iter().find_map(|o| match o {
        Output::Advertise(r) => Some(r.max_adver_int),
        _ => None,
    });
    assert_eq!(adv, Some(100));
}

#[test]
fn rfc5798_6_4_2_priority_zero_makes_backup_take_over_after_skew_time() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    feed(&mut m, 200, 100, PEER, t0);
    let t1 = t0 + ms(500);
    feed(&mut m, 0, 100, PEER, t1);
    assert_eq!(m.counters().priority_zero_received, 1);
    assert_eq!(m.poll_timeout(), Some(t1 + m.skew_time()));
    let at = t1 + m.skew_time();
    let out = run_until(&mut m, at);
    assert_eq!(states(&out), vec![State::Master]);
}

#[test]
fn rfc5798_6_4_2_nopreempt_backup_accepts_a_lower_priority_master() {
    let t0 = Instant::now();
    let mut s = settings(200, 100);
    s.preempt = false;
    let mut m = started(s, t0);
    for i in 1..=10 {
        let now = t0 + ms(1000 * i);
        assert!(run_until(&mut m, now).is_empty());
        feed(&mut m, 100, 100, PEER, now);
    }
    assert_eq!(m.state(), State::Backup);
}

#[test]
fn rfc5798_6_4_2_preempt_backup_discards_a_lower_priority_master_and_takes_over() {
    let t0 = Instant::now();
    let mut m = started(settings(200, 100), t0);
    let mut now = t0;
    while m.state() == State::Backup && now < t0 + ms(10_000) {
        now += ms(1000);
        run_until(&mut m, now);
        feed(&mut m, 100, 100, PEER, now);
    }
    assert_eq!(m.state(), State::Master);
    assert!(now <= t0 + ms(4000), "took over at {:?}", now - t0);
}

#[test]
fn preempt_delay_holds_preemption_until_it_has_passed() {
    let t0 = Instant::now();
    let mut s = settings(200, 100);
    s.preempt_delay = ms(10_000);
    let mut m = started(s, t0);
    let mut now = t0;
    while m.state() == State::Backup && now < t0 + ms(30_000) {
        now += ms(1000);
        run_until(&mut m, now);
        feed(&mut m, 100, 100, PEER, now);
    }
    let took = now - t0;
    assert!(
        took > ms(10_000) && took <= ms(14_000),
        "took over at {took:?}"
    );
}

#[test]
fn rfc5798_6_4_3_master_yields_to_a_higher_priority_and_releases_vips() {
    let t0 = Instant::now();
    let mut m = started(settings(255, 100), t0);
    feed(&mut m, 254, 100, PEER, t0 + ms(10));
    // The owner (255) never yields to 254.
    assert_eq!(m.state(), State::Master);
    let mut m = started(settings(100, 100), t0);
    run_until(&mut m, t0 + ms(4000));
    assert_eq!(m.state(), State::Master);
    feed(&mut m, 150, 100, PEER, t0 + ms(4100));
    let out = drain(&mut m);
    assert_eq!(states(&out), vec![State::Backup]);
    assert!(out.contains(&Output::Release));
}

#[test]
fn rfc5798_6_4_3_equal_priority_the_higher_primary_address_wins() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    run_until(&mut m, t0 + ms(4000));
    // 10.77.0.1 < 10.77.0.2 (us): discarded.
    feed(&mut m, 100, 100, PEER, t0 + ms(4100));
    assert_eq!(m.state(), State::Master);
    feed(&mut m, 100, 100, "10.77.0.3", t0 + ms(4200));
    assert_eq!(m.state(), State::Backup);
}

#[test]
fn rfc5798_6_4_3_master_advertises_every_interval_in_centiseconds() {
    let t0 = Instant::now();
    let mut m = started(settings(255, 10), t0);
    let out = run_until(&mut m, t0 + ms(1000));
    assert_eq!(sent_priorities(&out).len(), 10, "one advert per 100 ms");
}

#[test]
fn rfc5798_6_4_3_master_answers_priority_zero_with_an_advertisement() {
    let t0 = Instant::now();
    let mut m = started(settings(255, 100), t0);
    feed(&mut m, 0, 100, PEER, t0 + ms(300));
    assert_eq!(sent_priorities(&drain(&mut m)), vec![255]);
    assert_eq!(m.poll_timeout(), Some(t0 + ms(1300)));
}

#[test]
fn rfc5798_6_4_3_shutdown_sends_priority_zero_and_releases() {
    let t0 = Instant::now();
    let mut m = started(settings(255, 100), t0);
    m.shutdown(t0 + ms(10));
    let out = drain(&mut m);
    assert_eq!(sent_priorities(&out), vec![0]);
    assert!(out.contains(&Output::Release));
    assert_eq!(m.state(), State::Initialize);
    assert_eq!(m.counters().priority_zero_sent, 1);
}

#[test]
fn rfc5798_5_1_1_3_wrong_ttl_is_dropped_and_counted() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    let b = bytes(200, 100, PEER, ChecksumMode::PseudoHeader);
    feed_raw(&mut m, &b, PEER, 254, t0);
    assert_eq!(m.counters().dropped_ttl, 1);
    assert_eq!(m.counters().received, 0);
    // Dropped means ignored: the master-down timer was not restarted.
    assert_eq!(m.poll_timeout(), Some(t0 + m.master_down_interval()));
}

#[test]
fn rfc5798_7_1_malformed_packets_are_dropped_and_counted() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    let good = bytes(200, 100, PEER, ChecksumMode::PseudoHeader);
    let mut v2 = good.clone();
    v2[0] = 0x21;
    let mut zero_count = good.clone();
    zero_count[3] = 0;
    for bad in [&good[..4], &good[..11], &v2[..], &zero_count[..], &[][..]] {
        feed_raw(&mut m, bad, PEER, 255, t0);
    }
    let mut corrupt = good.clone();
    corrupt[2] = 201;
    feed_raw(&mut m, &corrupt, PEER, 255, t0);
    let c = m.counters();
    assert_eq!(
        (c.dropped_malformed, c.dropped_checksum, c.received),
        (5, 1, 0)
    );
    let mut other = good;
    other[1] = 52;
    feed_raw(&mut m, &other, PEER, 255, t0);
    assert_eq!(
        m.counters().dropped_checksum,
        2,
        "vrid is under the checksum"
    );
}

#[test]
fn rfc5798_5_2_8_checksum_modes_accept_only_their_own_sum() {
    let t0 = Instant::now();
    for (mode, other) in [
        (ChecksumMode::PseudoHeader, ChecksumMode::VrrpOnly),
        (ChecksumMode::VrrpOnly, ChecksumMode::PseudoHeader),
    ] {
        let mut s = settings(100, 100);
        s.checksum = mode;
        let mut m = started(s, t0);
        feed_raw(&mut m, &bytes(200, 100, PEER, other), PEER, 255, t0);
        feed_raw(&mut m, &bytes(200, 100, PEER, mode), PEER, 255, t0);
        assert_eq!(
            (m.counters().dropped_checksum, m.counters().received),
            (1, 1)
        );
    }
}

#[test]
fn keepalived_advertisement_bytes_hold_a_backup() {
    // Captured from Debian's keepalived 2.2.7 (vrid 51, priority 150, 1 s).
    let ka = [
        0x31, 0x33, 0x96, 0x01, 0x00, 0x64, 0x42, 0xd9, 10, 77, 0, 100,
    ];
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    feed_raw(&mut m, &ka, PEER, 255, t0 + ms(3000));
    assert_eq!(m.counters().received, 1);
    assert_eq!(
        m.poll_timeout(),
        Some(t0 + ms(3000) + m.master_down_interval())
    );
}

#[test]
fn rfc5798_ipv6_backup_follows_a_link_local_master() {
    let t0 = Instant::now();
    let mut s = settings(100, 100);
    s.primary = ip("fe80::2");
    s.vips = vec![ip("2001:db8::100")];
    let mut m = started(s, t0);
    for i in 1..=5 {
        let now = t0 + ms(1000 * i);
        assert!(run_until(&mut m, now).is_empty());
        feed(&mut m, 200, 100, "fe80::1", now);
    }
    assert_eq!(m.counters().received, 5);
    let out = run_until(&mut m, t0 + ms(10_000));
    assert_eq!(states(&out), vec![State::Master]);
}

#[test]
fn fault_from_a_tracked_object_releases_with_priority_zero_and_recovers_to_backup() {
    let t0 = Instant::now();
    let mut m = started(settings(255, 100), t0);
    m.set_fault(true, t0 + ms(10));
    let out = drain(&mut m);
    assert_eq!(sent_priorities(&out), vec![0]);
    assert!(out.contains(&Output::Release));
    assert_eq!(m.state(), State::Fault);
    assert!(
        run_until(&mut m, t0 + ms(60_000)).is_empty(),
        "silent in Fault"
    );
    let mut b = started(settings(100, 100), t0);
    b.set_fault(true, t0);
    b.set_fault(false, t0 + ms(100));
    assert_eq!(states(&drain(&mut b)), vec![State::Fault, State::Backup]);
}

#[test]
fn priority_delta_lowers_the_advertised_priority_but_never_the_owner() {
    let t0 = Instant::now();
    let mut m = started(settings(150, 100), t0);
    m.set_priority_delta(60);
    let out = run_until(&mut m, t0 + ms(5000));
    assert_eq!(sent_priorities(&out)[0], 90);
    let mut o = started(settings(255, 100), t0);
    o.set_priority_delta(60);
    assert_eq!(o.priority(), 255);
}

fn probing(interval: u16, t0: Instant) -> Machine {
    let mut s = settings(100, interval);
    s.probe = true;
    let mut m = started(s, t0);
    feed(&mut m, 200, interval, PEER, t0);
    m
}

#[test]
fn cable_safe_promotion_probes_one_interval_before_master_down_and_takes_over_when_clear() {
    let t0 = Instant::now();
    let mut m = probing(10, t0);
    let down = t0 + m.master_down_interval();
    let out = run_until(&mut m, down - ms(100));
    assert_eq!(out, vec![Output::Probe]);
    m.handle_probe(Probe::Clear, down - ms(99));
    assert!(drain(&mut m).is_empty(), "waits for the timer");
    let out = run_until(&mut m, down);
    assert_eq!(states(&out), vec![State::Master]);
}

#[test]
fn cable_safe_promotion_isolated_node_goes_fault_and_never_takes_over() {
    let t0 = Instant::now();
    for answer in [Some(Probe::Isolated), None] {
        let mut m = probing(10, t0);
        let down = t0 + m.master_down_interval();
        run_until(&mut m, down - ms(100));
        if let Some(a) = answer {
            m.handle_probe(a, down - ms(90));
        }
        let out = run_until(&mut m, down + ms(150));
        assert_eq!(states(&out), vec![State::Fault], "answer {answer:?}");
        assert!(!out.contains(&Output::TakeOver));
        // Isolated: it keeps probing, and stays out while nothing answers.
        let mut out = Vec::new();
        for _ in 0..20 {
            let Some(t) = m.poll_timeout() else { break };
            m.handle_timeout(t);
            let step = drain(&mut m);
            if step.contains(&Output::Probe) {
                m.handle_probe(Probe::Isolated, t);
            }
            out.extend(step);
        }
        assert!(!out.contains(&Output::TakeOver) && m.state() == State::Fault);
        assert_eq!(m.counters().isolated, 1);
        // The network comes back: Backup, then master after a full Master_Down_Interval.
        let t = m.poll_timeout().unwrap();
        m.handle_timeout(t);
        drain(&mut m);
        m.handle_probe(Probe::Clear, t);
        assert_eq!(states(&drain(&mut m)), vec![State::Backup]);
    }
}

#[test]
fn cable_safe_promotion_stays_backup_while_another_host_answers_for_the_vip() {
    let t0 = Instant::now();
    let mut m = probing(10, t0);
    let mut now = t0;
    for _ in 0..50 {
        let Some(t) = m.poll_timeout() else { break };
        now = t;
        m.handle_timeout(t);
        if drain(&mut m).contains(&Output::Probe) {
            m.handle_probe(Probe::VipInUse, t);
        }
        assert_eq!(m.state(), State::Backup);
    }
    assert!(now > t0 + ms(1000));
    assert!(m.counters().promotions_refused >= 2);
}

#[test]
fn cable_safe_promotion_does_not_block_preemption_of_a_master_we_hear() {
    let t0 = Instant::now();
    let mut s = settings(200, 10);
    s.probe = true;
    let mut m = started(s, t0);
    let mut now = t0;
    while m.state() == State::Backup && now < t0 + ms(2000) {
        now += ms(100);
        if run_until(&mut m, now).contains(&Output::Probe) {
            m.handle_probe(Probe::VipInUse, now);
            run_until(&mut m, now);
        }
        feed(&mut m, 100, 10, PEER, now);
    }
    assert_eq!(m.state(), State::Master);
}

#[test]
fn the_master_address_is_the_advertisers_in_backup_and_ours_in_master() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    assert_eq!(m.master(), None, "no advert heard yet");
    feed(&mut m, 200, 100, "10.77.0.9", t0 + ms(10));
    assert_eq!(m.master(), Some(ip("10.77.0.9")));
    // The master resigns (priority 0): nobody is master until we take over.
    feed(&mut m, 0, 100, "10.77.0.9", t0 + ms(20));
    assert_eq!(m.master(), None);
    run_until(&mut m, t0 + ms(2_000));
    assert_eq!(m.state(), State::Master);
    assert_eq!(m.master(), Some(ip(ME)));
}

#[test]
fn a_live_priority_change_lets_a_backup_preempt_at_the_next_advert() {
    let t0 = Instant::now();
    let mut m = started(settings(100, 100), t0);
    feed(&mut m, 150, 100, "10.77.0.9", t0 + ms(10));
    assert_eq!(m.state(), State::Backup);
    m.reconfigure(200, true, Duration::ZERO);
    assert_eq!(m.priority(), 200);
    // A lower priority master's advert is no longer learned: Master_Down_Timer runs out.
    feed(&mut m, 150, 100, "10.77.0.9", t0 + ms(1_000));
    let out = run_until(&mut m, t0 + ms(5_000));
    assert_eq!(states(&out), vec![State::Master]);
    assert_eq!(sent_priorities(&out)[0], 200);
}
