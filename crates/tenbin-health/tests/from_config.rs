//! Runtime check specs built from the config file's `[pool.health]`, `[pool.agent]` and
//! `[pool.outlier]`, then run end to end against loopback peers.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use tenbin_config::Config;
use tenbin_core::ServerState;
use tenbin_health::from_config::{self, check_spec};
use tenbin_health::outcome::CheckResult;
use tenbin_health::scheduler::SharedRng;
use tenbin_health::{CheckKind, HealthHub, TargetKey};

fn config(check_port: u16, agent_port: u16, b_addr: &str) -> Config {
    let text = format!(
        r#"
[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "127.0.0.1:{check_port}"
[[pool.server]]
name = "b"
address = "{b_addr}"
[[pool.server]]
name = "m"
address = "127.0.0.1:9"
state = "maintenance"
[pool.health]
kind = "http"
interval = "50ms"
jitter = 0.1
timeout = "5s"
rise = 1
fall = 1
method = "GET"
path = "/health"
host = "app.local"
expect_status = [200]
expect_body = "OK"
expect_regex = "v[0-9]+"
[pool.agent]
port = {agent_port}
interval = "50ms"
timeout = "5s"
send = "ping\n"
[pool.outlier]
consecutive_errors = 4
base_ejection = "30s"
max_ejection = "300s"
max_ejected_percent = 50
panic_threshold_percent = 40
"#
    );
    Config::parse(&text, "test.toml").unwrap()
}

#[test]
fn specs_mirror_the_config() {
    let cfg = config(8080, 9999, "127.0.0.1:8081");
    let pool = cfg.pool("app").unwrap();
    let spec = check_spec("app", pool.health.as_ref().unwrap()).unwrap();
    assert_eq!(
        (spec.interval, spec.timeout),
        (Duration::from_millis(50), Duration::from_secs(5))
    );
    assert_eq!((spec.rise, spec.fall, spec.jitter), (1, 1, 0.1));
    let CheckKind::Http(h) = spec.kind else {
        panic!("http expected")
    };
    assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/health"));
    assert_eq!(h.host.as_deref(), Some("app.local"));
    assert_eq!(h.expect_status, vec![200]);
    assert!(h.expect_regex.unwrap().is_match("v12"));
    let agent = from_config::agent_spec(pool.agent.as_ref().unwrap());
    assert_eq!((agent.port, agent.send.as_slice()), (9999, &b"ping\n"[..]));
    let o = from_config::outlier_spec(pool.outlier.as_ref().unwrap());
    assert_eq!((o.consecutive_errors, o.panic_threshold_percent), (4, 40));
    assert_eq!(o.max_ejection, Duration::from_secs(300));
}

#[tokio::test]
async fn a_configured_pool_is_checked_end_to_end() {
    let good = support::http(&support::response(200, "OK v3")).await;
    let agent = support::agent("60%\n", b"ping\n").await;
    let bad = support::http(&support::response(200, "OK but no version")).await;
    // every server is on 127.0.0.1, so both query the same agent; its load figure does not
    // lift b, whose content check fails
    let cfg = config(good.addr.port(), agent.port(), &bad.addr.to_string());
    let pool = cfg.pool("app").unwrap();
    let hub = HealthHub::new();
    from_config::register_pool(&hub, pool, tokio::time::Instant::now().into_std());
    let snap = hub.snapshot();
    let key = |s: &str| TargetKey::new("app", s);
    assert_eq!(snap.state(&key("a")), Some(ServerState::Unchecked));
    assert_eq!(snap.state(&key("m")), Some(ServerState::Maintenance));

    let rng: SharedRng = Arc::new(Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(5)));
    let tasks = from_config::spawn_pool_checks(&hub, pool, &rng).unwrap();
    assert_eq!(
        tasks.len(),
        4,
        "check + agent for a and b, none for maintenance"
    );
    let mut rx = hub.subscribe();
    let done = |s: &tenbin_health::HealthSnapshot| {
        let a = s.target(&key("a")).unwrap();
        a.state == ServerState::Active
            && a.load_percent == 60
            && s.state(&key("b")) == Some(ServerState::Down)
    };
    // A budget for the whole run (real sockets, real time), not an asserted duration.
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !done(&rx.borrow_and_update()) {
            rx.changed().await.unwrap();
        }
    })
    .await;
    tasks.iter().for_each(|t| t.abort());
    let snap = hub.snapshot();
    assert!(waited.is_ok(), "{snap:#?}");
    assert!(snap
        .target(&key("b"))
        .unwrap()
        .reason
        .contains("does not match"));
    let req = good.requests.lock().await.join("");
    assert!(req.contains("Host: app.local"), "{req}");
}

#[test]
fn a_reload_keeps_servers_that_stayed_and_forgets_those_that_left() {
    let now = Instant::now();
    let hub = HealthHub::new();
    let first = config(8080, 9999, "127.0.0.1:8081");
    from_config::register_pool(&hub, first.pool("app").unwrap(), now);
    let key = |s: &str| TargetKey::new("app", s);
    hub.report_check(&key("a"), CheckResult::pass("ok"), now);
    assert_eq!(hub.snapshot().state(&key("a")), Some(ServerState::Active));

    let text = r#"
[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "127.0.0.1:8080"
[[pool.server]]
name = "c"
address = "127.0.0.1:8082"
[pool.health]
kind = "http"
interval = "50ms"
timeout = "5s"
rise = 1
fall = 1
[pool.outlier]
consecutive_errors = 4
"#;
    let second = Config::parse(text, "reload.toml").unwrap();
    from_config::register_pool(&hub, second.pool("app").unwrap(), now);
    let snap = hub.snapshot();
    let names: Vec<&str> = snap.pool_targets("app").map(|(k, _)| &*k.server).collect();
    assert_eq!(names, vec!["a", "c"]);
    assert_eq!(
        snap.state(&key("a")),
        Some(ServerState::Active),
        "kept its health"
    );
    assert_eq!(snap.state(&key("c")), Some(ServerState::Unchecked));
}
