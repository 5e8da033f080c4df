//! The runtime pool every listener draws servers from.
//!
//! A [`Pool`] wraps a `tenbin_core` [`Balancer`] behind a lock together with what the data path
//! needs that the balancer does not own: server names and socket addresses, a bounded FIFO
//! queue for callers that arrive while every eligible server is at `maxconn`, and a sink for
//! passive health signals. [`Pool::acquire`] hands out a [`Lease`]; dropping the lease (or
//! calling [`Lease::finish`]) completes the session in the balancer and hands the freed slot
//! to the oldest waiter that can use it.
//!
//! Time comes from tokio's clock, so tests drive queue timeouts with paused time.

mod config;
mod counters;
mod inner;
mod lease;
mod queue;
mod signal;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tenbin_core::health::SlowStart;
use tenbin_core::pick::{Algorithm, Balancer};
use tenbin_core::{BackendId, ServerState};
use tokio::time::Instant;

pub use config::HashOn;
pub use counters::{ServerTraffic, FAILURE_KINDS};
pub use lease::Lease;
pub use signal::{Outcome, SignalSink};
pub use tenbin_core::pick::source_key;

use inner::Inner;
use queue::{WaitQueue, Waiter};

/// Why no server could be leased. L7 maps all three to 503.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// No server in any group may take new sessions (all down, draining, excluded...).
    #[error("pool {0}: no server available")]
    NoServer(String),
    /// Every eligible server is at maxconn and the wait queue is full.
    #[error("pool {0}: every server is at maxconn and the queue is full")]
    QueueFull(String),
    /// Waited in the queue for the whole queue timeout.
    #[error("pool {0}: timed out waiting in the queue")]
    QueueTimeout(String),
}

/// One configured server as the data path sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub name: String,
    pub addr: SocketAddr,
    pub weight: u32,
    pub group: u8,
    pub maxconn: Option<u32>,
    /// The state the server starts in (`Active` when no health check will confirm it).
    pub state: ServerState,
}

impl ServerConfig {
    /// An active server of weight 1 in group 0 without a connection limit.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        ServerConfig {
            name: name.into(),
            addr,
            weight: 1,
            group: 0,
            maxconn: None,
            state: ServerState::Active,
        }
    }
}

/// Everything a pool is built from; the binary converts validated config into this.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub name: String,
    pub algorithm: Algorithm,
    pub servers: Vec<ServerConfig>,
    /// Callers allowed to wait when every eligible server is at maxconn (0: fail at once).
    pub queue_size: usize,
    pub queue_timeout: Duration,
    /// What the hashing algorithms hash (L4 only knows the source address).
    pub hash_on: HashOn,
    /// Source hashing keeps this many leading bits of the client address.
    pub source_prefix_v4: u8,
    pub source_prefix_v6: u8,
    /// A server returning from down or maintenance ramps to its full weight over this
    /// (`None`: at once).
    pub slow_start: Option<Duration>,
}

impl PoolConfig {
    pub fn new(name: impl Into<String>, algorithm: Algorithm, servers: Vec<ServerConfig>) -> Self {
        PoolConfig {
            name: name.into(),
            algorithm,
            servers,
            queue_size: 1024,
            queue_timeout: Duration::from_secs(5),
            hash_on: HashOn::Source,
            source_prefix_v4: 32,
            source_prefix_v6: 128,
            slow_start: None,
        }
    }
}

/// A server record: what a lease tells its holder about where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub id: BackendId,
    pub name: String,
    pub addr: SocketAddr,
}

/// One server as [`Pool::status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    pub server: Server,
    pub state: ServerState,
    /// Sessions on it now.
    pub active: u32,
    /// The configured weight.
    pub weight: u32,
    /// Weight x load factor x slow-start ramp now (0 while it takes no new sessions).
    pub effective_weight: u32,
    /// What it served since it joined the pool (counters survive reconfiguration).
    pub traffic: ServerTraffic,
}

/// A cheap-to-clone handle on one pool.
#[derive(Clone, Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    /// Read per request without the lock; replaced whole by [`Pool::reconfigure`].
    keys: ArcSwap<KeySettings>,
    epoch: Instant,
    inner: Mutex<Inner>,
}

/// What a hashing pool hashes, and how much of a client address.
#[derive(Debug)]
struct KeySettings {
    hash_on: HashOn,
    prefixes: (u8, u8),
}

impl KeySettings {
    fn of(config: &PoolConfig) -> Arc<Self> {
        Arc::new(KeySettings {
            hash_on: config.hash_on.clone(),
            prefixes: (config.source_prefix_v4, config.source_prefix_v6),
        })
    }
}

fn slow_start(config: &PoolConfig) -> Option<SlowStart> {
    config
        .slow_start
        .filter(|d| !d.is_zero())
        .map(|duration| SlowStart { duration })
}

