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
//! Mode tcp's userspace relay hands each small chunk (`l4::copy::BATCHED_UP_TO`) to its
//! worker's flusher (`l4::flush`), which sends them all after the pass, or where it has no
//! flusher waits a [`pass`] before the write; the splice relay moves bytes without waiting.
//!
//! It also gathers small vectored writes (hyper's response head and a short body) into one
//! `send` instead of a `writev`, which costs a pass through the VFS layer per call.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Vectored writes up to this size are copied into one buffer and sent with one `send`.
pub(crate) const GATHER: usize = 4096;

thread_local! {
    /// The buffer small vectored writes are gathered in: one per worker thread, kept warm
    /// and never cleared to zero (a fresh array per write would be).
    static GATHERED: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(GATHER));
}

pin_project_lite::pin_project! {
    /// A stream whose writes each wait for one pass of the scheduler; reads, flushes and
    /// shutdowns pass straight through.
    #[derive(Debug)]
    pub struct Batched<IO> {
        #[pin]
        io: IO,
        // Whether the pending write already waited its pass.
        waited: bool,
    }
}

impl<IO> Batched<IO> {
    pub fn new(io: IO) -> Self {
        Batched { io, waited: false }
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
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

impl<IO: AsyncRead> AsyncRead for Batched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite> AsyncWrite for Batched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
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
        if wait_pass(this.waited, cx) {
            return Poll::Pending;
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
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
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
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
}
