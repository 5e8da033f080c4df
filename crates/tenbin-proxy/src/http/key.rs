//! The key consistent-hashing pools place a request by.

use std::net::SocketAddr;

use http::{HeaderName, Request};

// The same key L4 frontends use, so one client lands alike in both tiers.
use crate::pool::source_key;

/// What a hashing pool hashes (config `hash_on`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashOn {
    /// The client address masked to a prefix, so a client behind a proxy farm sticks
    /// (the pool's [`source_key`], shared with L4).
    Source {
        v4_prefix: u8,
        v6_prefix: u8,
    },
    Header(HeaderName),
    Cookie(String),
    Query(String),
}

impl HashOn {
    /// Parses the config spelling: "source", "header:NAME", "cookie:NAME", "query:NAME".
    pub fn parse(s: &str, v4_prefix: u8, v6_prefix: u8) -> Option<HashOn> {
        if s == "source" {
            return Some(HashOn::Source {
                v4_prefix,
                v6_prefix,
            });
        }
        let (kind, name) = s.split_once(':')?;
        match kind {
            "header" => HeaderName::from_bytes(name.as_bytes())
                .ok()
                .map(HashOn::Header),
            "cookie" if !name.is_empty() => Some(HashOn::Cookie(name.into())),
            "query" if !name.is_empty() => Some(HashOn::Query(name.into())),
            _ => None,
        }
    }

    /// The request's key, or `None` when it lacks what is hashed (the balancer then picks
    /// without a key).
    pub fn key<B>(&self, req: &Request<B>, client: SocketAddr) -> Option<u64> {
        match self {
            HashOn::Source {
                v4_prefix,
                v6_prefix,
            } => Some(source_key(client.ip(), *v4_prefix, *v6_prefix)),
            HashOn::Header(name) => req.headers().get(name).map(|v| fnv1a(v.as_bytes())),
            HashOn::Cookie(name) => req
                .headers()
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    (k == name).then(|| fnv1a(v.as_bytes()))
                }),
            HashOn::Query(name) => req.uri().query().and_then(|q| {
                q.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k == name).then(|| fnv1a(v.as_bytes()))
                })
            }),
        }
    }
}

/// FNV-1a 64: stable across builds and processes, so every proxy instance agrees.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, cookie: &str) -> Request<()> {
        Request::builder()
            .uri(uri)
            .header("cookie", cookie)
            .header("x-user", "alice")
            .body(())
            .unwrap()
    }

    #[test]
    fn source_prefix_groups_neighbours() {
        let h = HashOn::parse("source", 24, 64).unwrap();
        let r = req("/", "");
        let a = h.key(&r, "192.0.2.1:1".parse().unwrap());
        let b = h.key(&r, "192.0.2.200:2".parse().unwrap());
        let c = h.key(&r, "192.0.3.1:1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        // An IPv4-mapped IPv6 client hashes as its IPv4 address.
        assert_eq!(h.key(&r, "[::ffff:192.0.2.9]:1".parse().unwrap()), a);
    }

    #[test]
    fn cookie_header_and_query_keys() {
        let client = "127.0.0.1:1".parse().unwrap();
        let r = req("/?a=1&sid=xyz", "theme=dark; SID=abc");
        let cookie = HashOn::parse("cookie:SID", 32, 128).unwrap();
        assert_eq!(cookie.key(&r, client), Some(fnv1a(b"abc")));
        let q = HashOn::parse("query:sid", 32, 128).unwrap();
        assert_eq!(q.key(&r, client), Some(fnv1a(b"xyz")));
        let hdr = HashOn::parse("header:X-User", 32, 128).unwrap();
        assert_eq!(hdr.key(&r, client), Some(fnv1a(b"alice")));
        let missing = HashOn::parse("cookie:none", 32, 128).unwrap();
        assert_eq!(missing.key(&r, client), None);
        assert!(HashOn::parse("bogus", 32, 128).is_none());
        assert!(HashOn::parse("cookie:", 32, 128).is_none());
    }
}
