//! Every balancing algorithm's distribution, observed through the running proxy.

mod http_support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use http_support::*;
use tenbin_core::pick::Algorithm;
use tenbin_proxy::pool::{HashOn, Pool, PoolConfig, ServerConfig};

async fn three() -> Vec<Backend> {
    let mut v = Vec::new();
    for n in ["a", "b", "c"] {
        v.push(Backend::spawn(n).await);
    }
    v
}

fn weighted(algorithm: Algorithm, backends: &[Backend], weights: &[u32]) -> Pool {
    hashed(algorithm, backends, weights, HashOn::Source)
}

fn hashed(algorithm: Algorithm, backends: &[Backend], weights: &[u32], hash: HashOn) -> Pool {
    let servers = backends
        .iter()
        .zip(weights)
        .map(|(b, w)| {
            let mut s = ServerConfig::new(b.name.clone(), b.addr);
            s.weight = *w;
            s
        })
        .collect();
    let mut cfg = PoolConfig::new("app", algorithm, servers);
    cfg.hash_on = hash;
    Pool::with_seed(cfg, 11)
}

fn count(m: &HashMap<String, usize>, k: &str) -> usize {
    m.get(k).copied().unwrap_or(0)
}

#[tokio::test]
async fn round_robin_is_even() {
    let b = three().await;
    let p = weighted(Algorithm::RoundRobin, &b, &[1, 5, 9]);
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p])).await;
    let got = spread(&proxy.url("/"), 30).await;
    for n in ["a", "b", "c"] {
        assert_eq!(count(&got, n), 10, "{got:?}");
    }
}

#[tokio::test]
async fn weighted_round_robin_follows_weights() {
    let b = three().await;
    let p = weighted(Algorithm::WeightedRoundRobin, &b, &[1, 2, 3]);
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p])).await;
    let got = spread(&proxy.url("/"), 60).await;
    assert_eq!(
        (count(&got, "a"), count(&got, "b"), count(&got, "c")),
        (10, 20, 30)
    );
}

/// Holds one slow request on some server, then checks where quick requests go.
async fn busy_server_avoided(algorithm: Algorithm) -> (String, HashMap<String, usize>) {
    let b = three().await;
    let p = weighted(algorithm, &b, &[1, 1, 1]);
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p.clone()])).await;
    // Held until every quick request is answered, however long that takes.
    let slow = tokio::spawn(get_owned(proxy.url("/gate")));
    tokio::time::timeout(Duration::from_secs(10), async {
        while p.servers().iter().all(|(_, _, active)| *active == 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let busy = p
        .servers()
        .into_iter()
        .find(|(_, _, a)| *a == 1)
        .unwrap()
        .0
        .name;
    let got = spread(&proxy.url("/"), 20).await;
    b.iter().for_each(Backend::open_gate);
    assert_eq!(slow.await.unwrap(), busy);
    (busy, got)
}

#[tokio::test]
async fn least_conn_avoids_the_busy_server() {
    let (busy, got) = busy_server_avoided(Algorithm::LeastConn).await;
    assert_eq!(count(&got, &busy), 0, "{got:?}");
    assert_eq!(got.values().sum::<usize>(), 20);
    assert_eq!(got.len(), 2, "the two idle servers share: {got:?}");
}

#[tokio::test]
async fn least_request_prefers_idle_servers() {
    let (busy, got) = busy_server_avoided(Algorithm::LeastRequest { bias: 1.0 }).await;
    let idle: usize = got
        .iter()
        .filter(|(k, _)| **k != busy)
        .map(|(_, v)| v)
        .sum();
    assert!(count(&got, &busy) * 4 < idle, "{got:?}");
}

#[tokio::test]
async fn peak_ewma_prefers_the_fast_server() {
    let fast = Backend::spawn("fast").await;
    // Far slower than any stall of a loaded machine makes the fast one look.
    let slow = Backend::spawn_delayed("slow", Duration::from_millis(250)).await;
    let p = Pool::with_seed(
        PoolConfig::new(
            "app",
            Algorithm::PeakEwma {
                decay: Duration::from_secs(10),
            },
            vec![
                ServerConfig::new("fast", fast.addr),
                ServerConfig::new("slow", slow.addr),
            ],
        ),
        5,
    );
    let proxy = Proxy::spawn(frontend(&[], "app", vec![p])).await;
    let got = spread(&proxy.url("/"), 40).await;
    assert!(count(&got, "fast") > 3 * count(&got, "slow"), "{got:?}");
}

async fn hashed_front(algorithm: Algorithm, hash: HashOn, b: &[Backend]) -> Proxy {
    let p = hashed(algorithm, b, &[1, 1, 1], hash);
    Proxy::spawn(frontend(&[], "app", vec![p])).await
}

async fn get_as(url: &str, user: &str) -> String {
    let req = Request::get(url)
        .header("x-user", user)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    body
}

#[tokio::test]
async fn consistent_hashing_keeps_keys_on_one_server_and_spreads_keys() {
    for algorithm in [Algorithm::Maglev { table_size: 65_537 }, Algorithm::Ketama] {
        let b = three().await;
        let hash = HashOn::Header("x-user".into());
        let proxy = hashed_front(algorithm.clone(), hash, &b).await;
        let mut owners = HashMap::new();
        for u in 0..30 {
            let user = format!("user-{u}");
            let first = get_as(&proxy.url("/"), &user).await;
            for _ in 0..3 {
                assert_eq!(get_as(&proxy.url("/"), &user).await, first, "{algorithm:?}");
            }
            *owners.entry(first).or_insert(0) += 1;
        }
        assert_eq!(owners.len(), 3, "{algorithm:?} spreads keys: {owners:?}");
    }
}

#[tokio::test]
async fn source_hash_pins_a_client() {
    let b = three().await;
    let hash = HashOn::Source;
    let proxy = hashed_front(Algorithm::SourceHash, hash, &b).await;
    let got = spread(&proxy.url("/"), 20).await;
    assert_eq!(got.len(), 1, "one client address, one server: {got:?}");
}

async fn get_owned(url: String) -> String {
    get(&url).await.2
}
