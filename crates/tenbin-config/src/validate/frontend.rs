//! `[[frontend]]` checks: a default pool or rules, pools that exist, rules that can match,
//! regexes that compile, and options that belong to the frontend's mode.

use std::collections::HashSet;

use serde_spanned::Spanned;

use super::invalid::{check_regex, invalid, Invalid};
use crate::frontend::{Frontend, Mode};

pub(crate) fn frontend(fe: &Frontend, i: usize, pools: &HashSet<&str>) -> Result<(), Invalid> {
    let key = |k: &str| format!("frontend[{i}].{k}");
    if fe.bind.is_empty() {
        return Err(Invalid::at(key("bind"), "needs at least one address"));
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
            return Err(Invalid::at(
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
        return Err(Invalid::at(
            key("proxy_protocol"),
            "PROXY protocol is sent only in mode = \"tcp\"",
        ));
    }
    if fe.splice && (fe.mode != Mode::Tcp || fe.tls.is_some()) {
        return Err(Invalid::at(
            key("splice"),
            "splice relays plain mode = \"tcp\" sessions only (no [frontend.tls])",
        ));
    }
    super::tls::frontend(fe, i, pools)?;
    super::limits::limits(&fe.limits, i)?;
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
