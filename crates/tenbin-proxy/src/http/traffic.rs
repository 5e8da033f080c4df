//! [`Traffic`]: what an HTTP frontend served, for `/metrics`: connections accepted, bytes
//! each way, responses by status class with their latency, TLS handshakes by result.
//! Every counter is a sharded [`Counter`], so workers serving the same frontend never
//! contend on one cache line; bytes are summed per connection in plain integers and added
//! to the shared counters in batches (and when the connection ends).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use tenbin_core::counter::{Counter, Histogram, HistogramSnapshot};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::Activity;
use super::HttpStats;

/// Status classes in [`TrafficSnapshot::responses`] order (the metric's `class` label).
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Why a TLS handshake failed, in [`TrafficSnapshot::tls_failed`] order.
pub const TLS_FAILURES: [&str; 3] = ["timeout", "protocol", "closed"];

/// Bytes a connection counts locally before adding them to the frontend's counters.
const FLUSH_BYTES: u64 = 64 * 1024;

/// The live counters; see the module docs.
#[derive(Debug, Default)]
pub struct Traffic {
    accepted: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    responses: [Counter; CLASSES.len()],
    duration: Histogram,
    tls_ok: Counter,
    tls_failed: [Counter; TLS_FAILURES.len()],
    moved: Counter,
}

/// [`Traffic`] as read: plain numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrafficSnapshot {
    /// Client connections accepted (admitted or refused).
    pub accepted: u64,
    /// Bytes read from clients and written to them (HTTP bytes, after TLS decryption).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Responses by status class, in [`CLASSES`] order, refusals included.
    pub responses: [u64; CLASSES.len()],
    /// Time from a request's arrival to its response head, for every request past the head
    /// checks (body refusals and gateway errors included).
    pub duration: HistogramSnapshot,
    pub tls_ok: u64,
    /// Failed TLS handshakes by reason, in [`TLS_FAILURES`] order.
    pub tls_failed: [u64; TLS_FAILURES.len()],
    /// Keep-alive connections moved, between requests, from a worker whose CPU was
    /// contended to one with room (`crate::placement`).
    pub moved: u64,
}

impl Traffic {
    pub(crate) fn accepted(&self) {
        self.accepted.inc();
    }

    pub(crate) fn moved(&self) {
        self.moved.inc();
    }

    /// A response head went out for a request past the head checks, `elapsed` after it
    /// arrived.
    pub(crate) fn responded(&self, status: StatusCode, elapsed: Duration) {
        self.refused(status);
        self.duration.observe(elapsed);
    }

    /// A response the frontend answered itself before routing (a refusal; not timed).
    pub(crate) fn refused(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, CLASSES.len()) - 1;
        self.responses[class].inc();
    }

    /// A TLS handshake ended: `Ok` or the index of its reason in [`TLS_FAILURES`].
    pub fn handshake(&self, result: Result<(), usize>) {
        match result {
            Ok(()) => self.tls_ok.inc(),
            Err(i) => self.tls_failed[i.min(TLS_FAILURES.len() - 1)].inc(),
        }
    }

    pub fn snapshot(&self) -> TrafficSnapshot {
        TrafficSnapshot {
            accepted: self.accepted.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            responses: std::array::from_fn(|i| self.responses[i].get()),
            duration: self.duration.snapshot(),
            tls_ok: self.tls_ok.get(),
            tls_failed: std::array::from_fn(|i| self.tls_failed[i].get()),
            moved: self.moved.get(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A client connection whose bytes count in its frontend's [`Traffic`], and whose
    /// reads its [`Activity`] hears of (the start of a head).
    pub(super) struct Counted<IO> {
        #[pin]
        io: IO,
        stats: Arc<HttpStats>,
        activity: Arc<Activity>,
        read: u64,
        written: u64,
    }

    impl<IO> PinnedDrop for Counted<IO> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            flush(this.stats, this.read, this.written);
        }
    }
}

impl<IO> Counted<IO> {
    pub(super) fn new(io: IO, stats: Arc<HttpStats>, activity: Arc<Activity>) -> Self {
        Counted {
            io,
            stats,
            activity,
            read: 0,
            written: 0,
        }
    }

    pub(super) fn get_ref(&self) -> &IO {
        &self.io
    }

    pub(super) fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }
}

fn flush(stats: &HttpStats, read: &mut u64, written: &mut u64) {
    if *read > 0 {
        stats.traffic.bytes_in.add(std::mem::take(read));
    }
    if *written > 0 {
        stats.traffic.bytes_out.add(std::mem::take(written));
    }
}

fn wrote(stats: &HttpStats, read: &mut u64, written: &mut u64, r: &Poll<io::Result<usize>>) {
    if let Poll::Ready(Ok(n)) = r {
        *written += *n as u64;
        if *written >= FLUSH_BYTES {
            flush(stats, read, written);
        }
    }
}

impl<IO: AsyncRead> AsyncRead for Counted<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let r = this.io.poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.activity.on_read();
        }
        *this.read += n as u64;
        if *this.read >= FLUSH_BYTES {
            flush(this.stats, this.read, this.written);
        }
        r
    }
}

impl<IO: AsyncWrite> AsyncWrite for Counted<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let r = this.io.poll_write(cx, buf);
        wrote(this.stats, this.read, this.written, &r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let r = this.io.poll_write_vectored(cx, bufs);
        wrote(this.stats, this.read, this.written, &r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn status_classes_and_latency() {
        let t = Traffic::default();
        t.responded(StatusCode::OK, Duration::from_millis(2));
        t.responded(StatusCode::BAD_GATEWAY, Duration::from_millis(20));
        t.refused(StatusCode::TOO_MANY_REQUESTS);
        t.handshake(Err(0));
        t.handshake(Ok(()));
        let s = t.snapshot();
        assert_eq!(s.responses, [0, 1, 0, 1, 1]);
        assert_eq!(s.duration.count, 2, "refusals are not timed");
        assert_eq!((s.tls_ok, s.tls_failed), (1, [1, 0, 0]));
    }

    #[tokio::test]
    async fn bytes_each_way_are_counted_by_the_time_the_connection_ends() {
        let stats = Arc::new(HttpStats::default());
        let (client, server) = tokio::io::duplex(1 << 20);
        let activity = Arc::new(Activity::new(1));
        let mut counted = Counted::new(server, Arc::clone(&stats), activity);
        let mut client = client;
        client.write_all(&[7u8; 100_000]).await.unwrap();
        let mut buf = vec![0u8; 100_000];
        counted.read_exact(&mut buf).await.unwrap();
        counted.write_all(b"hello").await.unwrap();
        // The read passed the batch size: already visible before the connection ends.
        assert!(stats.traffic.snapshot().bytes_in >= FLUSH_BYTES);
        drop(counted);
        let s = stats.traffic.snapshot();
        assert_eq!((s.bytes_in, s.bytes_out), (100_000, 5));
    }
}
