//! Failure handling through a running proxy: safe retries, each timeout, maxconn queueing,
//! 503s, and Upgrade tunnelling. Timeouts are configured short and the assertions are on
//! status codes and signals, never on elapsed time; `guard` only stops a hung test.

mod http_support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use http_support::*;
use tenbin_core::pick::Algorithm;
use tenbin_core::ServerState;
use tenbin_proxy::pool::{Outcome, Pool, PoolConfig, Server, ServerConfig, SignalSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const GUARD: Duration = Duration::from_secs(20);

async fn guard<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("test hung")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A server that accepts, reads the request, and closes without answering.
async fn black_hole() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            s.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
        }
    });
    (addr, seen)
}

#[derive(Debug, Default)]
struct Signals(Mutex<Vec<(String, Outcome)>>);

impl SignalSink for Signals {
    fn observe(&self, _pool: &str, server: &Server, outcome: Outcome) {
        self.0.lock().unwrap().push((server.name.clone(), outcome));
    }
}

fn post(url: &str) -> Request<Full<Bytes>> {
    Request::post(url)
        .body(Full::new(Bytes::from_static(b"order=1")))
        .unwrap()
}

#[tokio::test]
async fn idempotent_requests_retry_elsewhere_and_posts_never_do() {
    let good = Backend::spawn("good").await;
    let (bad_addr, bad_seen) = black_hole().await;
    let servers = vec![
        ServerConfig::new("bad", bad_addr),
        ServerConfig::new("good", good.addr),
    ];
    let p = Pool::new(PoolConfig::new("app", Algorithm::RoundRobin, servers));
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p])).await;
    for _ in 0..4 {
        let (status, _, body) = guard(get(&proxy.url("/"))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "good"));
    }
    let seen_before = bad_seen.load(Ordering::SeqCst);
    assert!(
        seen_before >= 1,
        "round robin sent some GETs to the bad server"
    );
    let (mut failed, good_before) = (0, good.hits());
    for _ in 0..4 {
        let (status, _, _) = guard(send(post(&proxy.url("/")))).await;
        match status {
            StatusCode::OK => {}
            StatusCode::BAD_GATEWAY => failed += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(failed >= 1, "some POST landed on the bad server");
    // Each failed POST reached the bad server once and was not replayed on the good one.
    assert_eq!(bad_seen.load(Ordering::SeqCst) - seen_before, failed);
    assert_eq!(good.hits() - good_before, 4 - failed);
}

#[tokio::test]
async fn connect_failures_are_retried_even_for_posts() {
    let good = Backend::spawn("good").await;
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let servers = vec![
        ServerConfig::new("dead", dead_addr),
        ServerConfig::new("good", good.addr),
    ];
    let p = Pool::new(PoolConfig::new("app", Algorithm::RoundRobin, servers));
    let signals = Arc::new(Signals::default());
    p.set_signal_sink(signals.clone());
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p])).await;
    for _ in 0..4 {
        let (status, _, body) = guard(send(post(&proxy.url("/")))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "good"));
    }
    assert_eq!(good.hits(), 4);
    let got = signals.0.lock().unwrap().clone();
    assert!(
        got.contains(&("dead".into(), Outcome::ConnectFailed)),
        "{got:?}"
    );
}

