//! Writes batched per scheduler pass, as an event loop does them.
//!
//! HAProxy's loop receives on every ready socket and only then sends: one `epoll_wait`,
//! then a burst of `recv`, then a burst of `send`. A task-per-connection runtime instead
//! sends the moment each task has something to say, spread among the receives of the other
//! tasks; the peer on the other end (a backend, or the load generator) drains each write as
//! it lands, goes back to sleep and is woken again by the next one. On loopback every such
//! wake-up is paid by the sender, in `sock_def_readable`. [`Batched`] holds a write back
//! until the runtime has polled the other tasks that were ready, so the writes of one pass
//! leave together and the peer wakes once per burst: with one worker and 64 keep-alive
//! clients through mode http, the backends slept 205 times per 1000 requests before and 115
//! after (HAProxy: 105), and the client 105 times before and 65 after (HAProxy: 45).
//!
//! On a worker runtime the pass costs no second poll: small writes go to the worker's
//! flusher ([`flush`]), which sends them all after the pass: mode tcp's userspace relay
//! (each chunk up to `l4::copy::BATCHED_UP_TO`), [`Batched`] over a plain TCP client
//! connection, and mode http's bodiless upstream requests. Elsewhere a write waits a
//! [`pass`]; the splice relay moves bytes without waiting.
//!
//! It also gathers small vectored writes (hyper's response head and a short body) into one
//! `send` instead of a `writev`, which costs a pass through the VFS layer per call.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) mod flush;

use flush::Outbox;

/// How much a client connection's writes of one pass may gather in its outbox.
const OFFER_UP_TO: usize = 4 * GATHER;

/// Vectored writes up to this size are copied into one buffer and sent with one `send`.
pub(crate) const GATHER: usize = 4096;

thread_local! {
    /// The buffer small vectored writes are gathered in: one per worker thread, kept warm
    /// and never cleared to zero (a fresh array per write would be).
    static GATHERED: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(GATHER));
}

pin_project_lite::pin_project! {
    /// A stream whose writes each wait for one pass of the scheduler; reads, flushes and
    /// shutdowns pass straight through. With an outbox (a plain TCP socket on a worker
    /// runtime, [`Batched::with_outlet`]) small writes are queued for the worker's flusher
    /// instead and complete at once: the task goes on to its next read without a second
    /// poll, a flush leaves a queued chunk to the flusher, and a shutdown sends it first.
    #[derive(Debug)]
    pub struct Batched<IO> {
        // Declared first, so dropped first: what it holds goes out while `io` is open.
        outbox: Option<Outbox>,
        #[pin]
        io: IO,
        // Whether the pending write already waited its pass.
        waited: bool,
    }
}

impl<IO> Batched<IO> {
    /// Without an outbox: every write waits its pass.
    #[cfg(test)]
    pub fn new(io: IO) -> Self {
        Batched {
            outbox: None,
            io,
            waited: false,
        }
    }

