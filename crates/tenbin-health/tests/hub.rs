//! The published view: drain vs down, agent replies, passive ejection with growing time, the
//! ejection cap and panic mode. Time is injected (`Instant` arguments) or tokio's paused clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenbin_core::ServerState::{self, *};
use tenbin_health::agent::AgentReply;
use tenbin_health::hub::TargetOptions;
use tenbin_health::outcome::{CheckResult, ProbeError};
use tenbin_health::{HealthHub, OutlierSpec, PassiveSignal, TargetKey};

fn key(s: &str) -> TargetKey {
    TargetKey::new("app", s)
}

fn hub_with(
    servers: &[&str],
    opts: TargetOptions,
    outlier: Option<OutlierSpec>,
    t0: Instant,
) -> Arc<HealthHub> {
    let hub = HealthHub::new();
    hub.add_pool("app", outlier, t0);
    for s in servers {
        hub.add_target(&key(s), opts, t0);
    }
    hub
}

fn state(hub: &HealthHub, s: &str) -> ServerState {
    hub.snapshot().state(&key(s)).unwrap()
}

fn fail(e: ProbeError) -> CheckResult {
    CheckResult::from_error(&e).unwrap()
}

fn outlier() -> OutlierSpec {
    OutlierSpec {
        consecutive_errors: 2,
        base_ejection: Duration::from_secs(10),
        max_ejection: Duration::from_secs(25),
        max_ejected_percent: 50,
        panic_threshold_percent: 50,
    }
}

#[test]
fn new_servers_are_unchecked_until_first_pass_and_unchecked_ones_start_active() {
    let t0 = Instant::now();
    let hub = hub_with(&["a"], TargetOptions::default(), None, t0);
    let plain = TargetOptions {
        checked: false,
        ..TargetOptions::default()
    };
    hub.add_target(&key("nocheck"), plain, t0);
    assert_eq!(state(&hub, "a"), Unchecked);
    assert_eq!(state(&hub, "nocheck"), Active);
    hub.report_check(&key("a"), CheckResult::pass("HTTP 200"), t0);
    assert_eq!(state(&hub, "a"), Active);
    assert_eq!(hub.snapshot().target(&key("a")).unwrap().reason, "HTTP 200");
}

#[test]
fn timeouts_drain_and_refusals_take_down_after_fall() {
    let t0 = Instant::now();
    let opts = TargetOptions {
        rise: 2,
        fall: 2,
        ..TargetOptions::default()
    };
    let hub = hub_with(&["slow", "dead"], opts, None, t0);
    for s in ["slow", "dead"] {
        hub.report_check(&key(s), CheckResult::pass("ok"), t0);
    }
    let slow = || fail(ProbeError::ResponseTimeout(Duration::from_secs(1)));
    hub.report_check(&key("slow"), slow(), t0);
    hub.report_check(&key("dead"), fail(ProbeError::Refused), t0);
    assert_eq!(
        (state(&hub, "slow"), state(&hub, "dead")),
        (Active, Active),
        "fall is 2"
    );
    let t1 = t0 + Duration::from_secs(2);
    hub.report_check(&key("slow"), slow(), t1);
    hub.report_check(&key("dead"), fail(ProbeError::Refused), t1);
    assert_eq!(state(&hub, "slow"), Draining);
    assert_eq!(state(&hub, "dead"), Down);
    let snap = hub.snapshot();
    let slow_t = snap.target(&key("slow")).unwrap();
    assert!(slow_t.state.accepts_persisted() && !slow_t.state.accepts_new());
    assert_eq!(slow_t.since, t1);
    assert!(slow_t.reason.contains("no response"), "{}", slow_t.reason);
    // a content mismatch is down too, and rise brings it back
    hub.report_check(
        &key("slow"),
        fail(ProbeError::BodyMismatch("OK".into())),
        t1,
    );
    assert_eq!(state(&hub, "slow"), Down);
    hub.report_check(&key("slow"), CheckResult::pass("ok"), t1);
    assert_eq!(state(&hub, "slow"), Down, "rise is 2");
    hub.report_check(&key("slow"), CheckResult::pass("ok"), t1);
    assert_eq!(state(&hub, "slow"), Active);
}

