//! The published health view: immutable, shared behind an `Arc`, replaced whole on change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tenbin_core::ServerState;

use crate::target::TargetKey;

/// What every tier needs to know about one target.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TargetHealth {
    /// What to act on: admin intent, checks, agent, ejection and panic mode combined.
    pub state: ServerState,
    /// What the active check and agent alone say (before ejection and panic mode).
    pub checked: ServerState,
    /// Passive outlier detection currently ejects it.
    pub ejected: bool,
    /// Load factor from the agent, percent of the configured weight (100 without an agent).
    pub load_percent: u32,
    /// A connection limit asked for by the agent.
    pub maxconn: Option<u32>,
    /// Why it is in this state, for status pages and logs.
    pub reason: String,
    /// When `state` last changed.
    pub since: Instant,
}

/// Pool-wide facts.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PoolHealth {
    /// Too few usable servers: health is ignored and every checked server that no operator or
    /// agent took out (maintenance, drain) is offered again.
    pub panic: bool,
    /// Servers passing checks and not ejected.
    pub usable: usize,
    /// Servers not taken out by an operator or agent (maintenance, drain).
    pub eligible: usize,
}

/// The whole view, as published on the watch channel.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HealthSnapshot {
    /// Bumped on every publication.
    pub version: u64,
    pub targets: BTreeMap<TargetKey, TargetHealth>,
    pub pools: BTreeMap<Arc<str>, PoolHealth>,
}

impl HealthSnapshot {
    pub fn target(&self, key: &TargetKey) -> Option<&TargetHealth> {
        self.targets.get(key)
    }

    pub fn state(&self, key: &TargetKey) -> Option<ServerState> {
        self.target(key).map(|t| t.state)
    }

    pub fn pool(&self, pool: &str) -> Option<&PoolHealth> {
        self.pools.get(pool)
    }

    /// The targets of one pool, in name order.
    pub fn pool_targets<'a>(
        &'a self,
        pool: &'a str,
    ) -> impl Iterator<Item = (&'a TargetKey, &'a TargetHealth)> + 'a {
        self.targets.iter().filter(move |(k, _)| &*k.pool == pool)
    }
}
