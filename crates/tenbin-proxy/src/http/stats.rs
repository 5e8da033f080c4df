//! [`HttpStats`]: every request or connection the frontend refused, counted by [`Reject`]
//! reason (for `/metrics`), a log budget so a flood of refusals cannot flood the log, and
//! the frontend's [`Traffic`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use http::StatusCode;

use super::traffic::Traffic;

/// Why the frontend refused a request or cut a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// 400 from the HTTP/1 parser: bad tokens, obs-fold, whitespace before a colon, CR, LF
    /// or NUL in a value, invalid or differing Content-Length, Transfer-Encoding not ending
    /// in `chunked` or on HTTP/1.0.
    Malformed,
    /// 400: `chunked` applied twice or not last across every Transfer-Encoding line.
    Framing,
    /// 501: a transfer coding other than `chunked`.
    UnknownCoding,
    /// 400: an invalid chunk size or chunk framing, or a body cut short.
    BadBody,
    /// 400: no Host on HTTP/1.1, several Host fields, userinfo, or Host disagreeing with an
    /// absolute-form target or `:authority`.
    Host,
    /// 405: CONNECT is never tunnelled.
    Connect,
    /// 414: the request line is longer than `max_request_line`.
    RequestLine,
    /// 431: the head is larger than `max_header_bytes` or has more than `max_headers` fields.
    HeaderTooLarge,
    /// 413: the body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// Closed: the request head did not arrive within `client_header`.
    HeaderTimeout,
    /// 408: the body paused longer than `client_body`.
    BodyTimeout,
    /// Closed: no request for `client_idle`.
    IdleTimeout,
    /// 503: `max_connections` reached.
    FrontendConnections,
    /// 429: `max_connections_per_source` reached.
    SourceConnections,
    /// 429: `requests_per_second_per_source` exceeded.
    SourceRate,
    /// Closed: an HTTP/2 client cancelled too many streams (rapid reset).
    H2Reset,
    /// Closed: another HTTP/2 protocol violation the connection detected.
    H2Protocol,
}

impl Reject {
    pub const ALL: [Reject; 17] = [
        Reject::Malformed,
        Reject::Framing,
        Reject::UnknownCoding,
        Reject::BadBody,
        Reject::Host,
        Reject::Connect,
        Reject::RequestLine,
        Reject::HeaderTooLarge,
        Reject::BodyTooLarge,
        Reject::HeaderTimeout,
        Reject::BodyTimeout,
        Reject::IdleTimeout,
        Reject::FrontendConnections,
        Reject::SourceConnections,
        Reject::SourceRate,
        Reject::H2Reset,
        Reject::H2Protocol,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::Framing => "framing",
            Reject::UnknownCoding => "unknown_coding",
            Reject::BadBody => "bad_body",
            Reject::Host => "host",
            Reject::Connect => "connect",
            Reject::RequestLine => "request_line",
            Reject::HeaderTooLarge => "header_too_large",
            Reject::BodyTooLarge => "body_too_large",
            Reject::HeaderTimeout => "header_timeout",
            Reject::BodyTimeout => "body_timeout",
            Reject::IdleTimeout => "idle_timeout",
            Reject::FrontendConnections => "frontend_connections",
            Reject::SourceConnections => "source_connections",
            Reject::SourceRate => "source_rate",
            Reject::H2Reset => "h2_reset",
            Reject::H2Protocol => "h2_protocol",
        }
    }

    /// The status tenbin answers with; `None`: the connection is closed without one.
    pub fn status(self) -> Option<StatusCode> {
        Some(match self {
            Reject::Malformed | Reject::Framing | Reject::BadBody | Reject::Host => {
                StatusCode::BAD_REQUEST
            }
            Reject::UnknownCoding => StatusCode::NOT_IMPLEMENTED,
            Reject::Connect => StatusCode::METHOD_NOT_ALLOWED,
            Reject::RequestLine => StatusCode::URI_TOO_LONG,
            Reject::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reject::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Reject::FrontendConnections => StatusCode::SERVICE_UNAVAILABLE,
            Reject::SourceConnections | Reject::SourceRate => StatusCode::TOO_MANY_REQUESTS,
            Reject::HeaderTimeout | Reject::IdleTimeout | Reject::H2Reset | Reject::H2Protocol => {
                return None
            }
        })
    }

    fn index(self) -> usize {
        Reject::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Log lines per second a frontend writes about refusals at `info`; the rest go to `debug`.
const LOG_PER_SECOND: u64 = 10;

/// Refusal and traffic counters of one frontend. Shared with its connections; read with
/// [`HttpStats::rejected`], [`HttpStats::snapshot`] and [`Traffic::snapshot`].
#[derive(Debug)]
pub struct HttpStats {
    pub traffic: Traffic,
    rejected: [AtomicU64; Reject::ALL.len()],
    base: Instant,
    /// Current log window (seconds since `base`) in the high 32 bits, lines in it below.
    log_window: AtomicU64,
}

impl Default for HttpStats {
    fn default() -> Self {
        HttpStats {
            traffic: Traffic::default(),
            rejected: std::array::from_fn(|_| AtomicU64::new(0)),
            base: Instant::now(),
            log_window: AtomicU64::new(0),
        }
    }
}

impl HttpStats {
    /// How many times `reason` happened.
    pub fn rejected(&self, reason: Reject) -> u64 {
        self.rejected[reason.index()].load(Ordering::Relaxed)
    }

    /// Every reason with its count, in [`Reject::ALL`] order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Reject::ALL
            .iter()
            .map(|r| (r.name(), self.rejected(*r)))
            .collect()
    }

    /// Counts a refusal and logs it within the budget.
    pub(crate) fn reject(&self, frontend: &str, reason: Reject, peer: SocketAddr) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
        if self.may_log() {
            tracing::info!(frontend, client = %peer, reason = reason.name(), "refused");
        } else {
            tracing::debug!(frontend, client = %peer, reason = reason.name(), "refused");
        }
    }

    fn may_log(&self) -> bool {
        let now = self.base.elapsed().as_secs() << 32;
        let mut cur = self.log_window.load(Ordering::Relaxed);
        loop {
            let next = if cur >> 32 == now >> 32 {
                if cur & 0xffff_ffff >= LOG_PER_SECOND {
                    return false;
                }
                cur + 1
            } else {
                now | 1
            };
            match self.log_window.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_bounds_the_log() {
        let s = HttpStats::default();
        let peer: SocketAddr = "192.0.2.1:5".parse().unwrap();
        let logged = (0..100).filter(|_| s.may_log()).count();
        assert!(logged as u64 <= LOG_PER_SECOND * 2, "{logged} lines");
        s.reject("fe", Reject::Host, peer);
        s.reject("fe", Reject::Host, peer);
        assert_eq!(s.rejected(Reject::Host), 2);
        assert_eq!(s.rejected(Reject::Connect), 0);
        let names: Vec<_> = s.snapshot().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), Reject::ALL.len());
        assert!(Reject::ALL.iter().all(|r| Reject::ALL[r.index()] == *r));
    }
}
