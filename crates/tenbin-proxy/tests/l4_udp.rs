//! `mode udp` through a running proxy on loopback: per-client sessions, replies relayed from
//! the listening address, session expiry, and refused servers.

mod l4_common;

use std::net::SocketAddr;
use std::time::Duration;

use l4_common::*;
use tenbin_core::pick::Algorithm;
use tenbin_proxy::l4::{L4Stats, UdpFrontend};
use tenbin_testkit::backend;
use tenbin_testkit::tally::Tally;
use tokio::net::UdpSocket;

async fn client(ip: [u8; 4]) -> UdpSocket {
    UdpSocket::bind(SocketAddr::from((ip, 0))).await.unwrap()
}

/// Sends `msg` to the proxy and returns the reply and the address it came from.
async fn ask(c: &UdpSocket, proxy: SocketAddr, msg: &str) -> (String, SocketAddr) {
    c.send_to(msg.as_bytes(), proxy).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(GUARD, c.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
}

#[tokio::test]
async fn each_client_keeps_its_session_and_replies_come_from_the_proxy() {
    let a = backend::udp_echo().name("a").spawn().await;
    let b = backend::udp_echo().name("b").spawn().await;
    let p = pool(
        Algorithm::RoundRobin,
        servers(&[("a", a.addr()), ("b", b.addr())]),
    );
    let (proxy, fe) = udp_proxy(UdpFrontend::new("u", p)).await;
    let mut tally = Tally::new();
    for i in 0..6u8 {
        let c = client([127, 0, 0, 10 + i]).await;
        let (first, from) = ask(&c, proxy.addr, "hi").await;
        assert_eq!(
            from, proxy.addr,
            "reply must come from the address the client used"
        );
        let (server, payload) = first.split_once(':').unwrap();
        assert_eq!(payload, "hi");
        // Later datagrams of the same client follow its session.
        for _ in 0..3 {
            let (again, _) = ask(&c, proxy.addr, "more").await;
            assert_eq!(again, format!("{server}:more"));
        }
        tally.add(server);
    }
    // Round robin over sessions, not datagrams.
    assert_eq!((tally.count("a"), tally.count("b")), (3, 3));
    assert_eq!(L4Stats::get(&fe.stats.accepted), 6);
    // One upstream socket per session: each backend saw three distinct peers.
    assert_eq!(a.peers().len(), 3);
    assert_eq!(b.peers().len(), 3);
    assert_eq!(a.datagrams() + b.datagrams(), 24);
}

#[tokio::test]
async fn idle_sessions_expire_and_a_new_one_opens() {
    let a = backend::udp_echo().name("a").spawn().await;
    let mut fe = UdpFrontend::new(
        "u",
        pool(Algorithm::RoundRobin, servers(&[("a", a.addr())])),
    );
    fe.idle_timeout = Duration::from_secs(1);
    let (proxy, fe) = udp_proxy(fe).await;
    let c = client([127, 0, 0, 1]).await;
    assert_eq!(ask(&c, proxy.addr, "1").await.0, "a:1");
    // Counted, not sampled: the session may already have expired on a stalled machine.
    assert_eq!(L4Stats::get(&fe.stats.accepted), 1);
    wait_until(|| L4Stats::get(&fe.stats.active) == 0).await;
    assert_eq!(L4Stats::get(&fe.stats.idle_closed), 1);
    assert_eq!(
        fe.pool.servers()[0].2,
        0,
        "the expired session released its lease"
    );
    assert_eq!(ask(&c, proxy.addr, "2").await.0, "a:2");
    assert_eq!(L4Stats::get(&fe.stats.accepted), 2);
    assert_eq!(
        a.peers().len(),
        2,
        "a fresh upstream socket for the new session"
    );
}

#[tokio::test]
async fn refusing_server_ends_the_session_and_is_reported() {
    let live = backend::udp_echo().name("live").spawn().await;
    // A UDP port with nobody on it answers with ICMP port unreachable.
    let dead = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let p = pool(
        Algorithm::RoundRobin,
        servers(&[("dead", dead), ("live", live.addr())]),
    );
    let signals = std::sync::Arc::new(Signals::default());
    p.set_signal_sink(signals.clone());
    let (proxy, fe) = udp_proxy(UdpFrontend::new("u", p)).await;
    let c = client([127, 0, 0, 1]).await;
    c.send_to(b"x", proxy.addr).await.unwrap();
    wait_until(|| !signals.of("dead").is_empty()).await;
    wait_until(|| L4Stats::get(&fe.stats.active) == 0).await;
    // The next datagram opens a new session, on the next server.
    assert_eq!(ask(&c, proxy.addr, "y").await.0, "live:y");
}

#[tokio::test]
async fn the_session_table_is_bounded() {
    let a = backend::udp_echo().name("a").spawn().await;
    let mut fe = UdpFrontend::new(
        "u",
        pool(Algorithm::RoundRobin, servers(&[("a", a.addr())])),
    );
    fe.max_sessions = 2;
    let (proxy, fe) = udp_proxy(fe).await;
    let c1 = client([127, 0, 0, 1]).await;
    let c2 = client([127, 0, 0, 2]).await;
    let c3 = client([127, 0, 0, 3]).await;
    assert_eq!(ask(&c1, proxy.addr, "1").await.0, "a:1");
    assert_eq!(ask(&c2, proxy.addr, "2").await.0, "a:2");
    c3.send_to(b"3", proxy.addr).await.unwrap();
    wait_until(|| L4Stats::get(&fe.stats.failed) == 1).await;
    assert_eq!(L4Stats::get(&fe.stats.accepted), 2);
    // Existing sessions are unaffected.
    assert_eq!(ask(&c1, proxy.addr, "again").await.0, "a:again");
    assert_eq!(a.datagrams(), 3);
}
