//! Small writes sent by one flusher per worker, after the pass that produced them.
//!
//! [`crate::batch::pass`] holds a small write back for one scheduler pass by waking the
//! writer's own task: the writes of a pass leave together, but every request and every
//! answer costs the task a second poll of its whole future just to write. An [`Outbox`]
//! instead copies the bytes into its slot and queues the slot with the worker's flusher
//! task; the first write of a pass wakes it, so it runs after every task that was ready, and
//! sends every queued chunk in one go, as an event loop's send burst after its receive
//! burst. The writer goes straight on to its next read. Three writers have one: each
//! direction of mode tcp's userspace relay (`l4::copy`), a plain client connection of mode
//! http ([`crate::batch::Batched`]: responses) and an upstream connection of mode http
//! (`http::upstream`: bodiless requests).
//!
//! Only a chunk the socket would not take whole, or an error, comes back to the writer (its
//! task is woken and it writes the rest through the runtime, waiting for the socket as any
//! write does). A writer that needs its slot while the chunk is still queued (a write that
//! does not fit, a bulk write, a pause, a shutdown, the end) sends it there and then, so it
//! never waits for the flusher: the flusher only ever saves a task a poll, and wakes one
//! only to hand a chunk back. An outbox dropped with bytes held sends what the socket takes
//! at once.
//!
//! Worker runtimes are current-thread, so a writer, its slot and the flusher run on one
//! thread and never at once: the flusher only sends on a slot still queued, and an
//! [`Outbox`] marks its slot gone when dropped, before its socket can close. On any other
//! runtime there is no outbox and writes wait a `pass`.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use tokio::io::AsyncWrite;

const EMPTY: u8 = 0;
/// Handed to the flusher, which has not sent it yet.
const QUEUED: u8 = 1;
/// The socket did not take it all: the rest is the relay's to write.
const BACK: u8 = 2;
const FAILED: u8 = 3;
/// Its outbox was dropped: the descriptor may be closed.
const GONE: u8 = 4;

#[derive(Debug)]
struct Slot {
    fd: RawFd,
    state: AtomicU8,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    bytes: Vec<u8>,
    error: Option<io::Error>,
    /// The relay's task, woken when its chunk comes back or failed.
    task: Option<Waker>,
}

impl Slot {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends what is queued, without waiting for the socket: the flusher's part, or the
    /// relay's when it needs the slot before the flusher ran. Returns whether it sent all.
    fn flush(&self) -> bool {
        let mut held = self.held();
        if self.state.load(Ordering::Acquire) != QUEUED {
            return true;
        }
        let state = match send(self.fd, &held.bytes) {
            Ok(n) if n == held.bytes.len() => {
                held.bytes.clear();
                EMPTY
            }
            Ok(n) => {
                held.bytes.drain(..n);
                BACK
            }
            Err(e) => {
                held.error = Some(e);
                FAILED
            }
        };
        self.state.store(state, Ordering::Release);
        state == EMPTY
    }

    /// The flusher's [`Slot::flush`]: a relay whose chunk came back or failed must finish the
    /// write or learn of the error, so its task is woken.
    fn flush_and_tell(&self) {
        if !self.flush() {
            if let Some(task) = &self.held().task {
                task.wake_by_ref();
            }
        }
    }
}

/// Keeps the waker of `cx` in `at`, cloning it only when it changed.
fn keep(at: &mut Option<Waker>, cx: &Context<'_>) {
    if !at.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *at = Some(cx.waker().clone());
    }
}

/// Sends as much of `bytes` as the socket takes now: all of it, or the part before it would
/// block.
fn send(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        match nix::sys::socket::send(fd, &bytes[sent..], flags) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => break,
            Err(_) if sent > 0 => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sent)
}

/// One direction's small writes to one socket, sent by the worker's flusher.
#[derive(Debug)]
pub(crate) struct Outbox {
    slot: Arc<Slot>,
}

impl Outbox {
    /// An outbox for the socket `fd`, which must stay open as long as the outbox lives; none
    /// unless this is a current-thread runtime (see the module docs).
    pub(crate) fn new(fd: RawFd) -> Option<Outbox> {
        let flavor = tokio::runtime::Handle::try_current().ok()?.runtime_flavor();
        (flavor == tokio::runtime::RuntimeFlavor::CurrentThread).then(|| Outbox {
            slot: Arc::new(Slot {
                fd,
                state: AtomicU8::new(EMPTY),
                held: Mutex::default(),
            }),
        })
    }

