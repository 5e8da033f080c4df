//! Waiting on a `CancellationToken` without touching it on every poll.
//!
//! Every connection task selects between its work and its frontend's tokens, and so do the
//! accept loops and the UDP receive loop, so each wake-up (a read, a write, an upstream
//! response, an accept, a datagram) used to poll the token's `WaitForCancellationFuture`
//! too. That poll locks the token's tree node (for
//! `is_cancelled`) and, once waiting, the waiter list of the token's `Notify`: two mutexes
//! shared by every connection of the frontend on every worker thread, taken a few times per
//! request (once per datagram on UDP), so their cache lines moved between cores all the
//! time with two workers.
//!
//! [`Cancelled`] polls the token's future once, to register, and afterwards only when the
//! token itself woke it; any other poll costs an atomic swap and a waker check on the
//! connection's own state. [`OnWake`] does the same for any future a connection watches
//! beside its work (its idle timer, its reset budget).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Resolves once `token` is cancelled (at once if it already is).
pub(crate) type Cancelled = OnWake<WaitForCancellationFutureOwned>;

impl Cancelled {
    pub(crate) fn cancelled(token: CancellationToken) -> Cancelled {
        OnWake::new(token.cancelled_owned())
    }
}

/// A future polled once to register and afterwards only when it woke its task itself; a
/// poll that anything else caused returns `Pending` after an atomic swap.
pub(crate) struct OnWake<F> {
    inner: Pin<Box<F>>,
    hook: Arc<Hook>,
    /// The inner future has been polled (and so has its waker where it will wake).
    armed: bool,
}

/// The waker the inner future is polled with: it notes that the future woke, then wakes
/// the task that polled [`OnWake`] last.
#[derive(Default)]
struct Hook {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Hook {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> OnWake<F> {
    pub(crate) fn new(inner: F) -> OnWake<F> {
        OnWake {
            inner: Box::pin(inner),
            hook: Arc::default(),
            armed: false,
        }
    }
}

impl<F: Future> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Before the check: a wake-up from here on reaches this task.
        this.hook.task.register(cx.waker());
        if this.armed && !this.hook.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.armed = true;
        let waker = Waker::from(Arc::clone(&this.hook));
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn resolves_on_cancel_after_many_idle_polls() {
        let token = CancellationToken::new();
        let mut wait = Cancelled::cancelled(token.clone());
        // Polled often while the token stays put, as a busy connection polls it.
        for _ in 0..100 {
            assert!(futures_poll(&mut wait).is_pending());
        }
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            t.cancel();
        });
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("woken by the cancel");
    }

    #[tokio::test]
    async fn resolves_at_once_when_already_cancelled_and_through_a_parent() {
        let token = CancellationToken::new();
        token.cancel();
        assert!(futures_poll(&mut Cancelled::cancelled(token)).is_ready());

        let parent = CancellationToken::new();
        let mut wait = Cancelled::cancelled(parent.child_token());
        assert!(futures_poll(&mut wait).is_pending());
        parent.cancel();
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("woken by the parent's cancel");
    }

    fn futures_poll(f: &mut Cancelled) -> Poll<()> {
        Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
    }
}