impl Pool {
    pub fn new(config: PoolConfig) -> Self {
        Self::with_rng(config, StdRng::from_entropy())
    }

    /// A pool whose random choices are reproducible (tests).
    pub fn with_seed(config: PoolConfig, seed: u64) -> Self {
        Self::with_rng(config, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: PoolConfig, rng: StdRng) -> Self {
        let mut inner = Inner {
            balancer: Balancer::new(config.algorithm.clone(), Vec::new()),
            servers: Default::default(),
            ids: HashMap::new(),
            next_id: 0,
            queue: WaitQueue::default(),
            queue_size: config.queue_size,
            queue_timeout: config.queue_timeout,
            rng,
            sink: None,
            configured_maxconn: HashMap::new(),
            agent_maxconn: HashMap::new(),
            counters: Default::default(),
        };
        let epoch = Instant::now();
        inner.balancer.set_slow_start(slow_start(&config));
        let keys = ArcSwap::new(KeySettings::of(&config));
        inner.set_servers(config.servers, Duration::ZERO);
        Pool {
            shared: Arc::new(Shared {
                name: config.name,
                keys,
                epoch,
                inner: Mutex::new(inner),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// What the pool hashes now (it may change on reconfiguration).
    pub fn hash_on(&self) -> HashOn {
        self.shared.keys.load().hash_on.clone()
    }

    /// Runs `f` on what the pool hashes, without copying it (the per-request path).
    pub fn with_hash_on<R>(&self, f: impl FnOnce(&HashOn) -> R) -> R {
        f(&self.shared.keys.load().hash_on)
    }

    /// Whether the pool's algorithm uses the caller's key at all.
    pub fn is_hashing(&self) -> bool {
        matches!(
            self.lock().balancer.algorithm(),
            Algorithm::Maglev { .. } | Algorithm::Ketama | Algorithm::SourceHash
        )
    }

    /// The hashing key of a client address under this pool's source prefixes.
    pub fn source_key(&self, ip: std::net::IpAddr) -> u64 {
        let (v4, v6) = self.shared.keys.load().prefixes;
        source_key(ip, v4, v6)
    }

    /// Applies a new description of the same pool (its name stays): servers, algorithm,
    /// slow start, hashing key and queue limits. Servers keep their id, state, counters and
    /// latency averages across the change when their name survives; new servers start in
    /// their configured state. Leases held across the change complete normally.
    pub fn reconfigure(&self, config: PoolConfig) {
        let now = self.now();
        self.shared.keys.store(KeySettings::of(&config));
        let mut inner = self.lock();
        inner.queue_size = config.queue_size;
        inner.queue_timeout = config.queue_timeout;
        inner.balancer.set_algorithm(config.algorithm.clone());
        inner.balancer.set_slow_start(slow_start(&config));
        inner.set_servers(config.servers, now);
        inner.serve_waiters(&self.shared, now);
    }

    /// Where the pool's servers stand now: record, state, active sessions.
    pub fn servers(&self) -> Vec<(Server, ServerState, u32)> {
        self.status()
            .into_iter()
            .map(|s| (s.server, s.state, s.active))
            .collect()
    }

    /// Every server with what the balancer does with it now, in id order.
    pub fn status(&self) -> Vec<ServerStatus> {
        let now = self.now();
        let inner = self.lock();
        let mut out: Vec<ServerStatus> = inner
            .balancer
            .servers()
            .iter()
            .filter_map(|v| {
                let s = inner.servers.get(&v.spec.id)?;
                Some(ServerStatus {
                    server: s.clone(),
                    state: v.state,
                    active: v.active,
                    weight: v.spec.weight.get(),
                    effective_weight: inner.balancer.effective_weight(v.spec.id, now),
                    traffic: inner
                        .counters
                        .get(&v.spec.id)
                        .map(|c| c.read())
                        .unwrap_or_default(),
                })
            })
            .collect();
        out.sort_by_key(|s| s.server.id);
        out
    }

    /// The algorithm picking now, by its config name.
    pub fn algorithm_name(&self) -> &'static str {
        match self.lock().balancer.algorithm() {
            Algorithm::RoundRobin => "roundrobin",
            Algorithm::WeightedRoundRobin => "wrr",
            Algorithm::LeastConn => "leastconn",
            Algorithm::PeakEwma { .. } => "peak-ewma",
            Algorithm::LeastRequest { .. } => "least-request",
            Algorithm::SourceHash => "source-hash",
            Algorithm::Maglev { .. } => "maglev",
            Algorithm::Ketama => "ketama",
        }
    }

    /// The id of the server named `name`.
    pub fn id_of(&self, name: &str) -> Option<BackendId> {
        self.lock().ids.get(name).copied()
    }

    /// Applies a health verdict from outside (tenbin-health, the admin API, an agent):
    /// the server's state and its reported capacity in percent of its weight.
    pub fn apply_health(&self, server: BackendId, state: ServerState, load_factor: u32) {
        let now = self.now();
        let mut inner = self.lock();
        inner.balancer.set_state(server, state, now);
        inner.balancer.set_load_factor(server, load_factor);
        inner.serve_waiters(&self.shared, now);
    }

    /// Applies a connection limit an agent asked for (HAProxy agent `maxconn:N`); `None`
    /// returns to the configured limit. Unchanged limits cost nothing.
    pub fn set_agent_maxconn(&self, server: BackendId, limit: Option<u32>) {
        let now = self.now();
        let mut inner = self.lock();
        if inner.set_agent_maxconn(server, limit) {
            inner.serve_waiters(&self.shared, now);
        }
    }

    /// Installs the receiver of passive signals (connect failures, timeouts, successes).
    pub fn set_signal_sink(&self, sink: Arc<dyn SignalSink>) {
        self.lock().sink = Some(sink);
    }

    /// Callers waiting in the queue now.
    pub fn queued(&self) -> usize {
        let mut inner = self.lock();
        inner.queue.purge_closed();
        inner.queue.len()
    }

    /// Leases `server` itself for a session that persistence pins to it: allowed while the
    /// server is active or draining (the seeds' overloaded-server rule) and below maxconn.
    /// `None` sends the caller back to normal picking.
    pub fn acquire_pinned(&self, server: BackendId) -> Option<Lease> {
        let mut inner = self.lock();
        if inner.balancer.accepts_persisted(server) {
            Some(inner.dispatch(&self.shared, server))
        } else {
            None
        }
    }

    /// Leases a server for a new session without waiting: `QueueFull` when all are busy.
    pub fn try_acquire(&self, key: Option<u64>, exclude: &[BackendId]) -> Result<Lease, PoolError> {
        let now = self.now();
        let mut inner = self.lock();
        match inner.pick(key, exclude, now) {
            Some(id) => Ok(inner.dispatch(&self.shared, id)),
            None if inner.usable(exclude) => Err(PoolError::QueueFull(self.name().into())),
            None => Err(PoolError::NoServer(self.name().into())),
        }
    }

    /// Leases a server for a new session. `key` feeds the hashing algorithms; `exclude`
    /// lists servers this session already tried. When every eligible server is at maxconn
    /// the caller waits its turn in a bounded FIFO queue for at most the queue timeout.
    pub async fn acquire(
        &self,
        key: Option<u64>,
        exclude: &[BackendId],
    ) -> Result<Lease, PoolError> {
        self.acquire_within(key, exclude, None).await
    }

    /// [`Pool::acquire`] with the frontend's queue timeout instead of the pool's.
    pub async fn acquire_within(
        &self,
        key: Option<u64>,
        exclude: &[BackendId],
        queue_timeout: Option<Duration>,
    ) -> Result<Lease, PoolError> {
        let (rx, seq, timeout) = {
            let now = self.now();
            let mut inner = self.lock();
            inner.queue.purge_closed();
            if !inner.usable(exclude) {
                return Err(PoolError::NoServer(self.name().into()));
            }
            // Waiters go first; a slot none of them can use may go to the newcomer at once.
            inner.serve_waiters(&self.shared, now);
            if let Some(id) = inner.pick(key, exclude, now) {
                return Ok(inner.dispatch(&self.shared, id));
            }
            if inner.queue.len() >= inner.queue_size {
                return Err(PoolError::QueueFull(self.name().into()));
            }
            let (waiter, rx) = Waiter::new(key, exclude.to_vec());
            let seq = inner.queue.push(waiter);
            (rx, seq, queue_timeout.unwrap_or(inner.queue_timeout))
        };
        let mut rx = rx;
        match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(lease)) => Ok(lease),
            // The sender only disappears with the queue entry, which we own until here.
            Ok(Err(_)) => Err(PoolError::QueueTimeout(self.name().into())),
            Err(_) => {
                self.lock().queue.remove(seq);
                // A lease may have been handed over between the timer and the removal.
                rx.try_recv()
                    .map_err(|_| PoolError::QueueTimeout(self.name().into()))
            }
        }
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.shared.epoch)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters at worst slightly off; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    /// A lease ended: complete it in the balancer and pass the freed slot on.
    fn complete(self: &Arc<Self>, id: BackendId, latency: Option<Duration>) {
        let now = self.now();
        let mut inner = self.lock();
        inner.balancer.on_complete(id, latency, now);
        inner.serve_waiters(self, now);
    }
}

#[cfg(test)]
mod ramp_tests;
#[cfg(test)]
mod tests;
