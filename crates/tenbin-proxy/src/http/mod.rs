//! L7 HTTP switching (`mode = "http"`): HTTP/1.1 and h2c towards clients, HTTP/1.1 with
//! keep-alive towards servers.
//!
//! Tour:
//! - [`rules`]: compiled content-switching rules that pick a pool per request.
//! - [`headers`]: hop-by-hop stripping, X-Forwarded-* / RFC 7239 `Forwarded`, edit rules.
//! - [`key`]: the hashing key for consistent-hash pools (source, header, cookie, query).
//! - `config`: [`HttpFrontend::from_config`], the plain conversion from `tenbin-config`.
//! - `h1`: plain bodiless HTTP/1.1 requests read and answered without hyper; the first
//!   request that needs more hands the connection to hyper.
//! - `server`: the accept loop, per-connection timeouts (slowloris, idle), HTTP/1 and h2
//!   protocol limits, the stream-reset budget, shutdown.
//! - [`limits`]: [`HttpLimits`], what a client may send and hold; `admit` enforces the
//!   connection and per-source limits, `strict` the RFC 9112 head checks hyper leaves to
//!   us, `body` the body size and slow-body timeout.
//! - [`stats`]: [`HttpStats`], every refusal counted by [`Reject`] reason.
//! - [`traffic`]: [`Traffic`], connections, bytes, responses by status class, latency and
//!   TLS handshakes, on sharded counters.
//! - `forward`: one request: route, lease a server from the [`crate::pool::Pool`], send with
//!   connect/server/total timeouts, retry safely elsewhere, tunnel upgrades.
//! - `upstream`: plain HTTP/1.1 to servers driven inline by the request's own task, with a
//!   per-thread keep-alive list of idle connections (TLS servers and upgrades use
//!   hyper-util's pooled client).
//! - [`log`]: access log lines in JSON or the combined format.
//!
//! The binary builds an [`HttpFrontend`] from validated config and calls [`serve`] with a
//! bound listener and a shutdown future. Nothing here reads files or runs health checks.
//!
//! # Strict HTTP/1.1 and limits
//!
//! Every refusal answers with a status and closes the HTTP/1 connection (nothing sent after
//! a refused head is ever read as a request), is counted in [`HttpStats`] by [`Reject`]
//! reason, and is logged at `info` up to ten lines a second per frontend (`debug` beyond).
//!
//! | rule | answer | default |
//! |---|---|---|
//! | obs-fold, space before `:`, CR/LF/NUL in a value, bad or differing Content-Length, TE not ending in `chunked`, TE on HTTP/1.0 | 400 (hyper's parser) | |
//! | `chunked` twice or not last over all TE lines | 400 | |
//! | a coding other than `chunked` (e.g. `gzip, chunked`) | 501 | |
//! | TE with CL | CL removed, framed by chunked, connection closed after the response | |
//! | invalid chunk size or framing | 400, upstream attempt aborted, no health signal | |
//! | HTTP/1.1 without Host, several Host, Host ≠ absolute-form authority, userinfo | 400 | |
//! | CONNECT | 405, never tunnelled | |
//! | request line | 414 | `max_request_line` 8 KiB |
//! | head bytes, header count | 431 | `max_header_bytes` 32 KiB, `max_headers` 100 |
//! | body size | 413 | `max_body_bytes` unlimited |
//! | head not complete in time | closed | `timeouts.client_header` 10s |
//! | pause inside a body | 408 | `timeouts.client_body` 60s |
//! | no request on a keep-alive connection | closed | `timeouts.client_idle` 60s |
//! | connections per frontend | 503 | `max_connections` 10000 |
//! | connections per source address | 429 | `max_connections_per_source` unlimited |
//! | requests per second per source address | 429 | `requests_per_second_per_source` unlimited |
//! | h2 streams at once, header list | SETTINGS | 100, 32 KiB |
//! | h2 streams cancelled beyond completed ones (rapid reset) | connection cut | `h2_max_resets` 100, and h2's own limit on resets before accept |
//! | h2 keep-alive | PING | every 30s, 20s to answer |
//!
//! Absolute-form targets are routed by their authority like Host and always sent to a pool
//! server in origin form: tenbin is never an open proxy. A request line longer than the
//! read buffer (`max_header_bytes`, at least 64 KiB) gets hyper's 431 rather than 414.

