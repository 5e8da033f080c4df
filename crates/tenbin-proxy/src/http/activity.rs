//! What a client connection is doing, for its timeouts and its HTTP/2 reset budget.
//!
//! Two waits, as HAProxy has them (`timeout http-keep-alive`, `timeout http-request`): a
//! connection with no request in flight and none begun may idle for `client_idle`; once
//! the first byte of a head arrives (or from the accept, for a new connection), the whole
//! head must arrive within `client_header`. hyper's own header timeout cannot tell the two
//! apart: it starts when the previous response ends, so a keep-alive client idle for
//! longer than `client_header` was cut with it. HTTP/2 connections, once a stream has
//! begun, have only the idle wait (their frames, pings included, are no request head).
//!
//! Request boundaries and the first read of each head are all it records: no clock per
//! read or write. Bytes of a pipelined head read while a request is in flight are not
//! seen; such a head, if it then stalls, is cut by the idle wait instead.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Version;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Which wait a connection outlasted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expired {
    /// `client_idle` with no request in flight and no head begun.
    Idle,
    /// `client_header` since the head's first byte (or the accept).
    Header,
}

/// `head_since` when no head has begun.
const NO_HEAD: u64 = u64::MAX;

/// See the module docs.
#[derive(Debug)]
pub(super) struct Activity {
    base: Instant,
    /// When a request last began or ended (nanoseconds since `base`).
    last_nanos: AtomicU64,
    /// When the head being read began, or [`NO_HEAD`].
    head_since: AtomicU64,
    /// An HTTP/2 connection: no head timeout once a stream has begun.
    multiplexed: AtomicBool,
    in_flight: AtomicUsize,
    completed: AtomicU32,
    cancelled: AtomicU32,
    max_resets: u32,
    /// Woken once the client cancelled `max_resets` more requests than completed.
    pub(super) over_budget: Notify,
}

impl Activity {
    /// A connection just accepted: its first head is due within `client_header`.
    pub(super) fn new(max_resets: u32) -> Self {
        Activity {
            base: Instant::now(),
            last_nanos: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            multiplexed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            completed: AtomicU32::new(0),
            cancelled: AtomicU32::new(0),
            max_resets,
            over_budget: Notify::new(),
        }
    }

    fn nanos(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn at(&self, nanos: u64) -> Instant {
        self.base + Duration::from_nanos(nanos)
    }

    /// The client sent bytes (told by `traffic::Counted`): the start of a head, if nothing
    /// was in progress.
    pub(super) fn on_read(&self) {
        if self.head_since.load(Ordering::Relaxed) == NO_HEAD
            && self.in_flight.load(Ordering::Relaxed) == 0
            && !self.multiplexed.load(Ordering::Relaxed)
        {
            self.head_since.store(self.nanos(), Ordering::Relaxed);
        }
    }

    /// No request in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// A request's head is complete and its handling begins.
    pub(super) fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        if version == Version::HTTP_2 {
            self.multiplexed.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NO_HEAD, Ordering::Relaxed);
        self.last_nanos.store(self.nanos(), Ordering::Relaxed);
        InFlight {
            activity: Arc::clone(self),
            done: false,
        }
    }

    fn on_cancel(&self) {
        let cancelled = self.cancelled.fetch_add(1, Ordering::Relaxed) + 1;
        let completed = self.completed.load(Ordering::Relaxed);
        if cancelled.saturating_sub(completed) > self.max_resets {
            self.over_budget.notify_one();
        }
    }

    /// When to look again. With no head begun it is at most `header` from now, so a head
    /// that begins meanwhile is timed from its first byte.
    pub(super) fn deadline(&self, idle: Duration, header: Duration) -> Instant {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return now + idle;
        }
        match self.head_since.load(Ordering::Relaxed) {
            NO_HEAD => {
                let last = self.at(self.last_nanos.load(Ordering::Relaxed));
                (last + idle).min(now + header)
            }
            since => self.at(since) + header,
        }
    }

    /// Which wait, if any, the connection has outlasted.
    pub(super) fn expired(&self, idle: Duration, header: Duration) -> Option<Expired> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = Instant::now();
        match self.head_since.load(Ordering::Relaxed) {
            NO_HEAD => {
                let last = self.at(self.last_nanos.load(Ordering::Relaxed));
                (last + idle <= now).then_some(Expired::Idle)
            }
            since => (self.at(since) + header <= now).then_some(Expired::Header),
        }
    }
}

