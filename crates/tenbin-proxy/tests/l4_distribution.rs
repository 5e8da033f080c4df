//! Every algorithm's distribution through a running `mode tcp` proxy on loopback.
//!
//! Each backend greets with its name, so one connection tells which server the pool picked.
//! Clients connect from distinct 127/8 addresses where the source matters (hashing).

mod l4_common;

use l4_common::*;
use tenbin_core::pick::Algorithm;
use tenbin_core::ServerState;
use tenbin_proxy::l4::TcpFrontend;
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tenbin_testkit::backend::{self, TcpBackend};
use tenbin_testkit::tally::Tally;
use tokio::net::TcpStream;

const LO: [u8; 4] = [127, 0, 0, 1];

struct Rig {
    _backends: Vec<TcpBackend>,
    pool: Pool,
    proxy: Proxy,
}

/// Three greeting backends a, b, c with the given weights (and groups), behind a proxy.
async fn rig(algorithm: Algorithm, weights: [u32; 3], groups: [u8; 3]) -> Rig {
    let mut backends = Vec::new();
    let mut configs = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let b = backend::tcp_echo().name(name).greet().spawn().await;
        let mut s = ServerConfig::new(name, b.addr());
        s.weight = weights[i];
        s.group = groups[i];
        configs.push(s);
        backends.push(b);
    }
    let pool = Pool::with_seed(PoolConfig::new("p", algorithm, configs), 7);
    let (proxy, _fe) = tcp_proxy(TcpFrontend::new("t", pool.clone())).await;
    Rig {
        _backends: backends,
        pool,
        proxy,
    }
}

/// `n` connections one after another, each closed before the next.
async fn sequential(r: &Rig, n: usize, from: [u8; 4]) -> Tally {
    let mut t = Tally::new();
    for _ in 0..n {
        t.add(who(from, r.proxy.addr).await.expect("a backend answered"));
    }
    t
}

/// `n` connections held open together; returns the tally and the open streams.
async fn held(r: &Rig, n: usize) -> (Tally, Vec<TcpStream>) {
    let mut t = Tally::new();
    let mut open = Vec::new();
    for _ in 0..n {
        let mut s = connect_from(LO, r.proxy.addr).await;
        t.add(greeting(&mut s).await.expect("a backend answered"));
        open.push(s);
    }
    (t, open)
}

#[tokio::test]
async fn roundrobin_rotates_evenly() {
    let r = rig(Algorithm::RoundRobin, [1, 5, 1], [0; 3]).await;
    let t = sequential(&r, 30, LO).await;
    assert_eq!(t.spread(&["a", "b", "c"]), 0, "{t}");
}

#[tokio::test]
async fn weighted_roundrobin_follows_weights() {
    let r = rig(Algorithm::WeightedRoundRobin, [1, 2, 3], [0; 3]).await;
    let t = sequential(&r, 60, LO).await;
    assert_eq!(
        (t.count("a"), t.count("b"), t.count("c")),
        (10, 20, 30),
        "{t}"
    );
}

#[tokio::test]
async fn leastconn_balances_open_sessions() {
    let r = rig(Algorithm::LeastConn, [1, 1, 1], [0; 3]).await;
    let (t, _open) = held(&r, 9).await;
    assert_eq!((t.count("a"), t.count("b"), t.count("c")), (3, 3, 3), "{t}");
    // The pool's active counts are what the algorithm saw.
    assert!(r.pool.servers().iter().all(|(_, _, active)| *active == 3));
}

#[tokio::test]
async fn leastconn_weights_open_sessions() {
    let r = rig(Algorithm::LeastConn, [1, 1, 2], [0; 3]).await;
    let (t, _open) = held(&r, 12).await;
    assert_eq!((t.count("a"), t.count("b"), t.count("c")), (3, 3, 6), "{t}");
}

#[tokio::test]
async fn least_request_keeps_open_sessions_close() {
    let r = rig(Algorithm::LeastRequest { bias: 1.0 }, [1, 1, 1], [0; 3]).await;
    let (t, _open) = held(&r, 30).await;
    assert_eq!(t.distinct(), 3, "{t}");
    assert!(t.spread(&["a", "b", "c"]) <= 4, "{t}");
}

#[tokio::test]
async fn peak_ewma_serves_from_the_pool() {
    let r = rig(
        Algorithm::PeakEwma {
            decay: std::time::Duration::from_secs(10),
        },
        [1, 1, 1],
        [0; 3],
    )
    .await;
    let (t, _open) = held(&r, 30).await;
    // Open sessions raise a server's cost, so load spreads beyond one server.
    assert!(t.distinct() >= 2, "{t}");
    assert_eq!(t.total(), 30);
}

async fn hashing_is_sticky_per_source(algorithm: Algorithm) {
    let r = rig(algorithm, [1, 1, 1], [0; 3]).await;
    let mut overall = Tally::new();
    let mut placed = Vec::new();
    for last in 1..=24u8 {
        let ip = [127, 0, 1, last];
        let t = sequential(&r, 3, ip).await;
        assert_eq!(t.distinct(), 1, "one source, one server: {t}");
        let server = t.counts().keys().next().unwrap().clone();
        overall.add(server.clone());
        placed.push((ip, server));
    }
    assert!(
        overall.distinct() >= 2,
        "24 sources all on one server: {overall}"
    );
    // Taking a server down moves only its own clients; everyone else stays put.
    let (gone, _, _) = r.pool.servers()[0].clone();
    r.pool.apply_health(gone.id, ServerState::Down, 100);
    for (ip, before) in placed {
        let now = who(ip, r.proxy.addr).await.unwrap();
        assert_ne!(now, gone.name);
        if before != gone.name {
            assert_eq!(
                now, before,
                "client {ip:?} moved although its server stayed up"
            );
        }
    }
}

#[tokio::test]
async fn source_hash_is_sticky_per_source() {
    hashing_is_sticky_per_source(Algorithm::SourceHash).await;
}

#[tokio::test]
async fn maglev_is_sticky_per_source() {
    hashing_is_sticky_per_source(Algorithm::Maglev { table_size: 65537 }).await;
}

#[tokio::test]
async fn ketama_is_sticky_per_source() {
    hashing_is_sticky_per_source(Algorithm::Ketama).await;
}

#[tokio::test]
async fn backup_group_takes_over_only_when_the_first_is_gone() {
    let r = rig(Algorithm::RoundRobin, [1, 1, 1], [0, 0, 1]).await;
    let t = sequential(&r, 10, LO).await;
    assert_eq!(t.count("c"), 0, "{t}");
    for (s, _, _) in r.pool.servers() {
        if s.name != "c" {
            r.pool.apply_health(s.id, ServerState::Down, 100);
        }
    }
    let t = sequential(&r, 4, LO).await;
    assert_eq!(t.count("c"), 4, "{t}");
}
