//! `mode tcp` through a running proxy on loopback: half-close, failover on refused and
//! timed-out connects, idle timeout, maxconn queueing, PROXY headers, splice, shutdown.

mod l4_common;

use std::sync::Arc;
use std::time::Duration;

use l4_common::*;
use tenbin_core::pick::Algorithm;
use tenbin_proxy::l4::{L4Stats, TcpFrontend};
use tenbin_proxy::pool::{Outcome, PoolConfig, ServerConfig};
use tenbin_proxy::proxy_protocol::{Header, Version};
use tenbin_testkit::backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LO: [u8; 4] = [127, 0, 0, 1];

async fn half_close_round_trip(splice: bool) {
    let b = backend::tcp_echo().name("a").spawn().await;
    let mut fe = TcpFrontend::new(
        "t",
        pool(Algorithm::RoundRobin, servers(&[("a", b.addr())])),
    );
    fe.splice = splice;
    let (proxy, fe) = tcp_proxy(fe).await;
    let mut c = connect_from(LO, proxy.addr).await;
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let (mut r, mut w) = c.split();
    let send = async {
        w.write_all(&payload).await.unwrap();
        // Half-close: the echo server sees EOF only through the proxy's shutdown.
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let (_, n) = tokio::time::timeout(GUARD, async {
        tokio::join!(send, r.read_to_end(&mut back))
    })
    .await
    .unwrap();
    n.unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload, "echo differs");
    // The session ends once both directions closed; its bytes are counted.
    for _ in 0..500 {
        if L4Stats::get(&fe.stats.active) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(L4Stats::get(&fe.stats.active), 0);
    assert_eq!(L4Stats::get(&fe.stats.bytes_in), payload.len() as u64);
    assert_eq!(L4Stats::get(&fe.stats.bytes_out), payload.len() as u64);
    assert_eq!(
        b.received()[0].len(),
        64 * 1024,
        "backend recorded its first 64 KiB"
    );
}

#[tokio::test]
async fn half_close_with_userspace_copy() {
    half_close_round_trip(false).await;
}

#[tokio::test]
async fn half_close_with_splice() {
    half_close_round_trip(true).await;
}

#[tokio::test]
async fn refused_connect_fails_over_and_is_reported() {
    let live = backend::tcp_echo().name("live").greet().spawn().await;
    let dead = dead_addr().await;
    let p = pool(
        Algorithm::RoundRobin,
        servers(&[("dead", dead), ("live", live.addr())]),
    );
    let signals = Arc::new(Signals::default());
    p.set_signal_sink(signals.clone());
    let (proxy, fe) = tcp_proxy(TcpFrontend::new("t", p)).await;
    for _ in 0..6 {
        assert_eq!(who(LO, proxy.addr).await.as_deref(), Some("live"));
    }
    assert!(signals.of("dead").contains(&Outcome::ConnectFailed));
    assert!(signals.of("live").iter().all(|o| !o.is_failure()));
    assert_eq!(L4Stats::get(&fe.stats.failed), 0);
}

#[tokio::test]
async fn every_server_refusing_closes_the_client() {
    let p = pool(
        Algorithm::RoundRobin,
        servers(&[("d1", dead_addr().await), ("d2", dead_addr().await)]),
    );
    let (proxy, fe) = tcp_proxy(TcpFrontend::new("t", p)).await;
    assert_eq!(who(LO, proxy.addr).await, None);
    assert_eq!(L4Stats::get(&fe.stats.failed), 1);
}

#[tokio::test]
async fn connect_timeout_fails_over() {
    let live = backend::tcp_echo().name("live").greet().spawn().await;
    let (hole, _fillers, _l) = blackhole().await;
    let p = pool(
        Algorithm::RoundRobin,
        servers(&[("hole", hole), ("live", live.addr())]),
    );
    let signals = Arc::new(Signals::default());
    p.set_signal_sink(signals.clone());
    let mut fe = TcpFrontend::new("t", p);
    fe.connect_timeout = Duration::from_millis(200);
    let (proxy, _fe) = tcp_proxy(fe).await;
    for _ in 0..2 {
        assert_eq!(who(LO, proxy.addr).await.as_deref(), Some("live"));
    }
    assert!(
        signals.of("hole").contains(&Outcome::ConnectTimeout),
        "{:?}",
        signals.0.lock().unwrap()
    );
}

#[tokio::test]
async fn idle_session_is_closed() {
    let b = backend::tcp_echo().name("a").greet().spawn().await;
    let mut fe = TcpFrontend::new(
        "t",
        pool(Algorithm::RoundRobin, servers(&[("a", b.addr())])),
    );
    fe.idle_timeout = Duration::from_millis(500);
    let (proxy, fe) = tcp_proxy(fe).await;
    let mut c = connect_from(LO, proxy.addr).await;
    assert_eq!(greeting(&mut c).await.as_deref(), Some("a"));
    // Silence from both sides: the proxy closes; the read ends (EOF) instead of hanging.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(GUARD, c.read_to_end(&mut rest))
        .await
        .unwrap();
    assert_eq!(
        n.expect("a clean close, not a reset"),
        0,
        "nothing after the greeting"
    );
    assert_eq!(L4Stats::get(&fe.stats.idle_closed), 1);
}

#[tokio::test]
async fn maxconn_queues_then_times_out_or_overflows() {
    let b = backend::tcp_echo().name("a").greet().spawn().await;
    let mut s = ServerConfig::new("a", b.addr());
    s.maxconn = Some(1);
    let mut pc = PoolConfig::new("p", Algorithm::RoundRobin, vec![s]);
    pc.queue_size = 1;
    let p = tenbin_proxy::pool::Pool::new(pc);
    // Two frontends on the one pool: a patient one, whose queued session must outlast any
    // stall before the slot is released, and one whose queue wait runs out.
    let mut patient = TcpFrontend::new("patient", p.clone());
    patient.queue_timeout = Some(GUARD * 2);
    let (patient, _patient_fe) = tcp_proxy(patient).await;
    let mut fe = TcpFrontend::new("t", p.clone());
    fe.queue_timeout = Some(Duration::from_millis(200));
    let (proxy, fe) = tcp_proxy(fe).await;

    // One session holds the only slot; the next waits in the queue and gets it on release.
    let mut first = connect_from(LO, patient.addr).await;
    assert_eq!(greeting(&mut first).await.as_deref(), Some("a"));
    let mut second = connect_from(LO, patient.addr).await;
    wait_until(|| p.queued() == 1).await;
    drop(first);
    assert_eq!(greeting(&mut second).await.as_deref(), Some("a"));

    // Slot taken, queue (size 1) taken: a third is refused at once, the queued one times out.
    let mut queued = connect_from(LO, proxy.addr).await;
    wait_until(|| p.queued() == 1).await;
    let mut overflow = connect_from(LO, proxy.addr).await;
    assert_eq!(greeting(&mut overflow).await, None);
    assert_eq!(greeting(&mut queued).await, None);
    assert_eq!(L4Stats::get(&fe.stats.failed), 2);
    // The holder was never disturbed.
    second.write_all(b"still here").await.unwrap();
    let mut buf = [0u8; 10];
    second.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still here");
}

async fn proxy_header_seen_by_backend(version: Version) {
    let b = backend::tcp_echo().name("a").spawn().await;
    let mut fe = TcpFrontend::new(
        "t",
        pool(Algorithm::RoundRobin, servers(&[("a", b.addr())])),
    );
    fe.proxy_protocol = Some(version);
    let (proxy, _fe) = tcp_proxy(fe).await;
    let mut c = connect_from([127, 0, 0, 9], proxy.addr).await;
    let client = c.local_addr().unwrap();
    c.write_all(b"hello").await.unwrap();
    c.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    tokio::time::timeout(GUARD, c.read_to_end(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    let want = Header::tcp(client, proxy.addr).encode(version);
    assert_eq!(
        &echoed[..want.len()],
        &want[..],
        "{:?}",
        String::from_utf8_lossy(&echoed)
    );
    assert_eq!(&echoed[want.len()..], b"hello");
    let (parsed, used) = Header::parse(&b.received()[0]).unwrap();
    assert_eq!(parsed, Header::tcp(client, proxy.addr));
    assert_eq!(&b.received()[0][used..], b"hello");
}

#[tokio::test]
async fn proxy_protocol_v1_reaches_the_server() {
    proxy_header_seen_by_backend(Version::V1).await;
}

#[tokio::test]
async fn proxy_protocol_v2_reaches_the_server() {
    proxy_header_seen_by_backend(Version::V2).await;
}

#[tokio::test]
async fn shutdown_stops_accepting_but_not_open_sessions() {
    let b = backend::tcp_echo().name("a").greet().spawn().await;
    let fe = TcpFrontend::new(
        "t",
        pool(Algorithm::RoundRobin, servers(&[("a", b.addr())])),
    );
    let (proxy, _fe) = tcp_proxy(fe).await;
    let addr = proxy.addr;
    let mut open = connect_from(LO, addr).await;
    assert_eq!(greeting(&mut open).await.as_deref(), Some("a"));
    proxy.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    open.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    tokio::time::timeout(GUARD, open.read_exact(&mut one))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&one, b"x");
}