#[test]
fn agent_replies_set_load_and_state() {
    let t0 = Instant::now();
    let hub = hub_with(&["a"], TargetOptions::default(), None, t0);
    hub.report_check(&key("a"), CheckResult::pass("ok"), t0);
    let agent =
        |line: &str| hub.report_agent(&key("a"), &AgentReply::parse(line.as_bytes()).unwrap(), t0);
    agent("35% maxconn:9\n");
    let t = hub.snapshot().target(&key("a")).unwrap().clone();
    assert_eq!((t.state, t.load_percent, t.maxconn), (Active, 35, Some(9)));
    agent("drain\n");
    assert_eq!(state(&hub, "a"), Draining);
    agent("80%\n");
    assert_eq!(state(&hub, "a"), Draining, "admin state stays until ready");
    assert_eq!(hub.snapshot().target(&key("a")).unwrap().load_percent, 80);
    agent("maint #upgrading\n");
    assert_eq!(state(&hub, "a"), Maintenance);
    assert!(hub
        .snapshot()
        .target(&key("a"))
        .unwrap()
        .reason
        .contains("upgrading"));
    agent("ready\n");
    assert_eq!(state(&hub, "a"), Active);
    for line in ["down #disk full\n", "fail\n", "stopped\n"] {
        agent(line);
        assert_eq!(state(&hub, "a"), Down, "{line}");
        agent("up\n");
        assert_eq!(state(&hub, "a"), Active, "{line}");
    }
}

#[test]
fn agent_up_does_not_override_a_failing_check() {
    let t0 = Instant::now();
    let opts = TargetOptions {
        fall: 1,
        ..TargetOptions::default()
    };
    let hub = hub_with(&["a"], opts, None, t0);
    hub.report_agent(&key("a"), &AgentReply::parse(b"up 100%").unwrap(), t0);
    assert_eq!(state(&hub, "a"), Unchecked);
    hub.report_check(&key("a"), fail(ProbeError::Refused), t0);
    assert_eq!(state(&hub, "a"), Down);
}

#[test]
fn config_maintenance_and_draining_hold_regardless_of_checks() {
    let t0 = Instant::now();
    let hub = HealthHub::new();
    for (s, admin) in [("m", Maintenance), ("d", Draining)] {
        let opts = TargetOptions {
            admin,
            ..TargetOptions::default()
        };
        hub.add_target(&key(s), opts, t0);
        hub.report_check(&key(s), CheckResult::pass("ok"), t0);
    }
    assert_eq!(
        (state(&hub, "m"), state(&hub, "d")),
        (Maintenance, Draining)
    );
}

#[test]
fn passive_errors_eject_for_growing_time_then_return() {
    let t0 = Instant::now();
    let hub = hub_with(
        &["a", "b", "c", "d"],
        TargetOptions::default(),
        Some(outlier()),
        t0,
    );
    for s in ["a", "b", "c", "d"] {
        hub.report_check(&key(s), CheckResult::pass("ok"), t0);
    }
    hub.passive(&key("a"), PassiveSignal::ConnectFailed, t0);
    assert_eq!(state(&hub, "a"), Active, "one error is not enough");
    hub.passive(&key("a"), PassiveSignal::Status5xx, t0);
    let t = hub.snapshot().target(&key("a")).unwrap().clone();
    assert!(t.ejected && t.state == Down && t.checked == Active, "{t:?}");
    assert_eq!(hub.poll_timeout(t0), Some(t0 + Duration::from_secs(10)));

    let t1 = t0 + Duration::from_secs(10);
    hub.handle_timeout(t1);
    assert_eq!(state(&hub, "a"), Active, "first ejection lasts base");
    hub.passive(&key("a"), PassiveSignal::Timeout, t1);
    hub.passive(&key("a"), PassiveSignal::Timeout, t1);
    assert_eq!(
        hub.poll_timeout(t1),
        Some(t1 + Duration::from_secs(20)),
        "second lasts 2*base"
    );
    let t2 = t1 + Duration::from_secs(20);
    hub.handle_timeout(t2);
    hub.passive(&key("a"), PassiveSignal::ConnectFailed, t2);
    hub.passive(&key("a"), PassiveSignal::ConnectFailed, t2);
    assert_eq!(
        hub.poll_timeout(t2),
        Some(t2 + Duration::from_secs(25)),
        "capped at max"
    );
}

