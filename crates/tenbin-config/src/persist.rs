//! `[pool.persistence]`: keeping a user on one server (the seeds' "shopping cart problem").
//!
//! The schema only; the checks of each mode's names and options are in `validate/persist.rs`.

use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

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
