//! The one picking interface every tier uses.
//!
//! A [`Balancer`] owns a pool's per-server state (state, effective weight, active count,
//! latency average), keyed by [`BackendId`] so it survives reconfiguration, and picks a server
//! for a new session. Time and randomness come in through [`PickContext`]; the balancer never
//! reads a clock or owns an RNG.
//!
//! Selection is two-staged, the same for every algorithm:
//! 1. priority/overflow: the lowest `group` that has an eligible server wins (eligible: state
//!    accepts new sessions, effective weight > 0, below `maxconn`, not excluded by the caller);
//! 2. the pool's [`Algorithm`] picks inside that group.
//!
//! Callers report `on_dispatch` when a session starts and `on_complete` when it ends (with the
//! observed latency, for the latency-aware algorithms).

use std::collections::HashMap;
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
    /// Fewest active sessions relative to weight (`active / weight`); with equal weights this
    /// is plain least connections.
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

/// A pool's balancer. See the module docs for the selection rules.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    servers: Vec<ServerView>,
    index: HashMap<BackendId, usize>,
    cursor: usize,
}

impl Balancer {
    pub fn new(algorithm: Algorithm, specs: Vec<ServerSpec>) -> Self {
        let mut b = Balancer {
            algorithm,
            servers: Vec::new(),
            index: HashMap::new(),
            cursor: 0,
        };
        b.update_servers(specs);
        b
    }

    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// Replaces the server set. Servers whose id survives keep their state, counts and
    /// averages; new ones start `Unchecked`.
    pub fn update_servers(&mut self, specs: Vec<ServerSpec>) {
        let old: HashMap<BackendId, ServerView> =
            self.servers.drain(..).map(|s| (s.spec.id, s)).collect();
        self.servers = specs
            .into_iter()
            .map(|spec| match old.get(&spec.id) {
                Some(prev) => ServerView {
                    spec,
                    ..prev.clone()
                },
                None => ServerView {
                    spec,
                    state: ServerState::Unchecked,
                    active: 0,
                    load_factor: 100,
                },
            })
            .collect();
        self.index = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.spec.id, i))
            .collect();
    }

    pub fn servers(&self) -> &[ServerView] {
        &self.servers
    }

    pub fn server(&self, id: BackendId) -> Option<&ServerView> {
        self.index.get(&id).map(|&i| &self.servers[i])
    }

    pub fn set_state(&mut self, id: BackendId, state: ServerState, _now: Duration) {
        if let Some(&i) = self.index.get(&id) {
            self.servers[i].state = state;
        }
    }

    /// Agent/SNMP-style reported capacity, in percent of the configured weight.
    pub fn set_load_factor(&mut self, id: BackendId, percent: u32) {
        if let Some(&i) = self.index.get(&id) {
            self.servers[i].load_factor = percent;
        }
    }

    /// Picks a server for a new session, or `None` when no server is eligible in any group.
    pub fn pick(&mut self, ctx: &mut PickContext<'_>) -> Option<BackendId> {
        let group = self
            .servers
            .iter()
            .filter(|s| eligible(s, ctx.exclude))
            .map(|s| s.spec.group)
            .min()?;
        let n = self.servers.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let s = &self.servers[i];
            if s.spec.group == group && eligible(s, ctx.exclude) {
                self.cursor = (i + 1) % n;
                return Some(s.spec.id);
            }
        }
        None
    }

    /// Whether a persisted session may still go to `id` (active or draining, below maxconn).
    pub fn accepts_persisted(&self, id: BackendId) -> bool {
        self.server(id).is_some_and(|s| {
            s.state.accepts_persisted() && s.spec.maxconn.is_none_or(|m| s.active < m)
        })
    }

    /// A session started on `id`.
    pub fn on_dispatch(&mut self, id: BackendId) {
        if let Some(&i) = self.index.get(&id) {
            self.servers[i].active += 1;
        }
    }

    /// A session on `id` ended; `latency` feeds the latency-aware algorithms.
    pub fn on_complete(&mut self, id: BackendId, _latency: Option<Duration>, _now: Duration) {
        if let Some(&i) = self.index.get(&id) {
            let s = &mut self.servers[i];
            s.active = s.active.saturating_sub(1);
        }
    }
}

fn eligible(s: &ServerView, exclude: &[BackendId]) -> bool {
    s.state.accepts_new()
        && s.spec.weight.get() > 0
        && s.load_factor > 0
        && s.spec.maxconn.is_none_or(|m| s.active < m)
        && !exclude.contains(&s.spec.id)
}