#[test]
fn successes_in_between_prevent_ejection() {
    let t0 = Instant::now();
    let hub = hub_with(&["a", "b"], TargetOptions::default(), Some(outlier()), t0);
    hub.report_check(&key("a"), CheckResult::pass("ok"), t0);
    for _ in 0..10 {
        hub.passive(&key("a"), PassiveSignal::Status5xx, t0);
        hub.passive(&key("a"), PassiveSignal::Success, t0);
    }
    assert!(!hub.snapshot().target(&key("a")).unwrap().ejected);
}

#[test]
fn no_more_than_the_capped_share_is_ejected() {
    let t0 = Instant::now();
    let servers = ["a", "b", "c", "d"];
    let hub = hub_with(&servers, TargetOptions::default(), Some(outlier()), t0);
    for s in servers {
        hub.report_check(&key(s), CheckResult::pass("ok"), t0);
        hub.passive(&key(s), PassiveSignal::ConnectFailed, t0);
        hub.passive(&key(s), PassiveSignal::ConnectFailed, t0);
    }
    let snap = hub.snapshot();
    let ejected: Vec<_> = servers
        .iter()
        .filter(|s| snap.target(&key(s)).unwrap().ejected)
        .collect();
    assert_eq!(ejected, vec![&"a", &"b"], "50% of 4");
    assert!(
        !snap.pool("app").unwrap().panic,
        "2 of 4 usable is not below 50%"
    );
}

#[test]
fn panic_mode_offers_every_checked_server_again() {
    let t0 = Instant::now();
    let opts = TargetOptions {
        fall: 1,
        ..TargetOptions::default()
    };
    let hub = hub_with(&["a", "b", "c", "m"], opts, Some(outlier()), t0);
    hub.add_target(
        &key("m"),
        TargetOptions {
            admin: Maintenance,
            ..opts
        },
        t0,
    );
    for s in ["a", "b", "c"] {
        hub.report_check(&key(s), CheckResult::pass("ok"), t0);
    }
    hub.report_check(&key("a"), fail(ProbeError::Refused), t0);
    assert_eq!(state(&hub, "a"), Down, "1 of 3 down: no panic yet");
    hub.report_check(
        &key("b"),
        fail(ProbeError::ResponseTimeout(Duration::from_secs(1))),
        t0,
    );
    let snap = hub.snapshot();
    let pool = snap.pool("app").unwrap();
    assert!(
        pool.panic && pool.usable == 1 && pool.eligible == 3,
        "{pool:?}"
    );
    for s in ["a", "b", "c"] {
        assert_eq!(state(&hub, s), Active, "{s} offered in panic mode");
    }
    assert_eq!(
        snap.target(&key("a")).unwrap().checked,
        Down,
        "the truth is kept"
    );
    assert!(snap.target(&key("a")).unwrap().reason.contains("panic"));
    assert_eq!(state(&hub, "m"), Maintenance, "admin intent survives panic");
    hub.report_check(&key("a"), CheckResult::pass("ok"), t0);
    hub.report_check(&key("a"), CheckResult::pass("ok"), t0);
    let snap = hub.snapshot();
    assert!(!snap.pool("app").unwrap().panic);
    assert_eq!(
        state(&hub, "b"),
        Draining,
        "out of panic, the real state again"
    );
}

