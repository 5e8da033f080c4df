//! `[[pool]]` checks: servers unique by name and address, weights and limits in range, an
//! algorithm that suits `hash_on`, a prime Maglev table, and sane health checks.

use std::collections::HashSet;

use tenbin_core::Weight;

use super::invalid::{check_regex, invalid, Invalid};
use crate::pool::{AlgorithmName, HealthCheck, Pool};

pub(crate) fn pool(pool: &Pool, i: usize) -> Result<(), Invalid> {
    let key = |k: &str| format!("pool[{i}].{k}");
    if pool.server.is_empty() {
        return Err(Invalid::at(
            key("server"),
            "a pool needs at least one [[pool.server]]",
        ));
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    for (s, server) in pool.server.iter().enumerate() {
        let sk = |k: &str| key(&format!("server[{s}].{k}"));
        if !names.insert(server.name.get_ref()) {
            return Err(invalid(
                &server.name,
                sk("name"),
                format!("duplicate server name `{}` in pool", server.name.get_ref()),
            ));
        }
        if !addrs.insert(server.address.get_ref()) {
            return Err(invalid(
                &server.address,
                sk("address"),
                format!(
                    "server address {} appears twice in this pool",
                    server.address.get_ref()
                ),
            ));
        }
        if Weight::new(*server.weight.get_ref()).is_none() {
            return Err(invalid(
                &server.weight,
                sk("weight"),
                format!("weight must be within 0..={}", Weight::MAX),
            ));
        }
        if let Some(m) = &server.maxconn {
            if *m.get_ref() == 0 {
                return Err(invalid(
                    m,
                    sk("maxconn"),
                    "maxconn must be at least 1 (omit it for no limit)",
                ));
            }
        }
    }
    if pool.server.iter().all(|s| *s.weight.get_ref() == 0) {
        return Err(invalid(
            &pool.server[0].weight,
            key("server"),
            "every server has weight 0: no server could receive traffic",
        ));
    }
    if *pool.source_prefix_v4.get_ref() > 32 {
        return Err(invalid(
            &pool.source_prefix_v4,
            key("source_prefix_v4"),
            "must be within 0..=32",
        ));
    }
    if *pool.source_prefix_v6.get_ref() > 128 {
        return Err(invalid(
            &pool.source_prefix_v6,
            key("source_prefix_v6"),
            "must be within 0..=128",
        ));
    }
    let m = *pool.maglev_table_size.get_ref();
    if !is_prime(m) || (m as usize) < pool.server.len() * 10 {
        return Err(invalid(
            &pool.maglev_table_size,
            key("maglev_table_size"),
            "must be a prime at least 10x the number of servers (e.g. 65537)",
        ));
    }
    if let Some(h) = &pool.hash_on {
        if !pool.algorithm.is_hashing() {
            return Err(invalid(
                h,
                key("hash_on"),
                "hash_on needs a hashing algorithm: source-hash, maglev or ketama",
            ));
        }
        let v = h.get_ref();
        let ok = v == "source"
            || ["header:", "cookie:", "query:"]
                .iter()
                .any(|p| v.strip_prefix(p).is_some_and(|n| !n.is_empty()));
        if !ok {
            return Err(invalid(
                h,
                key("hash_on"),
                format!(
                    "`{v}` is not accepted; use source, header:NAME, cookie:NAME or query:NAME"
                ),
            ));
        }
    }
    if pool.algorithm == AlgorithmName::LeastRequest
        && !(0.0..=4.0).contains(&pool.least_request_bias)
    {
        return Err(Invalid::at(
            key("least_request_bias"),
            "must be within 0.0..=4.0",
        ));
    }
    super::persist::persistence(pool, i)?;
    super::tls::pool(pool, i)?;
    if let Some(hc) = &pool.health {
        health(hc, &key("health"))?;
    }
    Ok(())
}

/// The bounds every active check has, wherever it is written (`key` is its table's path).
pub(crate) fn health(hc: &HealthCheck, key: &str) -> Result<(), Invalid> {
    let key = |k: &str| format!("{key}.{k}");
    if *hc.rise.get_ref() == 0 {
        return Err(invalid(&hc.rise, key("rise"), "must be at least 1"));
    }
    if *hc.fall.get_ref() == 0 {
        return Err(invalid(&hc.fall, key("fall"), "must be at least 1"));
    }
    if !(0.0..=0.5).contains(hc.jitter.get_ref()) {
        return Err(invalid(
            &hc.jitter,
            key("jitter"),
            "must be within 0.0..=0.5",
        ));
    }
    if hc.interval.is_zero() {
        return Err(Invalid::at(key("interval"), "must be more than 0s"));
    }
    if hc.timeout.is_zero() {
        return Err(Invalid::at(key("timeout"), "must be more than 0s"));
    }
    if let Some(re) = &hc.expect_regex {
        check_regex(re, key("expect_regex"))?;
    }
    Ok(())
}

fn is_prime(n: u32) -> bool {
    let n = u64::from(n);
    n >= 2 && (2..).take_while(|d: &u64| d * d <= n).all(|d| n % d != 0)
}
