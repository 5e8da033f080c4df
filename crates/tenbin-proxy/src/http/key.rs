//! The key a hashing pool places an HTTP request by, from the pool's own `hash_on`.

use std::net::SocketAddr;

use http::Request;
use tenbin_core::maglev::key_hash;

use crate::pool::{HashOn, Pool};

/// The request's key for `pool`: `None` when the pool does not hash, or the request lacks
/// what it hashes (the balancer then picks without a key). Source hashing uses the pool's
/// source key, the same as L4 frontends, so one client lands alike in both tiers.
pub fn request_key<B>(pool: &Pool, req: &Request<B>, client: SocketAddr) -> Option<u64> {
    if !pool.is_hashing() {
        return None;
    }
    pool.with_hash_on(|h| key_of(h, req, client, |ip| pool.source_key(ip)))
}

fn key_of<B>(
    hash_on: &HashOn,
    req: &Request<B>,
    client: SocketAddr,
    source: impl Fn(std::net::IpAddr) -> u64,
) -> Option<u64> {
    match hash_on {
        HashOn::Source => Some(source(client.ip())),
        HashOn::Header(name) => req.headers().get(name).map(|v| key_hash(v.as_bytes())),
        HashOn::Cookie(name) => req
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == name).then(|| key_hash(v.as_bytes()))
            }),
        HashOn::Query(name) => req.uri().query().and_then(|q| {
            q.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then(|| key_hash(v.as_bytes()))
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use tenbin_core::pick::Algorithm;

    use super::*;
    use crate::pool::{PoolConfig, ServerConfig};

    fn req(uri: &str, cookie: &str) -> Request<()> {
        Request::builder()
            .uri(uri)
            .header("cookie", cookie)
            .header("x-user", "alice")
            .body(())
            .unwrap()
    }

    fn pool(algorithm: Algorithm, hash_on: HashOn) -> Pool {
        let mut cfg = PoolConfig::new(
            "p",
            algorithm,
            vec![ServerConfig::new("a", "127.0.0.1:1".parse().unwrap())],
        );
        cfg.hash_on = hash_on;
        cfg.source_prefix_v4 = 24;
        Pool::new(cfg)
    }

    #[test]
    fn cookie_header_and_query_keys() {
        let client = "127.0.0.1:1".parse().unwrap();
        let r = req("/?a=1&sid=xyz", "theme=dark; SID=abc");
        let m = Algorithm::Maglev { table_size: 251 };
        let k = |h| request_key(&pool(m.clone(), h), &r, client);
        assert_eq!(k(HashOn::Cookie("SID".into())), Some(key_hash(b"abc")));
        assert_eq!(k(HashOn::Query("sid".into())), Some(key_hash(b"xyz")));
        assert_eq!(k(HashOn::Header("X-User".into())), Some(key_hash(b"alice")));
        assert_eq!(k(HashOn::Cookie("none".into())), None);
    }

    #[test]
    fn source_key_uses_the_pool_prefix_and_non_hashing_pools_get_none() {
        let r = req("/", "");
        let p = pool(Algorithm::SourceHash, HashOn::Source);
        let a = request_key(&p, &r, "192.0.2.1:1".parse().unwrap());
        let b = request_key(&p, &r, "192.0.2.200:2".parse().unwrap());
        let c = request_key(&p, &r, "192.0.3.1:1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let rr = pool(Algorithm::RoundRobin, HashOn::Header("x-user".into()));
        assert_eq!(request_key(&rr, &r, "192.0.2.1:1".parse().unwrap()), None);
    }
}