/// A request being served: the connection is not idle meanwhile. Dropped before
/// [`InFlight::finish`], the client cancelled it (an HTTP/2 reset, or a closed connection).
pub(super) struct InFlight {
    activity: Arc<Activity>,
    done: bool,
}

impl InFlight {
    pub(super) fn finish(mut self) {
        self.done = true;
        self.activity.completed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.activity;
        a.last_nanos.store(a.nanos(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.done {
            a.on_cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);
    const HEADER: Duration = Duration::from_secs(10);

    fn served(a: &Arc<Activity>) {
        a.begin(Version::HTTP_11).finish();
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_owes_its_first_head_within_the_header_timeout() {
        let a = Arc::new(Activity::new(1));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(a.expired(IDLE, HEADER), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(a.expired(IDLE, HEADER), Some(Expired::Header));
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_client_idles_for_the_idle_timeout_not_the_header_one() {
        let a = Arc::new(Activity::new(1));
        served(&a);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            a.expired(IDLE, HEADER),
            None,
            "idle past the header timeout"
        );
        // The watcher looks again within the header timeout while nothing has begun.
        assert_eq!(a.deadline(IDLE, HEADER), Instant::now() + HEADER);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(a.expired(IDLE, HEADER), Some(Expired::Idle));
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_begun_is_timed_from_its_first_byte() {
        let a = Arc::new(Activity::new(1));
        served(&a);
        tokio::time::advance(Duration::from_secs(50)).await;
        a.on_read();
        let due = Instant::now() + HEADER;
        assert_eq!(a.deadline(IDLE, HEADER), due);
        tokio::time::advance(Duration::from_secs(9)).await;
        a.on_read();
        assert_eq!(
            a.expired(IDLE, HEADER),
            None,
            "more bytes do not restart it"
        );
        assert_eq!(a.deadline(IDLE, HEADER), due);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(a.expired(IDLE, HEADER), Some(Expired::Header));
        // The head completing ends that wait.
        drop(a.begin(Version::HTTP_11));
        assert_eq!(a.expired(IDLE, HEADER), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_is_never_idle_and_its_body_is_no_head() {
        let a = Arc::new(Activity::new(1));
        let guard = a.begin(Version::HTTP_11);
        a.on_read();
        tokio::time::advance(IDLE * 3).await;
        assert_eq!(a.expired(IDLE, HEADER), None, "a slow upstream");
        assert_eq!(a.deadline(IDLE, HEADER), Instant::now() + IDLE);
        guard.finish();
        assert_eq!(
            a.expired(IDLE, HEADER),
            None,
            "the wait restarts at the end"
        );
        tokio::time::advance(IDLE).await;
        assert_eq!(a.expired(IDLE, HEADER), Some(Expired::Idle));
    }

    #[tokio::test(start_paused = true)]
    async fn http2_frames_after_a_stream_are_no_head() {
        let a = Arc::new(Activity::new(1));
        a.begin(Version::HTTP_2).finish();
        a.on_read(); // a PING
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(a.expired(IDLE, HEADER), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(a.expired(IDLE, HEADER), Some(Expired::Idle));
    }

    #[tokio::test]
    async fn cancels_beyond_completions_and_budget_wake_the_connection() {
        let a = Arc::new(Activity::new(2));
        served(&a);
        for _ in 0..3 {
            drop(a.begin(Version::HTTP_2));
        }
        // 3 cancelled, 1 completed: within the budget of 2.
        let woken = tokio::time::timeout(Duration::from_millis(1), a.over_budget.notified());
        assert!(woken.await.is_err());
        drop(a.begin(Version::HTTP_2));
        a.over_budget.notified().await;
    }
}
