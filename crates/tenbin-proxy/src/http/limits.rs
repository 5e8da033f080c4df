//! [`HttpLimits`]: what one client may send and hold on an HTTP frontend, and the pure
//! rate arithmetic behind the per-source request limit.
//!
//! Where each limit is enforced:
//! - header count: hyper's HTTP/1 parser (`max_headers`); a half-sent head can fill at most
//!   the read buffer (`max_header_bytes`, at least 64 KiB) before hyper answers 431;
//! - request line, exact head size, Host, framing, CONNECT, declared body size: `strict` on
//!   the parsed head, before routing;
//! - streamed body size and the slow-body timeout: the request body wrapper in `body`;
//! - connections per frontend and per source, requests per second per source: `admit`;
//! - HTTP/2 streams, header list, keep-alive pings: hyper's HTTP/2 settings; stream resets:
//!   the connection's own budget in `server`.

/// Per-frontend HTTP limits: the validated `[frontend.limits]` section itself, so the schema,
/// its documented defaults (next to HAProxy's and NGINX's) and the proxy cannot drift apart.
/// `0` switches a count or rate limit off where its field says so.
pub use tenbin_config::limits::Limits as HttpLimits;

/// Whether anything has to be tracked per source address.
pub(crate) fn per_source(limits: &HttpLimits) -> bool {
    limits.max_connections_per_source > 0 || limits.requests_per_second_per_source > 0
}

/// The per-source request rate as a [`Gcra`], if limited.
pub(crate) fn source_rate(limits: &HttpLimits) -> Option<Gcra> {
    let rate = u64::from(limits.requests_per_second_per_source);
    if rate == 0 {
        return None;
    }
    let burst = match limits.request_burst_per_source {
        0 => rate,
        b => u64::from(b),
    };
    let interval = 1_000_000_000 / rate;
    Some(Gcra {
        interval,
        tolerance: interval.saturating_mul(burst.saturating_sub(1)),
    })
}

/// The generic cell rate algorithm over a "theoretical arrival time" in nanoseconds: one
/// number per source, updated with a compare-and-swap, no timer. Pure: `now` is an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Nanoseconds between two requests at the sustained rate.
    pub interval: u64,
    /// How far ahead of `now` the arrival time may run (the burst).
    pub tolerance: u64,
}

impl Gcra {
    /// The new arrival time if a request at `now` conforms, `None` if it must be refused.
    pub(crate) fn admit(self, tat: u64, now: u64) -> Option<u64> {
        let tat = tat.max(now);
        (tat - now <= self.tolerance).then(|| tat + self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limits = HttpLimits {
            requests_per_second_per_source: 10,
            request_burst_per_source: 3,
            ..HttpLimits::default()
        };
        let g = source_rate(&limits).unwrap();
        let (mut tat, now) = (0, 5 * SEC);
        for _ in 0..3 {
            tat = g.admit(tat, now).expect("within the burst");
        }
        assert_eq!(g.admit(tat, now), None, "the fourth at once is refused");
        // A tenth of a second later one more conforms, and only one.
        let later = now + SEC / 10;
        tat = g.admit(tat, later).expect("the rate refilled one");
        assert_eq!(g.admit(tat, later), None);
    }

    #[test]
    fn off_unless_configured() {
        assert!(source_rate(&HttpLimits::default()).is_none());
        assert!(!per_source(&HttpLimits::default()));
        let one = HttpLimits {
            requests_per_second_per_source: 1,
            ..HttpLimits::default()
        };
        let g = source_rate(&one).unwrap();
        assert_eq!(g.tolerance, 0, "burst defaults to one second's rate");
    }
}