    /// Resolves once a chunk came back or failed: race it against the direction's read, so
    /// the relay finishes the write (or ends) instead of waiting for more input.
    pub(crate) fn returned(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|_| {
            if self.came_back() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.slot.state.load(Ordering::Acquire) == EMPTY
    }

    /// Whether a chunk came back or failed.
    pub(crate) fn came_back(&self) -> bool {
        matches!(self.slot.state.load(Ordering::Acquire), BACK | FAILED)
    }

    /// Queues `bufs` for the flusher if nothing is held, or adds them to a queued chunk
    /// while it stays under `cap`; false (nothing taken) otherwise: settle first.
    pub(crate) fn offer(&self, cx: &Context<'_>, bufs: &[IoSlice<'_>], cap: usize) -> bool {
        match self.slot.state.load(Ordering::Acquire) {
            EMPTY => {
                self.queue(cx, bufs);
                true
            }
            QUEUED => {
                let mut held = self.slot.held();
                let len: usize = bufs.iter().map(|b| b.len()).sum();
                if held.bytes.len() + len > cap {
                    return false;
                }
                for b in bufs {
                    held.bytes.extend_from_slice(b);
                }
                keep(&mut held.task, cx);
                true
            }
            _ => false,
        }
    }

    /// Queues `bytes` for the flusher, once the chunk before them is out.
    pub(crate) async fn send<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        bytes: &[u8],
    ) -> io::Result<()> {
        self.settle(w).await?;
        std::future::poll_fn(|cx| {
            self.queue(cx, &[IoSlice::new(bytes)]);
            Poll::Ready(())
        })
        .await;
        Ok(())
    }

    fn queue(&self, cx: &Context<'_>, bufs: &[IoSlice<'_>]) {
        {
            let mut held = self.slot.held();
            for b in bufs {
                held.bytes.extend_from_slice(b);
            }
            keep(&mut held.task, cx);
            self.slot.state.store(QUEUED, Ordering::Release);
        }
        enqueue(Arc::clone(&self.slot));
    }

    /// Waits until nothing is held: the flusher sent it, or the relay sends it now (still
    /// queued, the flusher will pass it by) or writes what came back through `w`. Before a
    /// bulk write, a shutdown, a pause, the end. Never waits for the flusher.
    pub(crate) async fn settle<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_settle(cx, Pin::new(&mut *w), true)).await
    }

    /// [`Outbox::settle`] as a poll: writes what came back through `w` and reports a failed
    /// send; a chunk still queued is sent now if `queued_too`, else left to the flusher.
    pub(crate) fn poll_settle<W: AsyncWrite + ?Sized>(
        &self,
        cx: &mut Context<'_>,
        mut w: Pin<&mut W>,
        queued_too: bool,
    ) -> Poll<io::Result<()>> {
        loop {
            match self.slot.state.load(Ordering::Acquire) {
                EMPTY => return Poll::Ready(Ok(())),
                QUEUED if !queued_too => return Poll::Ready(Ok(())),
                QUEUED => {
                    self.slot.flush();
                }
                BACK => {
                    let mut held = self.slot.held();
                    while !held.bytes.is_empty() {
                        match ready!(w.as_mut().poll_write(cx, &held.bytes))? {
                            0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                            n => drop(held.bytes.drain(..n)),
                        }
                    }
                    self.slot.state.store(EMPTY, Ordering::Release);
                }
                _ => {
                    let e = self.slot.held().error.take();
                    self.slot.state.store(EMPTY, Ordering::Release);
                    let e = e.unwrap_or_else(|| io::ErrorKind::BrokenPipe.into());
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

/// A chunk still held when its outbox goes (a connection closed, a session cancelled) is
/// sent as far as the socket takes it now; the flusher then passes the slot by.
impl Drop for Outbox {
    fn drop(&mut self) {
        let mut held = self.slot.held();
        if matches!(self.slot.state.load(Ordering::Acquire), QUEUED | BACK) {
            let _ = send(self.slot.fd, &held.bytes);
        }
        self.slot.state.store(GONE, Ordering::Release);
        held.bytes = Vec::new();
        held.task = None;
    }
}

/// The slots queued on this thread since the flusher last ran, and the flusher.
#[derive(Default)]
struct Queue {
    slots: Vec<Arc<Slot>>,
    flusher: Option<Waker>,
    running: bool,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Hands a slot to this thread's flusher: the first of a pass wakes it (it left its waker
/// when it found the queue empty), and the first ever (on this runtime) starts it.
fn enqueue(slot: Arc<Slot>) {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.slots.push(slot);
        if !q.running {
            q.running = true;
            // The guard travels in the task, so it clears the queue even if the runtime
            // drops the task before its first poll.
            let running = Running;
            tokio::spawn(async move {
                let _running = running;
                flusher().await
            });
        } else if let Some(flusher) = q.flusher.take() {
            flusher.wake();
        }
    });
}

/// Clears the thread's queue when the flusher task goes (its runtime shut down), so the
/// next runtime on this thread starts its own.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        let _ = QUEUE.try_with(|q| {
            if let Ok(mut q) = q.try_borrow_mut() {
                *q = Queue::default();
            }
        });
    }
}