mod activity;
mod admit;
mod body;
mod config;
mod forward;
mod h1;
pub mod headers;
pub mod key;
pub mod limits;
pub mod log;
pub mod rules;
mod server;
pub mod stats;
mod strict;
pub mod traffic;
mod upstream;
/// The HTTP/1.1 wire format towards servers (request head, response head, chunked bodies).
pub use upstream::wire as upstream_wire;

/// The plain HTTP/1.1 head reader of the client side (for the fuzz target).
pub use h1::{read_plain_head, NotPlain};
pub(crate) use upstream::keep_idle;

use std::sync::Arc;
use std::time::Duration;

pub use config::FrontendConfigError;
pub use headers::{ForwardedMode, HeaderRules};
pub use key::request_key;
pub use limits::HttpLimits;
pub use log::{AccessLogFormat, AccessLogSink, StdoutSink};
pub use rules::{PathSpec, Router, RuleError, RuleSpec};
pub use server::{serve, HttpService};
pub use stats::{HttpStats, Reject};
pub use strict::check as check_head;
pub use traffic::{Traffic, TrafficSnapshot};

use crate::pool::Pool;

/// The timeouts of an HTTP frontend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// A client must send a complete request head within this (slowloris); also bounds the
    /// wait for the next request on a keep-alive connection.
    pub client_header: Duration,
    /// A client connection with no request in flight for this long is closed.
    pub client_idle: Duration,
    /// The longest pause inside a request body (slow POST), else 408.
    pub client_body: Duration,
    /// Establishing a connection to a server.
    pub connect: Duration,
    /// A server must answer with a response head within this after the request was sent.
    pub server: Duration,
    /// Everything up to the response head: queueing, connects, retries, server waits.
    pub total: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            client_header: Duration::from_secs(10),
            client_idle: Duration::from_secs(60),
            client_body: Duration::from_secs(60),
            connect: Duration::from_secs(3),
            server: Duration::from_secs(30),
            total: Duration::from_secs(120),
        }
    }
}

/// Everything one HTTP frontend runs on. Build with [`HttpFrontend::new`], adjust the public
/// fields, then hand it to [`serve`].
#[derive(Debug)]
pub struct HttpFrontend {
    pub name: String,
    pub router: Router,
    /// The pools rules refer to, by index; each hashes requests by its own `hash_on`.
    pub pools: Vec<Pool>,
    /// Other servers tried after a failed attempt, when the retry is safe.
    pub retries: u32,
    pub forwarded: ForwardedMode,
    pub request_headers: HeaderRules,
    pub response_headers: HeaderRules,
    pub timeouts: HttpTimeouts,
    pub limits: HttpLimits,
    /// Refusal counters; clone the `Arc` before [`serve`] to read them while it runs.
    pub stats: Arc<HttpStats>,
    pub access_log: AccessLogFormat,
    pub log_sink: Arc<dyn AccessLogSink>,
    /// Request bodies up to this size are buffered so a failed attempt can be replayed on
    /// another server; larger or unsized bodies stream and are never replayed.
    pub replay_limit: usize,
    /// Session persistence per pool index (issue 4); missing or `None`: no persistence.
    pub persistence: Vec<Option<Arc<crate::persist::Persistence>>>,
    /// Re-encryption towards each pool's servers, by pool index (issue 4); `None`: plain.
    pub upstream_tls: Vec<Option<crate::tls::Upstream>>,
}

impl HttpFrontend {
    /// A frontend with default settings whose rules refer to `pools` by name.
    pub fn new(
        name: impl Into<String>,
        rules: &[RuleSpec],
        default_pool: Option<&str>,
        pools: Vec<Pool>,
    ) -> Result<Self, RuleError> {
        let names: Vec<&str> = pools.iter().map(|p| p.name()).collect();
        let router = Router::compile(rules, default_pool, &names)?;
        Ok(HttpFrontend {
            name: name.into(),
            router,
            pools,
            retries: 2,
            forwarded: ForwardedMode::XForwarded,
            request_headers: HeaderRules::default(),
            response_headers: HeaderRules::default(),
            timeouts: HttpTimeouts::default(),
            limits: HttpLimits::default(),
            stats: Arc::default(),
            access_log: AccessLogFormat::Off,
            log_sink: Arc::new(StdoutSink),
            replay_limit: 64 * 1024,
            persistence: Vec::new(),
            upstream_tls: Vec::new(),
        })
    }
}
