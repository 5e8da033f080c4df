//! `[frontend.limits]`: what one HTTP client may send and hold, with defaults close to
//! HAProxy's and NGINX's (see each field). `0` switches a count or rate limit off.

use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::validate::Invalid;

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

pub(crate) fn default_limits() -> Spanned<Limits> {
    Spanned::new(0..0, Limits::default())
}

/// Ranges the schema cannot express; `i` is the frontend's index.
pub(crate) fn validate_limits(limits: &Spanned<Limits>, i: usize) -> Result<(), Invalid> {
    let l = limits.get_ref();
    let fail = |k: &str, message: &str| {
        let span = limits.span();
        Err(Invalid {
            span: (span != (0..0)).then_some(span),
            key: format!("frontend[{i}].limits.{k}"),
            message: message.into(),
        })
    };
    // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB.
    if !(8 * 1024..=1024 * 1024).contains(&l.max_header_bytes) {
        return fail("max_header_bytes", "must be between 8192 and 1048576 bytes");
    }
    if l.max_request_line < 64 || l.max_request_line > l.max_header_bytes {
        return fail(
            "max_request_line",
            "must be at least 64 bytes and at most max_header_bytes",
        );
    }
    if !(1..=1000).contains(&l.max_headers) {
        return fail("max_headers", "must be between 1 and 1000");
    }
    if l.max_connections == 0 {
        return fail("max_connections", "must be at least 1");
    }
    if l.h2_max_concurrent_streams == 0 {
        return fail("h2_max_concurrent_streams", "must be at least 1");
    }
    if l.h2_max_header_list_bytes < 1024 {
        return fail("h2_max_header_list_bytes", "must be at least 1024 bytes");
    }
    if !l.h2_keepalive_interval.is_zero() && l.h2_keepalive_timeout.is_zero() {
        return fail(
            "h2_keepalive_timeout",
            "must be more than 0s when h2_keepalive_interval is set",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn parse(limits: &str) -> Result<Config, crate::ConfigError> {
        let text = format!(
            "[[frontend]]\nname = \"w\"\nbind = [\"127.0.0.1:80\"]\ndefault_pool = \"p\"\n\
             [frontend.limits]\n{limits}\n[[pool]]\nname = \"p\"\n\
             [[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9\"\n"
        );
        Config::parse(&text, "l.toml")
    }

    #[test]
    fn defaults_apply_and_fields_override() {
        let cfg = parse("max_headers = 50\nh2_keepalive_interval = \"0s\"").unwrap();
        let l = cfg.frontend[0].limits.get_ref();
        assert_eq!(l.max_headers, 50);
        assert_eq!(l.max_request_line, 8192);
        assert!(l.h2_keepalive_interval.is_zero());
    }

    #[test]
    fn out_of_range_names_the_key_and_line() {
        let e = parse("max_request_line = 70000").unwrap_err();
        assert_eq!(e.key, "frontend[0].limits.max_request_line");
        assert_eq!(e.line, 5, "{e}");
        let e = parse("bogus = 1").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
