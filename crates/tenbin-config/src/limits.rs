//! `[frontend.limits]`: what one HTTP client may send and hold, with defaults close to
//! HAProxy's and NGINX's (see each field). `0` switches a count or rate limit off. The
//! ranges are checked in `validate::limits`.

use std::time::Duration;

use serde::Deserialize;

/// Per-frontend HTTP limits, also the proxy's `HttpLimits`. Timeouts for reading the head, the body and idling between
/// requests are in `[frontend.timeouts]` (`client_header`, `client_body`, `client_idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest request line in bytes, else 414 (NGINX `large_client_header_buffers`: 8k).
    pub max_request_line: usize,
    /// Whole request head in bytes, request line included, else 431 (NGINX 4×8k; HAProxy's
    /// `tune.bufsize` 16k holds head and some body).
    pub max_header_bytes: usize,
    /// Header fields in one request, else 431 (HAProxy `tune.http.maxhdr`: 101).
    pub max_headers: usize,
    /// Request body bytes, else 413; 0: unlimited (HAProxy; NGINX's
    /// `client_max_body_size` is 1m).
    pub max_body_bytes: u64,
    /// Client connections open at once on this frontend; more are answered 503 and closed
    /// (HAProxy `maxconn`; NGINX `worker_connections` 512 per worker).
    pub max_connections: usize,
    /// Client connections open at once from one source address, more get 429; 0: unlimited
    /// (NGINX `limit_conn`, HAProxy `sc_conn_cur`: both off by default).
    pub max_connections_per_source: usize,
    /// Requests per second from one source address, more get 429; 0: unlimited (NGINX
    /// `limit_req`, off by default).
    pub requests_per_second_per_source: u32,
    /// Requests above the rate one source may send at once (NGINX `limit_req burst`);
    /// 0: as many as one second's rate.
    pub request_burst_per_source: u32,
    /// HTTP/2 streams open at once per connection (HAProxy 100, NGINX 128).
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 header list size in bytes (SETTINGS_MAX_HEADER_LIST_SIZE).
    pub h2_max_header_list_bytes: u32,
    /// Streams a client may cancel beyond those it let finish before its connection is
    /// closed (rapid reset, CVE-2023-44487).
    pub h2_max_resets: u32,
    /// HTTP/2 keep-alive PING interval; a connection not answering within
    /// `h2_keepalive_timeout` is closed. `0s`: no pings.
    #[serde(with = "humantime_serde")]
    pub h2_keepalive_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub h2_keepalive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 0,
            max_connections: 10_000,
            max_connections_per_source: 0,
            requests_per_second_per_source: 0,
            request_burst_per_source: 0,
            h2_max_concurrent_streams: 100,
            h2_max_header_list_bytes: 32 * 1024,
            h2_max_resets: 100,
            h2_keepalive_interval: Duration::from_secs(30),
            h2_keepalive_timeout: Duration::from_secs(20),
        }
    }
}