/// The worker's flusher: each time it runs, it sends every chunk queued since it last ran.
async fn flusher() {
    let mut batch: Vec<Arc<Slot>> = Vec::new();
    std::future::poll_fn(|cx| loop {
        let more = QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            if q.slots.is_empty() {
                keep(&mut q.flusher, cx);
                return false;
            }
            std::mem::swap(&mut q.slots, &mut batch);
            true
        });
        if !more {
            return Poll::<()>::Pending;
        }
        for slot in batch.drain(..) {
            slot.flush_and_tell();
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use tenbin_testkit::backend::tcp_pair as pair;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn queued_chunks_arrive_whole_and_in_order() {
        let (mut a, mut b) = pair().await;
        let out = Outbox::new(a.as_raw_fd()).expect("a current-thread runtime");
        let mut want = Vec::new();
        for i in 0..200u32 {
            let chunk = format!("chunk {i};").into_bytes();
            out.send(&mut a, &chunk).await.unwrap();
            want.extend_from_slice(&chunk);
        }
        out.settle(&mut a).await.unwrap();
        let mut got = vec![0u8; want.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_chunk_the_socket_will_not_take_comes_back_and_is_written_in_full() {
        let (mut a, mut b) = pair().await;
        let out = Outbox::new(a.as_raw_fd()).unwrap();
        // The peer reads nothing, so the send buffers fill: some chunk comes back.
        let chunk = vec![5u8; 4096];
        let mut queued = 0usize;
        let mut came_back = false;
        while !came_back && queued < 64 * 1024 * 1024 {
            out.send(&mut a, &chunk).await.unwrap();
            queued += chunk.len();
            tokio::task::yield_now().await;
            came_back = out.slot.state.load(Ordering::Acquire) == BACK;
        }
        assert!(came_back, "a full socket gave the chunk back");
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; queued];
            b.read_exact(&mut got).await.map(|_| got)
        });
        out.settle(&mut a).await.unwrap();
        let got = reader.await.unwrap().unwrap();
        assert!(got.iter().all(|&x| x == 5));
    }

    #[tokio::test]
    async fn a_send_to_a_reset_peer_fails_at_the_next_settle() {
        let (mut a, b) = pair().await;
        // RST on close: the peer is gone, not just finished.
        b.set_zero_linger().unwrap();
        drop(b);
        let out = Outbox::new(a.as_raw_fd()).unwrap();
        let mut failed = None;
        for _ in 0..100 {
            let sent = out.send(&mut a, b"after the reset").await;
            tokio::task::yield_now().await;
            if let Err(e) = sent.and(out.settle(&mut a).await) {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("the reset surfaced as an error");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_dropped_outbox_sends_its_queued_chunk_on_the_way_out() {
        let (a, mut b) = pair().await;
        let dropped = Outbox::new(a.as_raw_fd()).unwrap();
        std::future::poll_fn(|cx| {
            dropped.queue(
                cx,
                &[IoSlice::new(b"queued, "), IoSlice::new(b"then dropped")],
            );
            Poll::Ready(())
        })
        .await;
        drop(dropped);
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"queued, then dropped");
    }

    #[tokio::test]
    async fn offered_writes_join_a_queued_chunk_up_to_the_cap() {
        let (a, mut b) = pair().await;
        let out = Outbox::new(a.as_raw_fd()).unwrap();
        let taken = std::future::poll_fn(|cx| {
            let first = out.offer(cx, &[IoSlice::new(b"head;")], 16);
            let second = out.offer(cx, &[IoSlice::new(b"body;")], 16);
            let over = out.offer(cx, &[IoSlice::new(b"too long to fit")], 16);
            Poll::Ready((first, second, over))
        })
        .await;
        assert_eq!(taken, (true, true, false));
        let mut got = [0u8; 10];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"head;body;");
        drop(out);
        drop(a);
    }

    #[test]
    fn no_outbox_on_a_multi_thread_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(async { assert!(Outbox::new(0).is_none()) });
        assert!(Outbox::new(0).is_none(), "nor outside a runtime");
    }
}
