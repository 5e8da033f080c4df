//! The scheduler under tokio's paused clock, with scripted probers and seeded jitter; and one
//! end-to-end run against a real loopback server.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tenbin_core::ServerState::{self, *};
use tenbin_health::hub::TargetOptions;
use tenbin_health::scheduler::{self, SharedRng};
use tenbin_health::{CheckKind, CheckSpec, HealthHub, HealthSnapshot, ProbeError, TargetKey};
use tokio::sync::watch;
use tokio::time::Instant;

fn rng(seed: u64) -> SharedRng {
    Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed)))
}

fn spec(jitter: f64) -> CheckSpec {
    CheckSpec {
        interval: Duration::from_secs(2),
        jitter,
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 3,
        ..CheckSpec::new(CheckKind::Tcp)
    }
}

#[tokio::test(start_paused = true)]
async fn scripted_checks_walk_through_rise_and_fall_at_the_interval() {
    let key = TargetKey::new("app", "a");
    let hub = HealthHub::new();
    let opts = TargetOptions {
        rise: 2,
        fall: 3,
        ..TargetOptions::default()
    };
    hub.add_target(&key, opts, Instant::now().into_std());
    // pass, then 3 refusals, then 2 passes
    let script: VecDeque<bool> = [true, false, false, false, true, true].into();
    let script = Arc::new(Mutex::new(script));
    let times = Arc::new(Mutex::new(Vec::new()));
    let (s, t) = (script.clone(), times.clone());
    let task =
        scheduler::spawn_check_with(hub.clone(), key.clone(), spec(0.0), rng(1), move || {
            let next = s.lock().unwrap().pop_front().unwrap_or(true);
            t.lock().unwrap().push(Instant::now());
            async move {
                if next {
                    Ok("ok".to_string())
                } else {
                    Err(ProbeError::Refused)
                }
            }
        });
    let mut rx = hub.subscribe();
    let start = Instant::now();
    let mut seen: Vec<(ServerState, Duration)> = Vec::new();
    // publications also carry reason changes: keep the state transitions (bounded)
    for _ in 0..20 {
        rx.changed().await.unwrap();
        let st = rx.borrow_and_update().state(&key).unwrap();
        if seen.last().map(|s| s.0) != Some(st) {
            seen.push((st, start.elapsed()));
        }
        if seen.len() == 3 {
            break;
        }
    }
    task.abort();
    // with zero jitter: checks at 0, 2, 4, 6, 8, 10 s
    assert_eq!(
        seen,
        vec![
            (Active, Duration::ZERO),
            (Down, Duration::from_secs(6)),
            (Active, Duration::from_secs(10)),
        ]
    );
    let gaps: Vec<Duration> = times
        .lock()
        .unwrap()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(
        gaps.iter().all(|g| *g == Duration::from_secs(2)),
        "{gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_checks_within_bounds() {
    let hub = HealthHub::new();
    let key = TargetKey::new("app", "a");
    hub.add_target(&key, TargetOptions::default(), Instant::now().into_std());
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let task = scheduler::spawn_check_with(hub.clone(), key, spec(0.25), rng(9), move || {
        t.lock().unwrap().push(Instant::now());
        async { Ok("ok".to_string()) }
    });
    // bounded: 40 checks of at most 2.5 s each
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    task.abort();
    let times = times.lock().unwrap();
    assert!(times.len() >= 40, "{}", times.len());
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let (lo, hi) = (Duration::from_millis(1500), Duration::from_millis(2500));
    assert!(gaps.iter().all(|g| *g >= lo && *g <= hi), "{gaps:?}");
    let distinct: std::collections::BTreeSet<_> = gaps.iter().collect();
    assert!(distinct.len() > gaps.len() / 2, "gaps vary: {gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_prober_that_hangs_counts_as_a_timeout_and_drains() {
    let hub = HealthHub::new();
    let key = TargetKey::new("app", "stuck");
    let opts = TargetOptions {
        fall: 2,
        ..TargetOptions::default()
    };
    hub.add_target(&key, opts, Instant::now().into_std());
    let first = Arc::new(Mutex::new(true));
    let task =
        scheduler::spawn_check_with(hub.clone(), key.clone(), spec(0.0), rng(2), move || {
            let pass = std::mem::replace(&mut *first.lock().unwrap(), false);
            async move {
                if !pass {
                    std::future::pending::<()>().await;
                }
                Ok("ok".to_string())
            }
        });
    let mut rx = hub.subscribe();
    let mut states = Vec::new();
    for _ in 0..20 {
        rx.changed().await.unwrap();
        let st = rx.borrow_and_update().state(&key).unwrap();
        if states.last() != Some(&st) {
            states.push(st);
        }
        if states.len() == 2 {
            break;
        }
    }
    task.abort();
    assert_eq!(states, vec![Active, Draining]);
}

#[tokio::test]
async fn end_to_end_http_checks_follow_a_real_server() {
    // Real time (real sockets): intervals are short and the whole test is bounded by a guard,
    // which is a budget, not an asserted duration.
    let peer = support::http(&support::response(200, "OK")).await;
    let hub = HealthHub::new();
    let key = TargetKey::new("web", "a");
    let opts = TargetOptions {
        rise: 1,
        fall: 1,
        ..TargetOptions::default()
    };
    hub.add_target(&key, opts, Instant::now().into_std());
    let mut s = spec(0.1);
    s.interval = Duration::from_millis(20);
    s.kind = CheckKind::Http(tenbin_health::HttpCheck {
        expect_body: Some("OK".into()),
        ..Default::default()
    });
    let task = scheduler::spawn_check(hub.clone(), key.clone(), peer.addr, s.clone(), rng(3));
    let rx = hub.subscribe();
    let guard = Duration::from_secs(20);
    tokio::time::timeout(guard, wait_for(Active, &key, rx.clone()))
        .await
        .expect("becomes active");
    task.abort();

    // the same check against a port nobody listens on: down
    let dead = support::closed_port().await;
    let task = scheduler::spawn_check(hub.clone(), key.clone(), dead, s, rng(4));
    tokio::time::timeout(guard, wait_for(Down, &key, rx.clone()))
        .await
        .expect("goes down");
    task.abort();
    let reason = hub.snapshot().target(&key).unwrap().reason.clone();
    assert!(reason.contains("refused"), "{reason}");
}

async fn wait_for(
    want: ServerState,
    key: &TargetKey,
    mut rx: watch::Receiver<Arc<HealthSnapshot>>,
) {
    if rx.borrow_and_update().state(key) == Some(want) {
        return;
    }
    loop {
        rx.changed().await.unwrap();
        if rx.borrow_and_update().state(key) == Some(want) {
            return;
        }
    }
}
