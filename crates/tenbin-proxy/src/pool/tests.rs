use std::sync::Mutex as StdMutex;

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn pool(servers: Vec<ServerConfig>, queue_size: usize) -> Pool {
    let mut cfg = PoolConfig::new("app", Algorithm::RoundRobin, servers);
    cfg.queue_size = queue_size;
    cfg.queue_timeout = Duration::from_secs(5);
    Pool::with_seed(cfg, 7)
}

fn limited(name: &str, port: u16, maxconn: u32) -> ServerConfig {
    let mut s = ServerConfig::new(name, addr(port));
    s.maxconn = Some(maxconn);
    s
}

fn active_of(p: &Pool, name: &str) -> u32 {
    p.servers()
        .into_iter()
        .find(|(s, _, _)| s.name == name)
        .unwrap()
        .2
}

#[tokio::test]
async fn leases_count_active_sessions_until_dropped() {
    let p = pool(
        vec![
            ServerConfig::new("a", addr(1)),
            ServerConfig::new("b", addr(2)),
        ],
        0,
    );
    let l1 = p.acquire(None, &[]).await.unwrap();
    let l2 = p.acquire(None, &[]).await.unwrap();
    assert_ne!(l1.id(), l2.id());
    assert_eq!(active_of(&p, "a") + active_of(&p, "b"), 2);
    drop(l1);
    assert_eq!(active_of(&p, "a") + active_of(&p, "b"), 1);
    l2.finish(Some(Duration::from_millis(3)));
    assert_eq!(active_of(&p, "a") + active_of(&p, "b"), 0);
}

#[tokio::test]
async fn lease_carries_the_server_record() {
    let p = pool(vec![ServerConfig::new("a", addr(9001))], 0);
    let l = p.acquire(None, &[]).await.unwrap();
    assert_eq!(l.name(), "a");
    assert_eq!(l.addr(), addr(9001));
    assert_eq!(Some(l.id()), p.id_of("a"));
}

#[tokio::test]
async fn no_server_when_all_down_or_excluded() {
    let p = pool(vec![ServerConfig::new("a", addr(1))], 10);
    let a = p.id_of("a").unwrap();
    assert!(matches!(
        p.acquire(None, &[a]).await,
        Err(PoolError::NoServer(_))
    ));
    p.apply_health(a, ServerState::Down, 100);
    assert!(matches!(
        p.acquire(None, &[]).await,
        Err(PoolError::NoServer(_))
    ));
    p.apply_health(a, ServerState::Draining, 100);
    assert!(matches!(
        p.acquire(None, &[]).await,
        Err(PoolError::NoServer(_))
    ));
    p.apply_health(a, ServerState::Active, 0);
    assert!(matches!(
        p.acquire(None, &[]).await,
        Err(PoolError::NoServer(_))
    ));
    p.apply_health(a, ServerState::Active, 100);
    assert!(p.acquire(None, &[]).await.is_ok());
}

#[tokio::test]
async fn maintenance_at_start_is_respected() {
    let mut a = ServerConfig::new("a", addr(1));
    a.state = ServerState::Maintenance;
    let p = pool(vec![a, ServerConfig::new("b", addr(2))], 0);
    for _ in 0..4 {
        assert_eq!(p.acquire(None, &[]).await.unwrap().name(), "b");
    }
}

#[tokio::test(start_paused = true)]
async fn full_server_queues_then_hands_over_in_fifo_order() {
    let p = pool(vec![limited("a", 1, 1)], 10);
    let held = p.acquire(None, &[]).await.unwrap();
    let order = Arc::new(StdMutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (p, order) = (p.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let lease = p.acquire(None, &[]).await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(lease);
        }));
        // Let each waiter enqueue before the next one.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(p.queued(), 3);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
    assert_eq!(active_of(&p, "a"), 0);
}

#[tokio::test]
async fn queue_full_is_an_error_not_a_wait() {
    let p = pool(vec![limited("a", 1, 1)], 1);
    let _held = p.acquire(None, &[]).await.unwrap();
    let p2 = p.clone();
    let waiter =
        tokio::spawn(async move { p2.acquire(None, &[]).await.map(|l| l.name().to_string()) });
    while p.queued() < 1 {
        tokio::task::yield_now().await;
    }
    assert!(matches!(
        p.acquire(None, &[]).await,
        Err(PoolError::QueueFull(_))
    ));
    assert!(matches!(
        p.try_acquire(None, &[]),
        Err(PoolError::QueueFull(_))
    ));
    waiter.abort();
}

