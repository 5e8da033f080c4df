//! TLS passthrough on loopback: routing by SNI to pools without decrypting, and TLS 1.2
//! session-id stickiness (resumed sessions land on the server that holds them).

mod tls_common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use tenbin_core::pick::Algorithm;
use tenbin_core::ServerState;
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tenbin_proxy::tls::passthrough::{Passthrough, Route};
use tls_common::{passthrough_front, tls_backend, tls_exchange, Ca};

const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// `n` TLS 1.2 backends named `<prefix>0..` presenting one certificate for `names`, each with
/// its own session cache (a session resumes only on the server that made it).
async fn backends(ca: &Ca, prefix: &str, n: usize, names: &[&str]) -> Vec<(String, SocketAddr)> {
    let leaf = ca.leaf(names);
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}{i}");
        let (addr, _task) = tls_backend(&name, leaf.server_config(TLS12)).await;
        out.push((name, addr));
    }
    out
}

fn pool(name: &str, servers: &[(String, SocketAddr)]) -> Pool {
    Pool::new(PoolConfig::new(
        name,
        Algorithm::RoundRobin,
        servers
            .iter()
            .map(|(n, a)| ServerConfig::new(n.clone(), *a))
            .collect(),
    ))
}

#[tokio::test]
async fn routes_by_sni_without_decrypting() {
    let ca = Ca::new("test ca");
    let shop = backends(&ca, "shop", 2, &["shop.test"]).await;
    let api = backends(&ca, "api", 1, &["*.api.test"]).await;
    let other = backends(&ca, "default", 1, &["fallback.test"]).await;
    let pass = Passthrough::new(
        vec![
            Route::new("shop.test", pool("shop", &shop)),
            Route::new("*.api.test", pool("api", &api)),
        ],
        Some(Route::new("", pool("default", &other))),
    );
    let (addr, _stop) = passthrough_front(pass).await;
    let client = ca.client(&[]);
    let mut seen = HashSet::new();
    for _ in 0..6 {
        let s = tls_exchange(client.clone(), addr, "shop.test", b"")
            .await
            .unwrap();
        assert!(s.line.starts_with("shop"), "{}", s.line);
        seen.insert(s.line);
    }
    assert_eq!(seen.len(), 2, "round robin inside the shop pool: {seen:?}");
    let s = tls_exchange(client.clone(), addr, "eu.API.test", b"")
        .await
        .unwrap();
    assert_eq!(s.line, "api0");
    let s = tls_exchange(client.clone(), addr, "fallback.test", b"")
        .await
        .unwrap();
    assert_eq!(s.line, "default0", "unrouted names go to the default route");
}

#[tokio::test]
async fn tls12_sessions_stick_by_session_id() {
    let ca = Ca::new("test ca");
    let shop = backends(&ca, "shop", 3, &["shop.test"]).await;
    let sticky_pool = pool("shop", &shop);
    let pass = Passthrough::new(
        vec![Route::new("shop.test", sticky_pool.clone()).sticky(1000, Duration::from_secs(300))],
        None,
    );
    let (addr, _stop) = passthrough_front(pass).await;

    // Several clients, each with its own session cache: each resumes on its first server.
    let mut homes = HashSet::new();
    for _client in 0..3 {
        let cfg = ca.client_with(&[], TLS12);
        let first = tls_exchange(cfg.clone(), addr, "shop.test", b"")
            .await
            .unwrap();
        assert!(!first.resumed);
        assert_eq!(first.version, Some(rustls::ProtocolVersion::TLSv1_2));
        for i in 0..8 {
            let again = tls_exchange(cfg.clone(), addr, "shop.test", b"")
                .await
                .unwrap();
            assert_eq!(again.line, first.line, "connection {i} moved");
            assert!(again.resumed, "connection {i} was not resumed");
        }
        homes.insert(first.line);
    }
    assert!(
        homes.len() > 1,
        "new sessions are still balanced: {homes:?}"
    );

    // The server of a session goes draining: the session stays; down: it moves (redispatch).
    let cfg = ca.client_with(&[], TLS12);
    let first = tls_exchange(cfg.clone(), addr, "shop.test", b"")
        .await
        .unwrap();
    let id = sticky_pool.id_of(&first.line).unwrap();
    sticky_pool.apply_health(id, ServerState::Draining, 100);
    let kept = tls_exchange(cfg.clone(), addr, "shop.test", b"")
        .await
        .unwrap();
    assert_eq!(
        (kept.line.as_str(), kept.resumed),
        (first.line.as_str(), true)
    );
    let fresh = tls_exchange(ca.client_with(&[], TLS12), addr, "shop.test", b"")
        .await
        .unwrap();
    assert_ne!(
        fresh.line, first.line,
        "a draining server takes no new sessions"
    );
    sticky_pool.apply_health(id, ServerState::Down, 100);
    let moved = tls_exchange(cfg.clone(), addr, "shop.test", b"")
        .await
        .unwrap();
    assert_ne!(moved.line, first.line);
    assert!(!moved.resumed, "another server cannot resume the session");
}

#[tokio::test]
async fn without_stickiness_resumption_is_lost_to_round_robin() {
    let ca = Ca::new("test ca");
    let shop = backends(&ca, "shop", 2, &["shop.test"]).await;
    let pass = Passthrough::new(vec![Route::new("shop.test", pool("shop", &shop))], None);
    let (addr, _stop) = passthrough_front(pass).await;
    let cfg = ca.client_with(&[], TLS12);
    let mut lines = HashSet::new();
    for _ in 0..4 {
        lines.insert(
            tls_exchange(cfg.clone(), addr, "shop.test", b"")
                .await
                .unwrap()
                .line,
        );
    }
    assert_eq!(
        lines.len(),
        2,
        "the control case: sessions do move without stickiness"
    );
}

#[tokio::test]
async fn not_tls_or_unrouted_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = Ca::new("test ca");
    let shop = backends(&ca, "shop", 1, &["shop.test"]).await;
    let pass = Passthrough::new(vec![Route::new("shop.test", pool("shop", &shop))], None);
    let (addr, _stop) = passthrough_front(pass).await;
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(plain.read_to_end(&mut buf).await.unwrap(), 0);
    assert!(tls_exchange(ca.client(&[]), addr, "other.test", b"")
        .await
        .is_err());
}
