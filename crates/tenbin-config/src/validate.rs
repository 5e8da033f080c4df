//! Semantic checks the schema cannot express: references, uniqueness, ranges, regexes.

use std::collections::HashSet;
use std::ops::Range;

use serde_spanned::Spanned;
use tenbin_core::Weight;

use crate::frontend::{Frontend, Mode};
use crate::pool::{AlgorithmName, Pool};
use crate::Config;

/// A semantic error before it is placed in the file.
pub(crate) struct Invalid {
    pub span: Option<Range<usize>>,
    pub key: String,
    pub message: String,
}

pub(crate) fn invalid<T>(at: &Spanned<T>, key: String, message: impl Into<String>) -> Invalid {
    let span = at.span();
    Invalid {
        span: (span != (0..0)).then_some(span),
        key,
        message: message.into(),
    }
}

pub(crate) fn validate(config: &Config) -> Result<(), Invalid> {
    let mut pool_names = HashSet::new();
    for (i, pool) in config.pool.iter().enumerate() {
        if !pool_names.insert(pool.name.get_ref().as_str()) {
            return Err(invalid(
                &pool.name,
                format!("pool[{i}].name"),
                format!("duplicate pool name `{}`", pool.name.get_ref()),
            ));
        }
        validate_pool(pool, i)?;
    }
    if let Some(admin) = &config.admin {
        crate::admin::validate(admin)?;
    }
    if let Some(dns) = &config.dns {
        dns.validate().map_err(|e| Invalid {
            span: None,
            key: "dns".into(),
            message: e.to_string(),
        })?;
    }
    if let Some(mux) = &config.mux {
        mux.validate().map_err(|e| Invalid {
            span: None,
            key: "mux".into(),
            message: e.to_string(),
        })?;
    }
    if let Some(agent) = &config.agent {
        agent.validate().map_err(|e| Invalid {
            span: None,
            key: "agent".into(),
            message: e.to_string(),
        })?;
    }
    let mut frontend_names = HashSet::new();
    for (i, fe) in config.frontend.iter().enumerate() {
        if !frontend_names.insert(fe.name.get_ref().as_str()) {
            return Err(invalid(
                &fe.name,
                format!("frontend[{i}].name"),
                format!("duplicate frontend name `{}`", fe.name.get_ref()),
            ));
        }
        validate_frontend(fe, i, &pool_names)?;
    }
    Ok(())
}

fn validate_frontend(fe: &Frontend, i: usize, pools: &HashSet<&str>) -> Result<(), Invalid> {
    let key = |k: &str| format!("frontend[{i}].{k}");
    if fe.bind.is_empty() {
        return Err(invalid(&fe.name, key("bind"), "needs at least one address"));
    }
    let known = |name: &Spanned<String>, k: String| -> Result<(), Invalid> {
        if pools.contains(name.get_ref().as_str()) {
            return Ok(());
        }
        let mut defined: Vec<_> = pools.iter().copied().collect();
        defined.sort_unstable();
        Err(invalid(
            name,
            k,
            format!(
                "undefined pool `{}`; defined pools: {}",
                name.get_ref(),
                defined.join(", ")
            ),
        ))
    };
    match &fe.default_pool {
        Some(p) => known(p, key("default_pool"))?,
        None if fe.rule.is_empty() && fe.sni_route.is_empty() => {
            return Err(invalid(
                &fe.name,
                key("default_pool"),
                "missing: a frontend without rules or sni_route needs a default_pool",
            ));
        }
        None => {}
    }
    if fe.mode != Mode::Http && !fe.rule.is_empty() {
        return Err(invalid(
            &fe.rule[0].pool,
            key("rule"),
            "content-switching rules need mode = \"http\"",
        ));
    }
    if fe.proxy_protocol.is_some() && fe.mode != Mode::Tcp {
        return Err(invalid(
            &fe.name,
            key("proxy_protocol"),
            "PROXY protocol is sent only in mode = \"tcp\"",
        ));
    }
    crate::tls::validate_frontend(fe, i, pools)?;
    for (r, rule) in fe.rule.iter().enumerate() {
        let rk = |k: &str| key(&format!("rule[{r}].{k}"));
        known(&rule.pool, rk("pool"))?;
        let has_condition = rule.host.is_some()
            || rule.path_prefix.is_some()
            || rule.path_exact.is_some()
            || rule.path_regex.is_some()
            || rule.method.is_some()
            || rule.header.is_some()
            || rule.query.is_some()
            || rule.extension.is_some();
        if !has_condition {
            return Err(invalid(
                &rule.pool,
                rk("pool"),
                "a rule needs at least one condition: host, path_prefix, path_exact, path_regex, method, header, query or extension (use default_pool for everything else)",
            ));
        }
        if let Some(re) = &rule.path_regex {
            check_regex(re, rk("path_regex"))?;
        }
        if let Some(h) = &rule.header {
            match (&h.value, &h.regex) {
                (Some(_), Some(re)) => {
                    return Err(invalid(
                        re,
                        rk("header"),
                        "give either value or regex, not both",
                    ))
                }
                (None, Some(re)) => check_regex(re, rk("header.regex"))?,
                _ => {}
            }
        }
    }
    Ok(())
}

fn validate_pool(pool: &Pool, i: usize) -> Result<(), Invalid> {
    let key = |k: &str| format!("pool[{i}].{k}");
    if pool.server.is_empty() {
        return Err(invalid(
            &pool.name,
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
        return Err(invalid(
            &pool.name,
            key("least_request_bias"),
            "must be within 0.0..=4.0",
        ));
    }
    crate::persist::validate(pool, i)?;
    crate::tls::validate_pool(pool, i)?;
    if let Some(hc) = &pool.health {
        if *hc.rise.get_ref() == 0 {
            return Err(invalid(&hc.rise, key("health.rise"), "must be at least 1"));
        }
        if *hc.fall.get_ref() == 0 {
            return Err(invalid(&hc.fall, key("health.fall"), "must be at least 1"));
        }
        if !(0.0..=0.5).contains(hc.jitter.get_ref()) {
            return Err(invalid(
                &hc.jitter,
                key("health.jitter"),
                "must be within 0.0..=0.5",
            ));
        }
        if let Some(re) = &hc.expect_regex {
            check_regex(re, key("health.expect_regex"))?;
        }
    }
    Ok(())
}

fn check_regex(re: &Spanned<String>, key: String) -> Result<(), Invalid> {
    regex::Regex::new(re.get_ref())
        .map(|_| ())
        .map_err(|e| invalid(re, key, format!("invalid regex: {e}")))
}

fn is_prime(n: u32) -> bool {
    let n = u64::from(n);
    n >= 2 && (2..).take_while(|d: &u64| d * d <= n).all(|d| n % d != 0)
}