#[tokio::test]
async fn zero_queue_fails_at_once() {
    let p = pool(vec![limited("a", 1, 1)], 0);
    let _held = p.acquire(None, &[]).await.unwrap();
    assert!(matches!(
        p.acquire(None, &[]).await,
        Err(PoolError::QueueFull(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn queue_timeout_fires_only_after_the_configured_wait() {
    let p = pool(vec![limited("a", 1, 1)], 10);
    let _held = p.acquire(None, &[]).await.unwrap();
    let p2 = p.clone();
    let started = Instant::now();
    let waiter = tokio::spawn(async move {
        let r = p2.acquire(None, &[]).await;
        (r.map(|l| l.name().to_string()), started.elapsed())
    });
    let (r, waited) = waiter.await.unwrap();
    assert!(matches!(r, Err(PoolError::QueueTimeout(_))));
    assert_eq!(waited, Duration::from_secs(5));
    assert_eq!(p.queued(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiter_does_not_swallow_the_slot() {
    let p = pool(vec![limited("a", 1, 1)], 10);
    let held = p.acquire(None, &[]).await.unwrap();
    let p2 = p.clone();
    let gone = tokio::spawn(async move { p2.acquire(None, &[]).await.is_ok() });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let p3 = p.clone();
    let stays =
        tokio::spawn(async move { p3.acquire(None, &[]).await.map(|l| l.name().to_string()) });
    tokio::time::sleep(Duration::from_millis(1)).await;
    gone.abort();
    let _ = gone.await;
    drop(held);
    assert_eq!(stays.await.unwrap().unwrap(), "a");
    assert_eq!(active_of(&p, "a"), 0);
}

#[tokio::test(start_paused = true)]
async fn health_recovery_serves_waiters() {
    let p = pool(vec![limited("a", 1, 1), limited("b", 2, 1)], 10);
    let b = p.id_of("b").unwrap();
    p.apply_health(b, ServerState::Down, 100);
    let _held = p.acquire(None, &[]).await.unwrap();
    let p2 = p.clone();
    let waiter =
        tokio::spawn(async move { p2.acquire(None, &[]).await.map(|l| l.name().to_string()) });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(p.queued(), 1);
    p.apply_health(b, ServerState::Active, 100);
    assert_eq!(waiter.await.unwrap().unwrap(), "b");
}

#[tokio::test]
async fn reconfigure_keeps_ids_and_counts_by_name() {
    let p = pool(
        vec![
            ServerConfig::new("a", addr(1)),
            ServerConfig::new("b", addr(2)),
        ],
        0,
    );
    let a = p.id_of("a").unwrap();
    let lease = p.acquire(None, &[p.id_of("b").unwrap()]).await.unwrap();
    assert_eq!(lease.id(), a);
    p.reconfigure(PoolConfig::new(
        "app",
        Algorithm::RoundRobin,
        vec![
            ServerConfig::new("c", addr(3)),
            ServerConfig::new("a", addr(4)),
        ],
    ));
    assert_eq!(p.id_of("a"), Some(a));
    assert_eq!(active_of(&p, "a"), 1);
    assert!(p.id_of("c").is_some_and(|c| c != a));
    drop(lease);
    assert_eq!(active_of(&p, "a"), 0);
}

#[derive(Debug, Default)]
struct Recorder(StdMutex<Vec<(String, String, Outcome)>>);

impl SignalSink for Recorder {
    fn observe(&self, pool: &str, server: &Server, outcome: Outcome) {
        self.0
            .lock()
            .unwrap()
            .push((pool.into(), server.name.clone(), outcome));
    }
}

#[tokio::test]
async fn reports_reach_the_signal_sink() {
    let p = pool(vec![ServerConfig::new("a", addr(1))], 0);
    let rec = Arc::new(Recorder::default());
    p.set_signal_sink(rec.clone());
    let lease = p.acquire(None, &[]).await.unwrap();
    lease.report(Outcome::ConnectFailed);
    lease.report(Outcome::Success {
        latency: Duration::from_millis(2),
    });
    let seen = rec.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("app".into(), "a".into(), Outcome::ConnectFailed),
            (
                "app".into(),
                "a".into(),
                Outcome::Success {
                    latency: Duration::from_millis(2)
                }
            ),
        ]
    );
    assert!(Outcome::Timeout.is_failure());
}

#[tokio::test]
async fn pinned_sessions_reach_draining_servers_but_not_down_or_full_ones() {
    let p = pool(vec![limited("a", 1, 1), ServerConfig::new("b", addr(2))], 0);
    let a = p.id_of("a").unwrap();
    p.apply_health(a, ServerState::Draining, 100);
    // No new sessions for a draining server...
    for _ in 0..3 {
        assert_eq!(p.acquire(None, &[]).await.unwrap().name(), "b");
    }
    // ...but persisted ones still land there, within maxconn.
    let pinned = p
        .acquire_pinned(a)
        .expect("draining accepts persisted sessions");
    assert_eq!(pinned.name(), "a");
    assert!(p.acquire_pinned(a).is_none(), "maxconn 1 already used");
    drop(pinned);
    p.apply_health(a, ServerState::Down, 100);
    assert!(p.acquire_pinned(a).is_none());
    assert!(p.acquire_pinned(BackendId(99)).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_slot_no_waiter_can_use_goes_to_a_newcomer_at_once() {
    let p = pool(vec![limited("a", 1, 1), limited("b", 2, 1)], 10);
    let b = p.id_of("b").unwrap();
    let held_a = p.acquire(None, &[b]).await.unwrap();
    let held_b = p.acquire(None, &[]).await.unwrap();
    assert_eq!((held_a.name(), held_b.name()), ("a", "b"));
    // A retry that must avoid b waits for a.
    let p2 = p.clone();
    let retry =
        tokio::spawn(async move { p2.acquire(None, &[b]).await.map(|l| l.name().to_string()) });
    tokio::time::sleep(Duration::from_millis(1)).await;
    drop(held_b);
    assert_eq!(p.queued(), 1, "b is free but the waiter excludes it");
    // A newcomer takes b without waiting behind it (paused time: a wait would time out).
    let started = Instant::now();
    let newcomer = p.acquire(None, &[]).await.unwrap();
    assert_eq!(newcomer.name(), "b");
    assert_eq!(started.elapsed(), Duration::ZERO);
    drop(held_a);
    assert_eq!(retry.await.unwrap().unwrap(), "a");
}

#[tokio::test(start_paused = true)]
async fn agent_maxconn_overrides_the_configured_limit_until_cleared() {
    let p = pool(vec![limited("a", 1, 1)], 10);
    let a = p.id_of("a").unwrap();
    let first = p.acquire(None, &[]).await.unwrap();
    assert!(matches!(
        p.try_acquire(None, &[]),
        Err(PoolError::QueueFull(_))
    ));
    // The agent allows two: a queued caller gets the new slot at once.
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { p2.acquire(None, &[]).await.is_ok() });
    tokio::time::sleep(Duration::from_millis(1)).await;
    p.set_agent_maxconn(a, Some(2));
    assert!(waiter.await.unwrap());
    let second = p.try_acquire(None, &[]).unwrap();
    assert!(matches!(
        p.try_acquire(None, &[]),
        Err(PoolError::QueueFull(_))
    ));
    // Cleared: back to the configured 1, and the limit survives a reconfigure when set.
    p.set_agent_maxconn(a, None);
    drop((first, second));
    let one = p.try_acquire(None, &[]).unwrap();
    assert!(p.try_acquire(None, &[]).is_err());
    p.set_agent_maxconn(a, Some(3));
    p.reconfigure(PoolConfig::new(
        "app",
        Algorithm::RoundRobin,
        vec![limited("a", 1, 1)],
    ));
    let two = p.try_acquire(None, &[]).unwrap();
    let three = p.try_acquire(None, &[]).unwrap();
    assert!(p.try_acquire(None, &[]).is_err());
    drop((one, two, three));
}
