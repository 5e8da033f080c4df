//! A leased server: the RAII token for one session on one server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenbin_core::BackendId;
use tokio::time::Instant;

use super::counters::ServerCounters;
use super::signal::{Outcome, SignalSink};
use super::{Server, Shared};

/// One session's claim on a server. While it lives the server's active count includes it;
/// dropping it (or [`Lease::finish`]) completes the session in the balancer with a latency
/// sample and passes the slot to the next queued caller.
///
/// The latency reported on drop is the time since the lease was handed out unless
/// [`Lease::set_latency`] recorded a better sample (time to first byte for HTTP, connect
/// time for L4, whose session length says nothing about server speed).
pub struct Lease {
    shared: Option<Arc<Shared>>,
    server: Server,
    sink: Option<Arc<dyn SignalSink>>,
    counters: Arc<ServerCounters>,
    started: Instant,
    latency: Option<Duration>,
}

impl Lease {
    pub(super) fn new(
        shared: Arc<Shared>,
        server: Server,
        sink: Option<Arc<dyn SignalSink>>,
        counters: Arc<ServerCounters>,
    ) -> Self {
        Lease {
            shared: Some(shared),
            server,
            sink,
            counters,
            started: Instant::now(),
            latency: None,
        }
    }

    pub fn id(&self) -> BackendId {
        self.server.id
    }

    pub fn name(&self) -> &str {
        &self.server.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// When the lease was handed out.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records the latency sample reported when the lease ends.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = Some(latency);
    }

    /// Tells the passive health sink (and the server's counters) how this session went
    /// with this server.
    pub fn report(&self, outcome: Outcome) {
        self.counters.observe(outcome);
        if let (Some(sink), Some(shared)) = (&self.sink, &self.shared) {
            sink.observe(&shared.name, &self.server, outcome);
        }
    }

    /// Counts a failed attempt on this server that is being retried on another one.
    pub fn count_retry(&self) {
        self.counters.retried();
    }

    /// Ends the session now with an explicit latency sample.
    pub fn finish(mut self, latency: Option<Duration>) {
        self.latency = latency.or(self.latency);
        // Drop does the work.
    }

    /// Detaches the lease from the pool without completing it (the pool undid it itself).
    pub(super) fn defuse(&mut self) {
        self.shared = None;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let latency = self.latency.unwrap_or_else(|| self.started.elapsed());
            shared.complete(self.server.id, Some(latency));
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("server", &self.server)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}
