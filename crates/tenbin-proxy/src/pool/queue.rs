//! The bounded FIFO of callers waiting for a free server slot.

use std::collections::VecDeque;

use tenbin_core::BackendId;
use tokio::sync::oneshot;

use super::Lease;

/// One queued caller: its pick inputs and the channel its lease arrives on.
#[derive(Debug)]
pub(super) struct Waiter {
    seq: u64,
    pub(super) key: Option<u64>,
    pub(super) exclude: Vec<BackendId>,
    tx: oneshot::Sender<Lease>,
}

impl Waiter {
    pub(super) fn new(
        key: Option<u64>,
        exclude: Vec<BackendId>,
    ) -> (Self, oneshot::Receiver<Lease>) {
        let (tx, rx) = oneshot::channel();
        (
            Waiter {
                seq: 0,
                key,
                exclude,
                tx,
            },
            rx,
        )
    }

    /// The caller gave up (timed out or was cancelled).
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Hands the lease over; gives it back if the caller is gone.
    // The error is the lease itself, returned as the oneshot channel does, on a rare path.
    #[allow(clippy::result_large_err)]
    pub(super) fn send(self, lease: Lease) -> Result<(), Lease> {
        self.tx.send(lease)
    }
}

#[derive(Debug, Default)]
pub(super) struct WaitQueue {
    waiters: VecDeque<Waiter>,
    next_seq: u64,
}

impl WaitQueue {
    pub(super) fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Appends a waiter and returns its sequence number (for removal on timeout).
    pub(super) fn push(&mut self, mut w: Waiter) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        w.seq = seq;
        self.waiters.push_back(w);
        seq
    }

    pub(super) fn get(&self, i: usize) -> Option<&Waiter> {
        self.waiters.get(i)
    }

    pub(super) fn take(&mut self, i: usize) -> Option<Waiter> {
        self.waiters.remove(i)
    }

    pub(super) fn remove(&mut self, seq: u64) {
        self.waiters.retain(|w| w.seq != seq);
    }

    /// Forgets callers that stopped waiting (cancelled futures).
    pub(super) fn purge_closed(&mut self) {
        self.waiters.retain(|w| !w.is_closed());
    }
}
