//! `[pool.persistence]` checks: each mode has the name it needs (cookie, parameter or header)
//! and only the options that apply to it, names are valid in their protocol, prefixes, bounds
//! and durations are in range.

use std::ops::Range;
use std::time::Duration;

use serde_spanned::Spanned;

use super::invalid::Invalid;
use crate::persist::{PersistMode, SameSite, MAX_TABLE_SIZE};
use crate::pool::Pool;

/// Semantic checks of `pool.persistence` (pool number `i`); call it for every pool.
pub(crate) fn persistence(pool: &Pool, i: usize) -> Result<(), Invalid> {
    let Some(p) = &pool.persistence else {
        return Ok(());
    };
    let key = |k: &str| format!("pool[{i}].persistence.{k}");
    let here = |span: Range<usize>, k: &str, msg: String| Invalid {
        span: (span != (0..0)).then_some(span),
        key: key(k),
        message: msg,
    };
    let at_mode = |k: &str, msg: String| here(p.mode.span(), k, msg);
    let mode = *p.mode.get_ref();
    let mode_name = mode.name();

    // The name each mode needs, and only that one.
    let needs = |field: &Option<Spanned<String>>, k: &str, wanted: bool| match (field, wanted) {
        (None, true) => Err(at_mode(k, format!("mode `{mode_name}` needs `{k}`"))),
        (Some(f), false) => Err(here(
            f.span(),
            k,
            format!("`{k}` does not apply to mode `{mode_name}`"),
        )),
        _ => Ok(()),
    };
    let cookie_mode = matches!(
        mode,
        PersistMode::CookieInsert
            | PersistMode::CookieRewrite
            | PersistMode::CookiePassive
            | PersistMode::CookiePrefix
            | PersistMode::CookieHash
    );
    needs(&p.cookie, "cookie", cookie_mode)?;
    needs(&p.param, "param", mode == PersistMode::UrlParam)?;
    needs(&p.header, "header", mode == PersistMode::Header)?;
    if let Some(c) = &p.cookie {
        if !is_token(c.get_ref()) {
            return Err(here(
                c.span(),
                "cookie",
                format!("`{}` is not a valid cookie name (RFC 6265 token: letters, digits and !#$%&'*+-.^_`|~)", c.get_ref()),
            ));
        }
    }
    if let Some(h) = &p.header {
        if !is_token(h.get_ref()) {
            return Err(here(
                h.span(),
                "header",
                format!("`{}` is not a valid header name", h.get_ref()),
            ));
        }
    }
    if let Some(q) = &p.param {
        let bad = q.get_ref().is_empty()
            || q.get_ref()
                .chars()
                .any(|c| "&;=?#/ ".contains(c) || c.is_control());
        if bad {
            return Err(here(
                q.span(),
                "param",
                format!("`{}` is not a usable URL parameter name", q.get_ref()),
            ));
        }
    }

    // Options that belong to one mode.
    let insert_only = [
        ("indirect", p.indirect),
        ("nocache", p.nocache),
        ("httponly", p.httponly),
        ("secure", p.secure),
        ("samesite", p.samesite.is_some()),
        ("domain", p.domain.is_some()),
        ("maxidle", p.maxidle.is_some()),
        ("maxlife", p.maxlife.is_some()),
    ];
    if mode != PersistMode::CookieInsert {
        if let Some((k, _)) = insert_only.iter().find(|(_, set)| *set) {
            return Err(at_mode(
                k,
                format!("`{k}` applies only to mode `cookie-insert`, not `{mode_name}`"),
            ));
        }
    }
    if p.append_to_redirects && mode != PersistMode::UrlParam {
        return Err(at_mode(
            "append_to_redirects",
            format!("`append_to_redirects` applies only to mode `url-param`, not `{mode_name}`"),
        ));
    }
    if p.tableless && mode != PersistMode::Source {
        return Err(at_mode(
            "tableless",
            format!("`tableless` applies only to mode `source`, not `{mode_name}`"),
        ));
    }
    if p.samesite == Some(SameSite::None) && !p.secure {
        return Err(at_mode(
            "samesite",
            "samesite = \"none\" needs secure = true (browsers drop the cookie otherwise)".into(),
        ));
    }
    if let Some(d) = &p.domain {
        let v = d.get_ref();
        if v.is_empty()
            || v.chars()
                .any(|c| c == ';' || c == ',' || c.is_whitespace() || c.is_control())
        {
            return Err(here(
                d.span(),
                "domain",
                format!("`{v}` is not a cookie domain"),
            ));
        }
    }
    for (k, d) in [("maxidle", p.maxidle), ("maxlife", p.maxlife)] {
        if d.is_some_and(|d| d < Duration::from_secs(1)) {
            return Err(at_mode(
                k,
                format!("`{k}` must be at least 1s (cookie dates have second resolution)"),
            ));
        }
    }
    if *p.source_prefix_v4.get_ref() > 32 {
        return Err(here(
            p.source_prefix_v4.span(),
            "source_prefix_v4",
            "must be within 0..=32".into(),
        ));
    }
    if *p.source_prefix_v6.get_ref() > 128 {
        return Err(here(
            p.source_prefix_v6.span(),
            "source_prefix_v6",
            "must be within 0..=128".into(),
        ));
    }
    let size = *p.table_size.get_ref();
    if size == 0 || size > MAX_TABLE_SIZE {
        return Err(here(
            p.table_size.span(),
            "table_size",
            format!("must be within 1..={MAX_TABLE_SIZE}"),
        ));
    }
    if p.idle_timeout.is_zero() {
        return Err(at_mode(
            "idle_timeout",
            "`idle_timeout` must be more than 0s".into(),
        ));
    }
    Ok(())
}

