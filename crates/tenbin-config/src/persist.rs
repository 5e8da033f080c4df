//! `[pool.persistence]`: keeping a user on one server (the seeds' "shopping cart problem").
//!
//! [`validate`] checks what the schema cannot: each mode has the name it needs (cookie,
//! parameter or header) and only the options that apply to it, names are valid in their
//! protocol, prefixes, bounds and durations are in range.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::pool::Pool;
use crate::validate::Invalid;

/// How a pool pins sessions to servers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    pub mode: Spanned<PersistMode>,
    /// Cookie name for the cookie modes (e.g. "SRVID", or the application's "JSESSIONID").
    pub cookie: Option<Spanned<String>>,
    /// insert: strip our cookie before forwarding; do not re-send it when unchanged.
    #[serde(default)]
    pub indirect: bool,
    /// insert: add `Cache-Control: private`, insert only on non-cacheable responses.
    #[serde(default)]
    pub nocache: bool,
    #[serde(default)]
    pub httponly: bool,
    #[serde(default)]
    pub secure: bool,
    pub samesite: Option<SameSite>,
    pub domain: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    pub maxidle: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub maxlife: Option<Duration>,
    /// insert: only on responses of these content types.
    #[serde(default = "default_content_types")]
    pub insert_content_types: Vec<String>,
    /// url-param: query parameter or `;name=` path parameter carrying the server id.
    pub param: Option<Spanned<String>>,
    /// url-param: append the parameter to `Location` of redirects passed through.
    #[serde(default)]
    pub append_to_redirects: bool,
    /// header: the request header identifying the client (terminal or subscriber id).
    pub header: Option<Spanned<String>>,
    /// header / cookie-hash: learn value → server (true) instead of pure hashing.
    #[serde(default = "default_true")]
    pub learn: bool,
    /// source: prefix lengths that group clients (a /24 proxy farm stays together).
    #[serde(default = "default_v4")]
    pub source_prefix_v4: Spanned<u8>,
    #[serde(default = "default_v6")]
    pub source_prefix_v6: Spanned<u8>,
    /// source: no table, consistent hashing only.
    #[serde(default)]
    pub tableless: bool,
    /// Bound of the persistence table (entries).
    #[serde(default = "default_table_size")]
    pub table_size: Spanned<usize>,
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Persisted server down: send to another and re-stick.
    #[serde(default = "default_true")]
    pub redispatch: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersistMode {
    Source,
    CookieInsert,
    CookieRewrite,
    CookiePassive,
    CookiePrefix,
    CookieHash,
    UrlParam,
    Header,
    /// TLS session id, passthrough (mode tcp) only.
    TlsSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

fn default_true() -> bool {
    true
}
fn default_v4() -> Spanned<u8> {
    Spanned::new(0..0, 32)
}
fn default_v6() -> Spanned<u8> {
    Spanned::new(0..0, 128)
}
fn default_table_size() -> Spanned<usize> {
    Spanned::new(0..0, 100_000)
}
fn default_idle() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_content_types() -> Vec<String> {
    vec!["text/html".into()]
}

/// Largest persistence table a pool may ask for (entries); ~100 bytes each.
pub const MAX_TABLE_SIZE: usize = 10_000_000;

/// Semantic checks of `pool.persistence` (pool number `i`); call it for every pool.
// Called from validate.rs once it is wired in there (issue 4).
#[allow(dead_code)]
pub(crate) fn validate(pool: &Pool, i: usize) -> Result<(), Invalid> {
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

impl PersistMode {
    /// The spelling used in config files.
    pub fn name(self) -> &'static str {
        match self {
            PersistMode::Source => "source",
            PersistMode::CookieInsert => "cookie-insert",
            PersistMode::CookieRewrite => "cookie-rewrite",
            PersistMode::CookiePassive => "cookie-passive",
            PersistMode::CookiePrefix => "cookie-prefix",
            PersistMode::CookieHash => "cookie-hash",
            PersistMode::UrlParam => "url-param",
            PersistMode::Header => "header",
            PersistMode::TlsSession => "tls-session",
        }
    }
}

/// An RFC 9110 token (header names and RFC 6265 cookie names).
#[allow(dead_code)]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use crate::Config;

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
        super::validate(&config.pool[0], 0).map_err(|e| format!("{}: {}", e.key, e.message))
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
