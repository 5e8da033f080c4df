//! The vocabulary of servers: stable ids, weights and administrative/health states.

use std::fmt;

/// A stable identity for a server inside a pool. It survives reconfiguration: algorithm state
/// (connection counts, latency averages, persistence entries) is keyed by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BackendId(pub u32);

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A configured weight. 0 means "receives no new traffic" (HAProxy's `weight 0`); the largest
/// accepted weight is [`Weight::MAX`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Weight(u32);

impl Weight {
    /// HAProxy accepts 0..=256; we allow more headroom for Maglev shares but keep sums far
    /// from overflow (1000 servers x MAX fits in u32 with room).
    pub const MAX: u32 = 1_000_000;
    pub const DEFAULT: Weight = Weight(1);

    /// `None` if `w` exceeds [`Weight::MAX`].
    pub fn new(w: u32) -> Option<Weight> {
        (w <= Self::MAX).then_some(Weight(w))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Weight {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where a server stands, from the combination of admin intent and health checks.
///
/// Only `Active` servers receive new sessions. `Draining` servers keep serving sessions that
/// persistence already pins to them (the seeds' overloaded-server rule). `Unchecked` is where a
/// newly added server starts until its first passing check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ServerState {
    #[default]
    Unchecked,
    Active,
    Draining,
    Down,
    Maintenance,
}

impl ServerState {
    /// May receive new sessions from a balancing algorithm.
    pub fn accepts_new(self) -> bool {
        matches!(self, ServerState::Active)
    }

    /// May keep receiving sessions pinned to it by persistence.
    pub fn accepts_persisted(self) -> bool {
        matches!(self, ServerState::Active | ServerState::Draining)
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerState::Unchecked => "unchecked",
            ServerState::Active => "active",
            ServerState::Draining => "draining",
            ServerState::Down => "down",
            ServerState::Maintenance => "maintenance",
        })
    }
}

/// The static description of a server as a balancer needs it: identity, a hashable address
/// (for consistent hashing, so every instance builds the same table), weight, priority group
/// (0 is served first; higher groups are overflow/backup) and an optional connection limit.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ServerSpec {
    pub id: BackendId,
    /// The bytes consistent hashing derives this server's position from: normally the
    /// socket address as text ("10.0.0.1:80"), never the id, so independent instances agree.
    pub hash_key: String,
    pub weight: Weight,
    pub group: u8,
    pub maxconn: Option<u32>,
}

impl ServerSpec {
    pub fn new(id: u32, hash_key: impl Into<String>) -> Self {
        ServerSpec {
            id: BackendId(id),
            hash_key: hash_key.into(),
            weight: Weight::DEFAULT,
            group: 0,
            maxconn: None,
        }
    }

    pub fn weight(mut self, w: u32) -> Self {
        self.weight = Weight::new(w).expect("weight within Weight::MAX");
        self
    }

    pub fn group(mut self, g: u8) -> Self {
        self.group = g;
        self
    }

    pub fn maxconn(mut self, m: u32) -> Self {
        self.maxconn = Some(m);
        self
    }
}
