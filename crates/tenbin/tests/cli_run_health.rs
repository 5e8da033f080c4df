//! The link from health to pools in `tenbin run` (its `wiring`), through the real binary: one
//! frontend and a two-server pool per mechanism, each with a server `b` that goes bad and comes
//! back while a client keeps asking.
//!
//! - `[pool.health]`: `b` killed (retries off, so a request that reaches it fails) leaves the
//!   rotation, and takes traffic again when it listens again.
//! - `[pool.agent]`: `b`'s agent says `down`, then `up`; then `maxconn:1` while one request is
//!   held on `b` keeps every other request off it, until the agent raises the limit.
//! - `[pool.outlier]`: `b` answering 500 is ejected after `consecutive_errors`, and takes
//!   traffic again once the ejection ends and it answers 200.
//!
//! Each step waits, bounded, for what the client sees; a run of answers counts only when
//! round robin could not have produced it with `b` in the rotation.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Daemon;
use tenbin_testkit::backend::{http, HttpBackend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers in a row that must all come from `a` before `b` counts as out of the rotation
/// (round robin over two eligible servers alternates).
const RUN: usize = 12;

/// One `GET /` through `frontend`: the status and the `x-backend` that answered.
async fn get(frontend: SocketAddr) -> (u16, String) {
    let mut c = TcpStream::connect(frontend)
        .await
        .expect("the frontend listens");
    c.write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    // Longer than any wait of the test, so a request `b` holds never fails on its own.
    tokio::time::timeout(common::LOG_WAIT * 2, c.read_to_end(&mut resp))
        .await
        .expect("a response")
        .unwrap();
    let text = String::from_utf8_lossy(&resp).to_lowercase();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let backend = text
        .lines()
        .find_map(|l| l.strip_prefix("x-backend:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    (status, backend)
}

/// Asks until `RUN` answers in a row are 200 from `a` (bounded by [`common::LOG_WAIT`]). A
/// request that reaches `b` breaks the run at once, seen by `b`'s count, so one that `b` holds
/// does not stall the wait; held requests are returned, to be dropped when `b` may answer.
async fn wait_only_a(
    daemon: &Daemon,
    frontend: SocketAddr,
    b: &HttpBackend,
    what: &str,
) -> Vec<tokio::task::JoinHandle<(u16, String)>> {
    let deadline = tokio::time::Instant::now() + common::LOG_WAIT;
    let (mut run, mut held) = (0, Vec::new());
    while run < RUN {
        daemon.assert_running();
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: never {RUN} answers in a row from a"
        );
        let hits = b.hits();
        let mut req = tokio::spawn(get(frontend));
        let reached_b = async {
            while b.hits() == hits {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        run = tokio::select! {
            answer = &mut req => match answer.unwrap() {
                (200, from) if from == "a" && b.hits() == hits => run + 1,
                _ => 0,
            },
            () = reached_b => {
                held.push(req);
                0
            }
        };
    }
    held
}

/// Asks until `b` answers 200 (bounded).
async fn wait_b_again(daemon: &Daemon, frontend: SocketAddr, what: &str) {
    let deadline = tokio::time::Instant::now() + common::LOG_WAIT;
    loop {
        daemon.assert_running();
        if get(frontend).await == (200, "b".to_string()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: b never answered again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HAProxy-style agent on `ip:port` that answers every connection with the current line.
async fn agent(ip: &str, port: u16, reply: Arc<Mutex<String>>) -> tokio::task::JoinHandle<()> {
    let l = TcpListener::bind((ip, port)).await.expect("bind the agent");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let line = reply.lock().unwrap().clone();
            // A probe that gave up early is the daemon's concern, not this peer's.
            let _ = s.write_all(format!("{line}\n").as_bytes()).await;
        }
    })
}

fn say(reply: &Arc<Mutex<String>>, line: &str) {
    *reply.lock().unwrap() = line.to_string();
}

/// Two backends `a` and `b` on `ip_a` / `ip_b` (port 0).
async fn pair(ip_a: &str, ip_b: &str) -> (HttpBackend, HttpBackend) {
    let a = http()
        .name("a")
        .bind(format!("{ip_a}:0").parse().unwrap())
        .spawn()
        .await;
    let b = http()
        .name("b")
        .bind(format!("{ip_b}:0").parse().unwrap())
        .spawn()
        .await;
    (a, b)
}

fn frontend(name: &str) -> String {
    format!(
        "[[frontend]]\nname = \"{name}\"\nbind = [\"127.0.0.1:0\"]\nmode = \"http\"\n\
         default_pool = \"{name}\"\nretries = 0\n\n"
    )
}

fn pool(name: &str, a: &HttpBackend, b: &HttpBackend, extra: &str) -> String {
    format!(
        "[[pool]]\nname = \"{name}\"\nalgorithm = \"roundrobin\"\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n\
         [[pool.server]]\nname = \"b\"\naddress = \"{}\"\n{extra}\n",
        a.addr(),
        b.addr()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_agent_and_outlier_take_a_server_out_and_back() {
    // Loopback addresses unique to this run: the agent port is one per pool, so each server
    // needs an address of its own.
    let x = 100 + std::process::id() % 100;
    let ip = |n: u8, h: u8| format!("127.{x}.{n}.{h}");
    let (act_a, act_b) = pair(&ip(1, 1), &ip(1, 2)).await;
    let (agt_a, agt_b) = pair(&ip(2, 1), &ip(2, 2)).await;
    let (out_a, out_b) = pair(&ip(3, 1), &ip(3, 2)).await;

    let reply_a = Arc::new(Mutex::new("up 100%".to_string()));
    let reply_b = Arc::new(Mutex::new("up 100%".to_string()));
    let probe = TcpListener::bind((ip(2, 1), 0)).await.unwrap();
    let agent_port = probe.local_addr().unwrap().port();
    drop(probe);
    let _agent_a = agent(&ip(2, 1), agent_port, reply_a.clone()).await;
    let _agent_b = agent(&ip(2, 2), agent_port, reply_b.clone()).await;

    let config = [
        frontend("active"),
        pool(
            "active",
            &act_a,
            &act_b,
            "[pool.health]\nkind = \"http\"\npath = \"/\"\ninterval = \"100ms\"\n\
             timeout = \"5s\"\nrise = 1\nfall = 1\n",
        ),
        frontend("agent"),
        pool(
            "agent",
            &agt_a,
            &agt_b,
            &format!("[pool.agent]\nport = {agent_port}\ninterval = \"100ms\"\ntimeout = \"5s\"\n"),
        ),
        frontend("passive"),
        pool(
            "passive",
            &out_a,
            &out_b,
            "[pool.outlier]\nconsecutive_errors = 2\nbase_ejection = \"5s\"\n\
             max_ejection = \"5s\"\nmax_ejected_percent = 50\npanic_threshold_percent = 0\n",
        ),
    ]
    .concat();
    let daemon = Daemon::start(&config, "run-health");
    let active = daemon.bound("http", Some("active"));
    let agent_fe = daemon.bound("http", Some("agent"));
    let passive = daemon.bound("http", Some("passive"));

    // Active checks: killed, out; listening again, back.
    wait_b_again(&daemon, active, "active: b before the kill").await;
    act_b.stop().await;
    wait_only_a(&daemon, active, &act_b, "active: b killed").await;
    act_b.start().await;
    wait_b_again(&daemon, active, "active: b listens again").await;

    // Agent: down, then up.
    wait_b_again(&daemon, agent_fe, "agent: b before down").await;
    say(&reply_b, "down");
    wait_only_a(&daemon, agent_fe, &agt_b, "agent: b's agent says down").await;
    say(&reply_b, "up 100%");
    wait_b_again(&daemon, agent_fe, "agent: b's agent says up").await;

    // Agent maxconn: b holds every request it gets; once its agent's maxconn:1 applies, the
    // one it holds fills it and every other request goes to a.
    agt_b.set_delay(Duration::from_secs(120));
    say(&reply_b, "up 100% maxconn:1");
    let held = wait_only_a(&daemon, agent_fe, &agt_b, "agent: b at its agent's maxconn").await;
    assert!(!held.is_empty(), "b held a request, so it was full");
    agt_b.set_delay(Duration::ZERO);
    say(&reply_b, "up 100% maxconn:100");
    wait_b_again(&daemon, agent_fe, "agent: b's maxconn raised").await;
    held.iter().for_each(tokio::task::JoinHandle::abort);

    // Passive: 500s eject b; 200s after the ejection bring it back.
    wait_b_again(&daemon, passive, "passive: b before the errors").await;
    out_b.set_status(500);
    let errors_before = out_b.hits();
    wait_only_a(&daemon, passive, &out_b, "passive: b answers 500").await;
    assert!(
        out_b.hits() >= errors_before + 2,
        "b was ejected after its errors"
    );
    out_b.set_status(200);
    wait_b_again(&daemon, passive, "passive: b's ejection ended").await;
}
