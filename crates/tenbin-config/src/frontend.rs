//! `[[frontend]]`: listeners of the proxy tier, their mode, timeouts, rules and header edits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

/// One listening service: where it binds, how it switches, where traffic goes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    pub name: Spanned<String>,
    pub bind: Vec<Spanned<SocketAddr>>,
    #[serde(default)]
    pub mode: Mode,
    pub default_pool: Option<Spanned<String>>,
    /// HTTP: how many other servers a safe request may be retried on.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default)]
    pub access_log: AccessLog,
    /// TCP: send a PROXY protocol header to servers.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// TCP without TLS: relay bytes with splice(2) through a pipe, so they never enter
    /// userspace (HAProxy's `option splice-auto`, always on).
    #[serde(default)]
    pub splice: bool,
    #[serde(default)]
    pub forwarded: Forwarded,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub rule: Vec<Rule>,
    #[serde(default)]
    pub headers: HeaderRules,
    /// HTTP: request size, connection and rate limits (`[frontend.limits]`).
    #[serde(default)]
    pub limits: crate::limits::Limits,
    pub tls: Option<crate::tls::FrontendTls>,
    /// TLS passthrough: SNI → pool, tried before `default_pool`.
    #[serde(default)]
    pub sni_route: Vec<crate::tls::SniRoute>,
}

fn default_retries() -> u32 {
    2
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Http,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AccessLog {
    #[default]
    Off,
    Json,
    Combined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    V1,
    V2,
}

/// Which client-identity headers the HTTP proxy adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Forwarded {
    #[default]
    XForwarded,
    Rfc7239,
    Both,
    None,
}

/// Every timeout a frontend enforces (humantime strings such as "10s", "250ms").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Time allowed to receive a request's headers (slowloris), from the head's first byte
    /// (from the accept for a connection's first request), as HAProxy's `timeout
    /// http-request`.
    #[serde(with = "humantime_serde")]
    pub client_header: Duration,
    /// Keep-alive idle time between requests, until the next head's first byte (HAProxy's
    /// `timeout http-keep-alive`).
    #[serde(with = "humantime_serde")]
    pub client_idle: Duration,
    /// HTTP: longest wait for the next piece of a request body (slow POST), else 408
    /// (NGINX `client_body_timeout`: 60s).
    #[serde(with = "humantime_serde")]
    pub client_body: Duration,
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// Time to the first response byte from a server.
    #[serde(with = "humantime_serde")]
    pub server: Duration,
    /// Whole request, start to end.
    #[serde(with = "humantime_serde")]
    pub total: Duration,
    /// Time a request may wait in a pool's queue when every server is at maxconn.
    #[serde(with = "humantime_serde")]
    pub queue: Duration,
    #[serde(with = "humantime_serde")]
    pub tcp_idle: Duration,
    #[serde(with = "humantime_serde")]
    pub udp_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        Timeouts {
            client_header: s(10),
            client_idle: s(60),
            client_body: s(60),
            connect: s(3),
            server: s(30),
            total: s(120),
            queue: s(5),
            tcp_idle: s(300),
            udp_idle: s(30),
        }
    }
}

/// A content-switching rule: every condition given must hold; the first matching rule wins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub pool: Spanned<String>,
    /// Exact host, or `*.example.com` for any subdomain.
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub path_exact: Option<String>,
    pub path_regex: Option<Spanned<String>>,
    pub method: Option<Vec<String>>,
    pub header: Option<HeaderMatch>,
    pub query: Option<QueryMatch>,
    /// File extensions without the dot, matched case-insensitively on the path.
    pub extension: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    /// Exact value; or use `regex`.
    pub value: Option<String>,
    pub regex: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    pub name: String,
    /// Absent: the parameter only has to be present.
    pub value: Option<String>,
}

/// Header edits applied to requests on the way in and responses on the way out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderRules {
    pub request_set: BTreeMap<String, String>,
    pub request_add: BTreeMap<String, String>,
    pub request_del: Vec<String>,
    pub response_set: BTreeMap<String, String>,
    pub response_add: BTreeMap<String, String>,
    pub response_del: Vec<String>,
}