    /// As [`Batched::new`], with an outbox on `fd`, the descriptor of `io`'s socket (which
    /// `io` keeps open), when the runtime has a flusher.
    pub fn with_outlet(io: IO, fd: Option<RawFd>) -> Self {
        Batched {
            outbox: fd.and_then(Outbox::new),
            io,
            waited: false,
        }
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncWrite + Unpin> Batched<IO> {
    /// Sends or writes whatever the outbox holds, waiting for the socket if it must: before
    /// the socket changes hands.
    pub async fn settle(&mut self) -> io::Result<()> {
        let Some(o) = self.outbox.as_ref() else {
            return Ok(());
        };
        std::future::poll_fn(|cx| o.poll_settle(cx, Pin::new(&mut self.io), true)).await
    }
}

/// The first call for a write wakes the task and asks it to come back: a task that wakes
/// itself goes to the back of its runtime's queue, behind every task already ready.
fn wait_pass(waited: &mut bool, cx: &mut Context<'_>) -> bool {
    if *waited {
        *waited = false;
        return false;
    }
    *waited = true;
    cx.waker().wake_by_ref();
    true
}

/// Resolves at the task's next poll, after one pass of the scheduler: what [`Batched`] does
/// before a write, for a loop that writes with `write_all` (`l4::copy`).
pub(crate) async fn pass() {
    let mut waited = false;
    std::future::poll_fn(|cx| {
        if wait_pass(&mut waited, cx) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}

impl<IO: AsyncRead + AsyncWrite> AsyncRead for Batched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        // A chunk the flusher handed back goes on before the next read; waiting for the
        // socket is left to the write's own wake-up.
        if let Some(o) = this.outbox.as_ref().filter(|o| o.came_back()) {
            if let Poll::Ready(Err(e)) = o.poll_settle(cx, this.io.as_mut(), false) {
                return Poll::Ready(Err(e));
            }
        }
        this.io.poll_read(cx, buf)
    }
}

/// Queues `bufs` (`len` bytes) in `outbox`, settling it first if it must: `None` when the
/// write is too big to queue and goes straight to the socket.
fn offer<IO: AsyncWrite>(
    outbox: &Outbox,
    cx: &mut Context<'_>,
    mut io: Pin<&mut IO>,
    bufs: &[IoSlice<'_>],
    len: usize,
) -> Option<Poll<io::Result<usize>>> {
    if len <= GATHER && outbox.offer(cx, bufs, OFFER_UP_TO) {
        return Some(Poll::Ready(Ok(len)));
    }
    match outbox.poll_settle(cx, io.as_mut(), true) {
        Poll::Pending => return Some(Poll::Pending),
        Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
        Poll::Ready(Ok(())) => {}
    }
    if len <= GATHER && outbox.offer(cx, bufs, OFFER_UP_TO) {
        return Some(Poll::Ready(Ok(len)));
    }
    None
}

impl<IO: AsyncWrite> AsyncWrite for Batched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut this = self.project();
        if let Some(o) = this.outbox.as_ref() {
            if let Some(r) = offer(o, cx, this.io.as_mut(), &[IoSlice::new(buf)], buf.len()) {
                return r;
            }
            return this.io.poll_write(cx, buf);
        }
        if wait_pass(this.waited, cx) {
            return Poll::Pending;
        }
        let r = this.io.poll_write(cx, buf);
        // Not written: the next attempt need not wait another pass.
        *this.waited = r.is_pending();
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut this = self.project();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if let Some(o) = this.outbox.as_ref() {
            if let Some(r) = offer(o, cx, this.io.as_mut(), bufs, total) {
                return r;
            }
            return this.io.poll_write_vectored(cx, bufs);
        }
        if wait_pass(this.waited, cx) {
            return Poll::Pending;
        }
        let gathered = (bufs.len() > 1 && total <= GATHER)
            .then(|| {
                GATHERED.with(|flat| {
                    let mut flat = flat.try_borrow_mut().ok()?;
                    flat.clear();
                    for b in bufs {
                        flat.extend_from_slice(b);
                    }
                    Some(this.io.as_mut().poll_write(cx, &flat))
                })
            })
            .flatten();
        let r = match gathered {
            Some(r) => r,
            None => this.io.as_mut().poll_write_vectored(cx, bufs),
        };
        *this.waited = r.is_pending();
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if let Some(o) = this.outbox.as_ref() {
            ready!(o.poll_settle(cx, this.io.as_mut(), false))?;
        }
        this.io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if let Some(o) = this.outbox.as_ref() {
            ready!(o.poll_settle(cx, this.io.as_mut(), true))?;
        }
        this.io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{poll_fn, Future};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use tokio::io::AsyncReadExt;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_write_waits_one_pass_and_then_goes_out_whole() {
        let (a, _b) = tokio::io::duplex(64);
        let mut w = Batched::new(a);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Arc::clone(&count).into();
        let mut cx = Context::from_waker(&waker);
        let bufs = [IoSlice::new(b"head "), IoSlice::new(b"body")];
        let first = Pin::new(&mut w).poll_write_vectored(&mut cx, &bufs);
        assert!(first.is_pending());
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "it woke its own task");
        let second = Pin::new(&mut w).poll_write_vectored(&mut cx, &bufs);
        assert!(matches!(second, Poll::Ready(Ok(9))), "{second:?}");
        // The next write waits its own pass.
        assert!(Pin::new(&mut w).poll_write(&mut cx, b"x").is_pending());
    }

    #[test]
    fn a_pass_wakes_its_task_once_and_is_over_at_the_next_poll() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Arc::clone(&count).into();
        let mut cx = Context::from_waker(&waker);
        let mut p = std::pin::pin!(pass());
        assert!(p.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "it woke its own task");
        assert!(p.as_mut().poll(&mut cx).is_ready());
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn bytes_arrive_in_order_through_a_full_pipe() {
        let (a, mut b) = tokio::io::duplex(8);
        let mut w = Batched::new(a);
        let writer = tokio::spawn(async move {
            let data: Vec<u8> = (0..200u8).collect();
            let mut sent = 0;
            while sent < data.len() {
                let parts = [
                    IoSlice::new(&data[sent..(sent + 3).min(data.len())]),
                    IoSlice::new(&[]),
                ];
                sent += poll_fn(|cx| Pin::new(&mut w).poll_write_vectored(cx, &parts))
                    .await
                    .unwrap();
            }
        });
        let mut got = vec![0u8; 200];
        b.read_exact(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, (0..200u8).collect::<Vec<_>>());
    }

    /// Through the worker's flusher: small writes complete at once, the socket fills, a
    /// chunk comes back and is written by the next write, and every byte arrives in order
    /// before the shutdown's end of stream.
    #[tokio::test]
    async fn queued_writes_through_a_full_socket_arrive_in_order_then_the_end() {
        use std::os::fd::AsRawFd;
        use tokio::io::AsyncWriteExt;
        let (a, mut b) = tenbin_testkit::backend::tcp_pair().await;
        let fd = a.as_raw_fd();
        let mut w = Batched::with_outlet(a, Some(fd));
        assert!(w.outbox.is_some(), "a current-thread runtime has a flusher");
        let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 253) as u8).collect();
        let (mut came_back, mut written) = (false, 0);
        // 1000-byte writes, each its own pass, while nothing reads: the socket fills.
        for piece in data.chunks(1000) {
            w.write_all(piece).await.unwrap();
            w.flush().await.unwrap();
            written += piece.len();
            tokio::task::yield_now().await;
            came_back = w.outbox.as_ref().unwrap().came_back();
            if came_back {
                break;
            }
        }
        assert!(came_back, "a full socket handed a chunk back");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.map(|_| got)
        });
        // The next write finishes the one that came back first.
        w.write_all(b"last").await.unwrap();
        w.shutdown().await.unwrap();
        drop(w);
        let got = reader.await.unwrap().unwrap();
        assert_eq!(got.len(), written + 4);
        assert!(
            got[..written] == data[..written],
            "bytes differ or out of order"
        );
        assert_eq!(&got[written..], b"last");
    }
}