/// An RFC 9110 token (header names and RFC 6265 cookie names).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// Parses a one-pool config with `persistence` as its `[pool.persistence]` body and runs
    /// the persistence checks.
    fn check(persistence: &str) -> Result<(), String> {
        let text = format!(
            "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:8080\"]\ndefault_pool = \"web\"\n\
             [[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9001\"\n\
             [pool.persistence]\n{persistence}\n"
        );
        let config =
            Config::parse(&text, "t.toml").map_err(|e| format!("{}: {}", e.key, e.message))?;
        super::persistence(&config.pool[0], 0).map_err(|e| format!("{}: {}", e.key, e.message))
    }

    #[test]
    fn every_mode_with_its_name_is_accepted() {
        for ok in [
            "mode = \"source\"\nsource_prefix_v4 = 24\ntableless = true",
            "mode = \"cookie-insert\"\ncookie = \"SRV\"\nindirect = true\nnocache = true\nhttponly = true\nsecure = true\nsamesite = \"none\"\ndomain = \"example.test\"\nmaxidle = \"30m\"\nmaxlife = \"8h\"",
            "mode = \"cookie-rewrite\"\ncookie = \"SERVERID\"",
            "mode = \"cookie-passive\"\ncookie = \"JSESSIONID\"",
            "mode = \"cookie-prefix\"\ncookie = \"JSESSIONID\"",
            "mode = \"cookie-hash\"\ncookie = \"JSESSIONID\"\nlearn = false",
            "mode = \"url-param\"\nparam = \"jsessionid\"\nappend_to_redirects = true",
            "mode = \"header\"\nheader = \"X-Subscriber-Id\"",
            "mode = \"tls-session\"",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn missing_or_misplaced_names_are_named() {
        let e = check("mode = \"cookie-insert\"").unwrap_err();
        assert!(e.contains("needs `cookie`"), "{e}");
        let e = check("mode = \"source\"\nheader = \"x-id\"").unwrap_err();
        assert!(e.starts_with("pool[0].persistence.header"), "{e}");
        assert!(check("mode = \"url-param\"")
            .unwrap_err()
            .contains("needs `param`"));
        assert!(check("mode = \"header\"")
            .unwrap_err()
            .contains("needs `header`"));
    }

    #[test]
    fn options_of_other_modes_are_rejected() {
        let e = check("mode = \"cookie-passive\"\ncookie = \"J\"\nindirect = true").unwrap_err();
        assert!(e.contains("only to mode `cookie-insert`"), "{e}");
        let e = check("mode = \"header\"\nheader = \"x\"\ntableless = true").unwrap_err();
        assert!(e.contains("only to mode `source`"), "{e}");
        let e = check("mode = \"source\"\nappend_to_redirects = true").unwrap_err();
        assert!(e.contains("url-param"), "{e}");
    }

    #[test]
    fn values_are_checked() {
        for (bad, needle) in [
            ("mode = \"cookie-insert\"\ncookie = \"S RV\"", "cookie name"),
            ("mode = \"header\"\nheader = \"x:id\"", "header name"),
            ("mode = \"url-param\"\nparam = \"a&b\"", "URL parameter"),
            (
                "mode = \"cookie-insert\"\ncookie = \"S\"\nsamesite = \"none\"",
                "secure",
            ),
            (
                "mode = \"cookie-insert\"\ncookie = \"S\"\ndomain = \"a;b\"",
                "cookie domain",
            ),
            (
                "mode = \"cookie-insert\"\ncookie = \"S\"\nmaxidle = \"10ms\"",
                "at least 1s",
            ),
            ("mode = \"source\"\nsource_prefix_v4 = 33", "0..=32"),
            ("mode = \"source\"\nsource_prefix_v6 = 129", "0..=128"),
            ("mode = \"source\"\ntable_size = 0", "table_size"),
            ("mode = \"source\"\nidle_timeout = \"0s\"", "idle_timeout"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_and_modes_fail_in_the_schema() {
        assert!(check("mode = \"source\"\nbogus = 1")
            .unwrap_err()
            .contains("bogus"));
        assert!(check("mode = \"ssl-id\"").is_err());
    }
}
