//! `[pool] slow_start` from the config file to the picks a pool hands out, on paused time.

use super::*;

const TOML: &str = r#"
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
mode = "tcp"
default_pool = "app"

[[pool]]
name = "app"
algorithm = "wrr"
slow_start = "10s"
[[pool.server]]
name = "a"
address = "127.0.0.1:9001"
[[pool.server]]
name = "b"
address = "127.0.0.1:9002"
"#;

fn app_pool() -> Pool {
    let cfg = tenbin_config::Config::parse(TOML, "t.toml").unwrap();
    let pc = PoolConfig::from_config(cfg.pool("app").unwrap(), Duration::from_secs(5));
    assert_eq!(pc.slow_start, Some(Duration::from_secs(10)));
    Pool::with_seed(pc, 7)
}

/// The same two servers under `algorithm`, without slow start.
fn without_ramp(algorithm: Algorithm) -> PoolConfig {
    let server = |name, port| ServerConfig::new(name, SocketAddr::from(([127, 0, 0, 1], port)));
    PoolConfig::new("app", algorithm, vec![server("a", 9001), server("b", 9002)])
}

/// How many of `n` fresh sessions go to `b`.
fn share_of_b(p: &Pool, n: usize) -> usize {
    let b = p.id_of("b").unwrap();
    (0..n)
        .filter(|_| p.try_acquire(None, &[]).unwrap().id() == b)
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_returning_server_ramps_over_the_window() {
    let p = app_pool();
    let b = p.id_of("b").unwrap();
    assert_eq!(share_of_b(&p, 1000), 500, "both start at full weight");

    p.apply_health(b, ServerState::Down, 100);
    assert_eq!(share_of_b(&p, 100), 0);
    p.apply_health(b, ServerState::Active, 100);

    // Smooth WRR with weights 1000 : 1000 x ramp, sampled every 2 s of the 10 s window.
    let mut shares = Vec::new();
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(2)).await;
        shares.push(share_of_b(&p, 1100));
    }
    // 20%, 40%, 60%, 80% and 100% of full weight: b's share is w / (1 + w).
    let expected = [183, 314, 412, 488, 550];
    for (got, want) in shares.iter().zip(expected) {
        assert!(
            got.abs_diff(want) <= 3,
            "shares {shares:?}, expected {expected:?}"
        );
    }
    assert!(shares.windows(2).all(|w| w[0] < w[1]), "{shares:?}");
}

#[tokio::test(start_paused = true)]
async fn reconfigure_changes_the_ramp_and_the_algorithm_keeping_counts() {
    let p = app_pool();
    let held = p.try_acquire(None, &[]).unwrap();
    p.reconfigure(without_ramp(Algorithm::LeastConn));
    // The session held across the change still counts: least-conn avoids its server.
    let other = p.try_acquire(None, &[]).unwrap();
    assert_ne!(other.id(), held.id());
    drop((held, other));
    // Back to WRR, still without slow start: a returning server is at full weight at once.
    p.reconfigure(without_ramp(Algorithm::WeightedRoundRobin));
    let b = p.id_of("b").unwrap();
    p.apply_health(b, ServerState::Down, 100);
    p.apply_health(b, ServerState::Active, 100);
    assert_eq!(share_of_b(&p, 1000), 500);
}
