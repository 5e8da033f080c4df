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
//!
//! # Effective weight
//!
//! Every weighted algorithm uses `weight x load_factor% x slow-start ramp`
//! ([`SlowStart`], set with [`Balancer::set_slow_start`], counted from the server's last move
//! to `Active`). The hashing algorithms place by `weight x load_factor%` and apply the ramp
//! by key admission instead (a ramping server takes a growing, stable fraction of its keys;
//! see `hashed`), so no table is rebuilt while a server ramps.
//!
//! # Cost of a pick
//!
//! Which servers are statically eligible (state, weights) forms a plan recomputed only after
//! membership, weights, load factors or states change, at the next pick or on
//! [`Balancer::prepare`]. Hash tables are rebuilt only on membership, weight or load-factor
//! changes: they keep servers that are down or draining and picks walk past them, so a
//! health change moves only that server's keys. A pick checks the dynamic conditions
//! (`maxconn`, exclusions) and allocates nothing.
//!
//! Modules: `types` (the vocabulary above), `plan` (groups and tables), `scope` (what an
//! algorithm sees of a group), `rotate` (round robin, smooth WRR), `lctree` (least
//! connections in `O(log n)`), `p2c` (peak-EWMA and least request), `hashed` (Maglev,
//! ketama, source hash).

mod hashed;
mod lctree;
mod p2c;
mod plan;
mod rotate;
mod scope;
#[cfg(test)]
mod tests;
mod types;

use std::collections::HashMap;
use std::time::Duration;

use crate::backend::{BackendId, ServerSpec, ServerState};
use crate::health::SlowStart;

use scope::{open, Scope};

pub use hashed::source_key;
pub use p2c::{PeakEwma, DEFAULT_RTT};
pub use types::{Algorithm, PickContext, ServerView};

/// Per-server algorithm memory beside the public view, keyed by the same index.
#[derive(Clone, Debug, Default)]
struct Track {
    /// Smooth WRR's running weight.
    current: i64,
    ewma: PeakEwma,
    /// When the server last became `Active`: the slow-start ramp runs from here.
    up_since: Option<Duration>,
}

/// A pool's balancer. See the module docs for the selection rules.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    servers: Vec<ServerView>,
    tracks: Vec<Track>,
    index: HashMap<BackendId, usize>,
    cursor: usize,
    slow_start: Option<SlowStart>,
    plan: plan::Plan,
    /// Eligibility changed since the plan was built.
    dirty: bool,
    /// Membership, weights or load factors changed since the hash tables were built.
    tables_dirty: bool,
    /// Least connections' trees, rebuilt with the plan.
    least: lctree::LeastConnIndex,
}

impl Balancer {
    pub fn new(algorithm: Algorithm, specs: Vec<ServerSpec>) -> Self {
        let mut b = Balancer {
            algorithm,
            servers: Vec::new(),
            tracks: Vec::new(),
            index: HashMap::new(),
            cursor: 0,
            slow_start: None,
            plan: plan::Plan::default(),
            dirty: true,
            tables_dirty: true,
            least: lctree::LeastConnIndex::default(),
        };
        b.update_servers(specs);
        b
    }

    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// Switches the picking algorithm. Per-server state (connection counts, latency
    /// averages, slow-start ramps) is kept; plans and tables are rebuilt at the next pick.
    pub fn set_algorithm(&mut self, algorithm: Algorithm) {
        if self.algorithm != algorithm {
            self.algorithm = algorithm;
            self.dirty = true;
            self.tables_dirty = true;
        }
    }

    /// Ramps the effective weight of servers that come up from now on (`None`: no ramp).
    pub fn set_slow_start(&mut self, slow_start: Option<SlowStart>) {
        self.slow_start = slow_start;
        self.dirty = true;
    }

