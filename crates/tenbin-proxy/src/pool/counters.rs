//! Per-server traffic counters: what `/metrics` reports per pool and server. One set per
//! server id, kept across reconfiguration like the id itself; a lease carries its server's
//! set so the data path counts without the pool's lock.
//!
//! Dispatches are counted under the pool's lock, which every lease already takes, so they
//! add no contention of their own; failures and retries are counted from the lease.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::signal::Outcome;

/// Failure kinds, in [`ServerTraffic::failures`] order: the metric's `kind` label.
pub const FAILURE_KINDS: [&str; 4] = ["connect", "connect_timeout", "timeout", "server_error"];

/// One server's live counters.
#[derive(Debug, Default)]
pub struct ServerCounters {
    requests: AtomicU64,
    failures: [AtomicU64; FAILURE_KINDS.len()],
    retries: AtomicU64,
}

/// A server's counters as read: plain numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerTraffic {
    /// Sessions handed to the server (L7: request attempts, L4: connections or udp sessions).
    pub requests: u64,
    /// Failed attempts by kind, in [`FAILURE_KINDS`] order.
    pub failures: [u64; FAILURE_KINDS.len()],
    /// Failed attempts on this server that were retried on another one.
    pub retries: u64,
}

impl ServerCounters {
    pub(super) fn dispatched(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub(super) fn observe(&self, outcome: Outcome) {
        let i = match outcome {
            Outcome::ConnectFailed => 0,
            Outcome::ConnectTimeout => 1,
            Outcome::Timeout => 2,
            Outcome::ServerError => 3,
            Outcome::Success { .. } => return,
        };
        self.failures[i].fetch_add(1, Relaxed);
    }

    pub(super) fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    pub fn read(&self) -> ServerTraffic {
        ServerTraffic {
            requests: self.requests.load(Relaxed),
            failures: std::array::from_fn(|i| self.failures[i].load(Relaxed)),
            retries: self.retries.load(Relaxed),
        }
    }
}

impl ServerTraffic {
    /// Every failed attempt, whatever its kind.
    pub fn errors(&self) -> u64 {
        self.failures.iter().sum()
    }
}