#[tokio::test]
async fn retry_budget_runs_out_with_502() {
    let (a, a_seen) = black_hole().await;
    let (b, b_seen) = black_hole().await;
    let (c, c_seen) = black_hole().await;
    let servers = vec![
        ServerConfig::new("a", a),
        ServerConfig::new("b", b),
        ServerConfig::new("c", c),
    ];
    let p = Pool::new(PoolConfig::new("app", Algorithm::RoundRobin, servers));
    let mut fe = frontend(&[], "app", vec![p]);
    fe.retries = 1;
    let proxy = Proxy::spawn(fe).await;
    let (status, _, _) = guard(get(&proxy.url("/"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let total: usize = [a_seen, b_seen, c_seen]
        .iter()
        .map(|s| s.load(Ordering::SeqCst))
        .sum();
    assert_eq!(total, 2, "one try and one retry");
}

#[tokio::test]
async fn server_timeout_is_504() {
    let b = Backend::spawn("slow").await;
    let mut fe = frontend(&[], "app", vec![pool("app", Algorithm::RoundRobin, &[&b])]);
    fe.timeouts.server = ms(200);
    let proxy = Proxy::spawn(fe).await;
    let (status, _, body) = guard(get(&proxy.url("/hang"))).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body.starts_with("504"), "{body}");
    // A server that answers is not cut off; the timeout here is one no stall of a loaded
    // machine reaches (the guard gives up first), so only a timer that fires early fails this.
    let mut fe = frontend(&[], "app", vec![pool("app", Algorithm::RoundRobin, &[&b])]);
    fe.timeouts.server = GUARD * 2;
    let patient = Proxy::spawn(fe).await;
    let (status, _, _) = guard(get(&patient.url("/delay/1"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn total_timeout_bounds_retries_and_waits() {
    let b = Backend::spawn("slow").await;
    let mut fe = frontend(&[], "app", vec![pool("app", Algorithm::RoundRobin, &[&b])]);
    fe.timeouts.server = Duration::from_secs(60);
    fe.timeouts.total = ms(300);
    let proxy = Proxy::spawn(fe).await;
    let (status, _, _) = guard(get(&proxy.url("/hang"))).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
}

/// A listener whose accept queue is full: further SYNs are dropped, so connects hang. With
/// `listen(0)` Linux queues exactly one connection and drops SYNs while the queue is over its
/// limit, so one connection that is never accepted fills it, with no timing involved.
async fn full_backlog() -> (TcpListener, Vec<TcpStream>) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(0).unwrap();
    let addr = l.local_addr().unwrap();
    let held = vec![guard(TcpStream::connect(addr)).await.unwrap()];
    (l, held)
}

#[tokio::test]
async fn connect_timeout_is_504_and_signalled() {
    let (listener, _held) = full_backlog().await;
    let addr = listener.local_addr().unwrap();
    let p = Pool::new(PoolConfig::new(
        "app",
        Algorithm::RoundRobin,
        vec![ServerConfig::new("syn-drop", addr)],
    ));
    let signals = Arc::new(Signals::default());
    p.set_signal_sink(signals.clone());
    let mut fe = frontend(&[], "app", vec![p]);
    fe.timeouts.connect = ms(200);
    fe.timeouts.server = Duration::from_secs(60);
    fe.timeouts.total = Duration::from_secs(60);
    let proxy = Proxy::spawn(fe).await;
    let (status, _, _) = guard(get(&proxy.url("/"))).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let got = signals.0.lock().unwrap().clone();
    assert_eq!(got, vec![("syn-drop".into(), Outcome::ConnectTimeout)]);
}

/// Reads until the peer closes; returns what it sent.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slowloris_client_is_cut_off_at_the_header_timeout() {
    let b = Backend::spawn("a").await;
    let mut fe = frontend(&[], "app", vec![pool("app", Algorithm::RoundRobin, &[&b])]);
    fe.timeouts.client_header = ms(200);
    let proxy = Proxy::spawn(fe).await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let rest = guard(read_to_close(&mut s)).await;
    assert!(!rest.contains("200 OK"), "{rest}");
    assert_eq!(b.hits(), 0);
}

#[tokio::test]
async fn idle_keepalive_client_is_closed() {
    let b = Backend::spawn("a").await;
    let mut fe = frontend(&[], "app", vec![pool("app", Algorithm::RoundRobin, &[&b])]);
    fe.timeouts.client_header = Duration::from_secs(60);
    fe.timeouts.client_idle = ms(200);
    let proxy = Proxy::spawn(fe).await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The response arrives, then the idle connection is closed by the proxy.
    let all = guard(read_to_close(&mut s)).await;
    assert!(all.starts_with("HTTP/1.1 200 OK"), "{all}");
    assert!(all.ends_with("a"), "{all}");
}

#[tokio::test]
async fn maxconn_queues_in_order_and_a_full_queue_is_503() {
    let b = Backend::spawn("a").await;
    let mut server = ServerConfig::new("a", b.addr);
    server.maxconn = Some(1);
    let mut cfg = PoolConfig::new("app", Algorithm::RoundRobin, vec![server]);
    cfg.queue_size = 1;
    let p = Pool::new(cfg);
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p.clone()])).await;
    // The first request holds the slot until the gate opens, after the other two arrived.
    let url = proxy.url("/gate");
    let first = tokio::spawn(get_owned(url.clone()));
    guard(until(|| p.servers()[0].2 == 1)).await;
    let second = tokio::spawn(get_owned(url.clone()));
    guard(until(|| p.queued() == 1)).await;
    let (status, _, _) = guard(get(&url)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "queue full");
    b.open_gate();
    assert_eq!(guard(first).await.unwrap(), StatusCode::OK);
    assert_eq!(guard(second).await.unwrap(), StatusCode::OK);
    assert_eq!(b.hits(), 2);
}

#[tokio::test]
async fn queue_timeout_and_no_server_are_503() {
    let b = Backend::spawn("a").await;
    let mut server = ServerConfig::new("a", b.addr);
    server.maxconn = Some(1);
    let mut cfg = PoolConfig::new("app", Algorithm::RoundRobin, vec![server]);
    cfg.queue_timeout = ms(100);
    let p = Pool::new(cfg);
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p.clone()])).await;
    let first = tokio::spawn(get_owned(proxy.url("/gate")));
    guard(until(|| p.servers()[0].2 == 1)).await;
    let (status, _, _) = guard(get(&proxy.url("/"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "queue timeout");
    b.open_gate();
    assert_eq!(guard(first).await.unwrap(), StatusCode::OK);

    let id = p.id_of("a").unwrap();
    p.apply_health(id, ServerState::Maintenance, 100);
    let (status, _, body) = guard(get(&proxy.url("/"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.starts_with("503"), "{body}");
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    let b = Backend::spawn("ws").await;
    let proxy = Proxy::spawn(frontend(
        &[],
        "app",
        vec![pool("app", Algorithm::RoundRobin, &[&b])],
    ))
    .await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        guard(s.read_exact(&mut byte)).await.unwrap();
        head.push(byte[0]);
        assert!(head.len() < 4096);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for msg in [&b"hello"[..], b"second frame"] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        guard(s.read_exact(&mut back)).await.unwrap();
        assert_eq!(back, msg);
    }
}

async fn get_owned(url: String) -> StatusCode {
    get(&url).await.0
}

/// Polls a condition until it holds (bounded by the caller's guard).
async fn until(cond: impl Fn() -> bool) {
    while !cond() {
        tokio::time::sleep(ms(5)).await;
    }
}

#[tokio::test]
async fn overflow_group_takes_over_when_the_primary_is_full_or_down() {
    let primary = Backend::spawn("primary").await;
    let backup = Backend::spawn("backup").await;
    let mut p_cfg = ServerConfig::new("primary", primary.addr);
    p_cfg.maxconn = Some(1);
    let mut b_cfg = ServerConfig::new("backup", backup.addr);
    b_cfg.group = 1;
    let p = Pool::new(PoolConfig::new(
        "app",
        Algorithm::RoundRobin,
        vec![p_cfg, b_cfg],
    ));
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p.clone()])).await;
    assert_eq!(guard(get(&proxy.url("/"))).await.2, "primary");
    let slow = tokio::spawn(get_owned(proxy.url("/delay/1500")));
    guard(until(|| p.servers()[0].2 == 1)).await;
    assert_eq!(
        guard(get(&proxy.url("/"))).await.2,
        "backup",
        "primary at maxconn"
    );
    assert_eq!(guard(slow).await.unwrap(), StatusCode::OK);
    assert_eq!(guard(get(&proxy.url("/"))).await.2, "primary");
    p.apply_health(p.id_of("primary").unwrap(), ServerState::Down, 100);
    assert_eq!(
        guard(get(&proxy.url("/"))).await.2,
        "backup",
        "primary down"
    );
}