    /// Replaces the server set. Servers whose id survives keep their state, counts and
    /// averages; new ones start `Unchecked`.
    pub fn update_servers(&mut self, specs: Vec<ServerSpec>) {
        let mut old: HashMap<BackendId, (ServerView, Track)> = self
            .servers
            .drain(..)
            .zip(self.tracks.drain(..))
            .map(|(s, t)| (s.spec.id, (s, t)))
            .collect();
        for spec in specs {
            let (view, track) = match old.remove(&spec.id) {
                Some((prev, track)) => (ServerView { spec, ..prev }, track),
                None => (
                    ServerView {
                        spec,
                        state: ServerState::Unchecked,
                        active: 0,
                        load_factor: 100,
                    },
                    Track::default(),
                ),
            };
            self.servers.push(view);
            self.tracks.push(track);
        }
        self.index = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.spec.id, i))
            .collect();
        self.dirty = true;
        self.tables_dirty = true;
    }

    pub fn servers(&self) -> &[ServerView] {
        &self.servers
    }

    pub fn server(&self, id: BackendId) -> Option<&ServerView> {
        self.index.get(&id).map(|&i| &self.servers[i])
    }

    /// Moves `id` to `state`. A server that returns to `Active` from `Down` or
    /// `Maintenance` starts its slow-start ramp at `now`; its first verdict (`Unchecked`) and
    /// the end of a drain do not ramp (HAProxy's rule: slow start applies only to a server
    /// previously seen as failed, so a starting node does not throttle every server at once).
    pub fn set_state(&mut self, id: BackendId, state: ServerState, now: Duration) {
        let Some(&i) = self.index.get(&id) else {
            return;
        };
        let old = std::mem::replace(&mut self.servers[i].state, state);
        if old == state {
            return;
        }
        let returning = matches!(old, ServerState::Down | ServerState::Maintenance);
        self.tracks[i].up_since = (state == ServerState::Active && returning).then_some(now);
        if old.accepts_new() != state.accepts_new() {
            self.dirty = true;
        }
    }

    /// Agent/SNMP-style reported capacity, in percent of the configured weight.
    pub fn set_load_factor(&mut self, id: BackendId, percent: u32) {
        if let Some(&i) = self.index.get(&id) {
            let percent = percent.min(MAX_LOAD_FACTOR);
            if self.servers[i].load_factor != percent {
                self.servers[i].load_factor = percent;
                self.dirty = true;
                self.tables_dirty = true;
            }
        }
    }

    /// Rebuilds the eligibility plan and hash tables now if anything changed, so the next
    /// pick does no work beyond picking.
    pub fn prepare(&mut self) {
        if self.dirty || self.tables_dirty {
            self.plan
                .rebuild(&self.algorithm, &self.servers, self.tables_dirty);
            self.dirty = false;
            self.tables_dirty = false;
            self.least.invalidate();
        }
    }

    /// Picks a server for a new session, or `None` when no server is eligible in any group.
    pub fn pick(&mut self, ctx: &mut PickContext<'_>) -> Option<BackendId> {
        self.prepare();
        let Balancer {
            algorithm,
            servers,
            tracks,
            index,
            cursor,
            slow_start,
            plan,
            least,
            ..
        } = self;
        let gi = plan
            .groups()
            .iter()
            .position(|g| g.members.iter().any(|&i| open(&servers[i], ctx.exclude)))?;
        let group = &plan.groups()[gi];
        let scope = Scope {
            members: &group.members,
            base: &group.base,
            servers,
            exclude: ctx.exclude,
            now: ctx.now,
            slow_start: *slow_start,
        };
        let i = match algorithm {
            Algorithm::RoundRobin => rotate::round_robin(&scope, cursor),
            Algorithm::WeightedRoundRobin => rotate::smooth_wrr(&scope, tracks),
            Algorithm::LeastConn => {
                if !least.is_valid() {
                    let ramp = lctree::Ramp {
                        slow_start: *slow_start,
                        now: ctx.now,
                    };
                    least.build(plan.groups(), servers, tracks, ramp);
                }
                let excluded = ctx.exclude.iter().filter_map(|id| index.get(id).copied());
                least.pick(gi, &scope, tracks, excluded)
            }
            Algorithm::PeakEwma { decay } => p2c::peak_ewma(&scope, tracks, *decay, ctx.rng),
            Algorithm::LeastRequest { bias } => p2c::least_request(&scope, tracks, *bias, ctx.rng),
            Algorithm::Maglev { .. } | Algorithm::SourceHash | Algorithm::Ketama => {
                hashed::pick(&scope, tracks, plan.table(group.group), ctx.key, ctx.rng)
            }
        }?;
        Some(servers[i].spec.id)
    }

    /// `id`'s weight as picking uses it at `now`: configured weight x load factor x
    /// slow-start ramp, rounded down to whole weight points (0 while it takes no new
    /// sessions).
    pub fn effective_weight(&self, id: BackendId, now: Duration) -> u32 {
        let Some(&i) = self.index.get(&id) else {
            return 0;
        };
        let s = &self.servers[i];
        if !s.state.accepts_new() {
            return 0;
        }
        let base = u64::from(s.spec.weight.get()) * u64::from(s.load_factor) / 100;
        let ramp = scope::ramp(self.slow_start, &self.tracks[i], now);
        let w = base * u64::from(ramp) / u64::from(SlowStart::SCALE);
        u32::try_from(w).unwrap_or(u32::MAX)
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
            self.servers[i].active = self.servers[i].active.saturating_add(1);
            self.least.recount(i, &self.servers[i]);
        }
    }

    /// A session on `id` ended; `latency` feeds the latency-aware algorithms.
    pub fn on_complete(&mut self, id: BackendId, latency: Option<Duration>, now: Duration) {
        if let Some(&i) = self.index.get(&id) {
            let s = &mut self.servers[i];
            s.active = s.active.saturating_sub(1);
            self.least.recount(i, &self.servers[i]);
            if let (Algorithm::PeakEwma { decay }, Some(rtt)) = (&self.algorithm, latency) {
                self.tracks[i].ewma.observe(rtt, now, *decay);
            }
        }
    }
}

/// Reported load factors are capped here (100x the configured weight), which keeps every
/// effective-weight product far inside `u64`.
pub const MAX_LOAD_FACTOR: u32 = 10_000;