#[tokio::test(start_paused = true)]
async fn ejections_end_by_themselves_on_the_tokio_clock() {
    let now = || tokio::time::Instant::now().into_std();
    let hub = hub_with(
        &["a", "b", "c"],
        TargetOptions::default(),
        Some(outlier()),
        now(),
    );
    for s in ["a", "b", "c"] {
        hub.report_check(&key(s), CheckResult::pass("ok"), now());
    }
    let timers = tokio::spawn(hub.clone().run_timers());
    let mut rx = hub.subscribe();
    let passive = hub.passive_handle();
    passive.report(&key("a"), PassiveSignal::ConnectFailed);
    passive.report_names("app", "a", PassiveSignal::ConnectFailed);
    assert!(rx.borrow_and_update().target(&key("a")).unwrap().ejected);
    let start = tokio::time::Instant::now();
    rx.changed().await.unwrap();
    assert!(!rx.borrow_and_update().target(&key("a")).unwrap().ejected);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "paused clock: exactly base"
    );
    timers.abort();
}

#[test]
fn snapshots_are_published_only_on_change() {
    let t0 = Instant::now();
    let hub = hub_with(&["a"], TargetOptions::default(), None, t0);
    let v0 = hub.snapshot().version;
    hub.report_check(&key("a"), CheckResult::pass("ok"), t0);
    let v1 = hub.snapshot().version;
    hub.report_check(&key("a"), CheckResult::pass("ok"), t0);
    assert_eq!(hub.snapshot().version, v1);
    assert!(v1 > v0);
    // dns or the mux read the same view with their own keys
    hub.add_target(
        &TargetKey::new("dc:tokyo", "192.0.2.1"),
        TargetOptions::default(),
        t0,
    );
    assert_eq!(hub.snapshot().pool_targets("dc:tokyo").count(), 1);
}

#[test]
fn redeclaring_after_a_reload_keeps_health_and_ejections() {
    let t0 = Instant::now();
    let hub = hub_with(
        &["a", "b", "c"],
        TargetOptions::default(),
        Some(outlier()),
        t0,
    );
    for s in ["a", "b", "c"] {
        hub.report_check(&key(s), CheckResult::pass("ok"), t0);
    }
    hub.passive(&key("b"), PassiveSignal::ConnectFailed, t0);
    hub.passive(&key("b"), PassiveSignal::ConnectFailed, t0);
    // the same config again
    hub.add_pool("app", Some(outlier()), t0);
    for s in ["a", "b", "c"] {
        hub.add_target(&key(s), TargetOptions::default(), t0);
    }
    assert_eq!(state(&hub, "a"), Active);
    assert!(hub.snapshot().target(&key("b")).unwrap().ejected);
    // an admin change applies without losing health; a new fall restarts the history
    let drain = TargetOptions {
        admin: Draining,
        ..TargetOptions::default()
    };
    hub.add_target(&key("a"), drain, t0);
    assert_eq!(state(&hub, "a"), Draining);
    let refall = TargetOptions {
        fall: 9,
        ..TargetOptions::default()
    };
    hub.add_target(&key("c"), refall, t0);
    assert_eq!(state(&hub, "c"), Unchecked);
    hub.remove_pool("app", t0);
    assert!(hub.snapshot().targets.is_empty());
}

#[test]
fn panic_mode_does_not_undo_an_operator_or_agent_drain() {
    let t0 = Instant::now();
    let opts = TargetOptions {
        fall: 1,
        ..TargetOptions::default()
    };
    let hub = hub_with(&["a", "b", "c"], opts, Some(outlier()), t0);
    for s in ["a", "b", "c"] {
        hub.report_check(&key(s), CheckResult::pass("ok"), t0);
    }
    hub.report_agent(&key("a"), &AgentReply::parse(b"drain").unwrap(), t0);
    hub.report_check(&key("b"), fail(ProbeError::Refused), t0);
    hub.report_check(&key("c"), fail(ProbeError::Refused), t0);
    let snap = hub.snapshot();
    let pool = snap.pool("app").unwrap();
    assert!(
        pool.panic && pool.eligible == 2 && pool.usable == 0,
        "{pool:?}"
    );
    assert_eq!(state(&hub, "a"), Draining);
    assert_eq!((state(&hub, "b"), state(&hub, "c")), (Active, Active));
}
