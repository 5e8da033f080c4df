//! The picking vocabulary: which algorithm, what a pick is given, what a server looks like
//! to the balancer.

use std::time::Duration;

use rand_core::RngCore;

use crate::backend::{BackendId, ServerSpec, ServerState};

/// Which algorithm picks inside a priority group.
#[derive(Clone, Debug, PartialEq)]
pub enum Algorithm {
    /// Plain rotation; weights are ignored.
    RoundRobin,
    /// NGINX's smooth weighted round robin: interleaved, never bursting.
    WeightedRoundRobin,
    /// Fewest active sessions relative to weight (`(active + 1) / weight`, so an idle heavy
    /// server beats an idle light one); with equal weights this is plain least connections.
    /// Ties go to the server picked longest ago. `O(log n)` per pick.
    LeastConn,
    /// Peak-EWMA of observed latency (times active+1), power of two choices (linkerd).
    PeakEwma { decay: Duration },
    /// Power of two choices on `weight / (active + 1)^bias` (Envoy's least request).
    LeastRequest { bias: f64 },
    /// Consistent hashing of the caller's key through a Maglev table of `table_size` (prime).
    Maglev { table_size: u32 },
    /// Consistent hashing of the caller's key on a ketama ring (for comparison).
    Ketama,
    /// Source-address hashing: the caller's key is its masked source address hashed
    /// ([`crate::pick::source_key`]); placed through Maglev so it is consistent.
    SourceHash,
}

/// What one pick needs from the outside world.
pub struct PickContext<'a> {
    pub now: Duration,
    /// The hashing algorithms' input (source address, cookie, header...). Ignored by others;
    /// a hashing algorithm with no key falls back to random choice among eligible servers.
    pub key: Option<u64>,
    /// Servers this request already tried (retries go elsewhere).
    pub exclude: &'a [BackendId],
    pub rng: &'a mut dyn RngCore,
}

impl std::fmt::Debug for PickContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickContext")
            .field("now", &self.now)
            .field("key", &self.key)
            .field("exclude", &self.exclude)
            .finish_non_exhaustive()
    }
}

/// One server as the balancer tracks it.
#[derive(Clone, Debug)]
pub struct ServerView {
    pub spec: ServerSpec,
    pub state: ServerState,
    /// Sessions dispatched and not yet completed.
    pub active: u32,
    /// Agent/SNMP-reported capacity in percent of the configured weight (100 = as configured).
    pub load_factor: u32,
}
