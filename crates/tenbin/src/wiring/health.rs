//! Health for the proxy tier: register every pool's servers with one `HealthHub`, run their
//! checks and agents, apply each published snapshot to the runtime pools and to the node's
//! health bus (each server under its typed key, and the proxy's readiness: frontends bound,
//! every pool with an active server), and feed live-traffic outcomes back to the hub as
//! passive signals.
//!
//! [`ProxyHealth::apply`] follows config changes: pools that stay keep their servers' health
//! (the hub keeps a target registered again under the same name), a pool whose section
//! changed gets its checks restarted, pools that left are forgotten. A server's admin state
//! (`state = "draining"` in the file, or an operator's drain) is the hub's admin intent, so
//! a passing check never undoes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use rand::SeedableRng;
use tenbin_config::Config;
use tenbin_health::bus::{proxy_entries, HealthBus, Tier, TierInput};
use tenbin_health::from_config::{register_pool, spawn_pool_checks};
use tenbin_health::scheduler::SharedRng;
use tenbin_health::{HealthHub, HealthSnapshot, PassiveHandle, PassiveSignal};
use tenbin_proxy::pool::{Outcome, Pool, Server, SignalSink};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the proxy runs now: its runtime pools by name and how many frontends are bound.
/// Both change together under one lock, and every publication to the bus reads them and
/// the hub's latest snapshot under it, so the last readiness published is never computed
/// from a half-applied change (frontends of the new config, pools of the old).
#[derive(Default)]
struct Running {
    pools: BTreeMap<String, Pool>,
    frontends: usize,
}

type Shared = Arc<RwLock<Running>>;

/// The running health machinery of a proxy node.
pub struct ProxyHealth {
    hub: Arc<HealthHub>,
    running: Shared,
    bus: HealthBus,
    rng: SharedRng,
    /// Each pool's section as its checks were started from, and those checks.
    checks: BTreeMap<String, (tenbin_config::Pool, Vec<JoinHandle<()>>)>,
}

impl std::fmt::Debug for ProxyHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHealth")
            .field("pools", &self.checks.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Publishes `snapshot` to the node's bus: every server's entry, and the proxy's readiness
/// from the frontends bound and the pools with an active server.
fn publish(bus: &HealthBus, snapshot: &HealthSnapshot, running: &Running) {
    let Running { pools, frontends } = running;
    bus.publish(Tier::Proxy, proxy_entries(snapshot));
    if *frontends == 0 && pools.is_empty() {
        bus.set(Tier::Proxy, None);
        return;
    }
    let usable = pools
        .keys()
        .filter(|name| {
            snapshot
                .pool_targets(name)
                .any(|(_, t)| t.state == tenbin_core::ServerState::Active)
        })
        .count();
    bus.set(
        Tier::Proxy,
        Some(TierInput::Proxy {
            frontends: *frontends,
            pools: pools.len(),
            pools_usable: usable,
        }),
    );
}

impl ProxyHealth {
    /// The hub and the task that applies its snapshots (to the pools and to `bus`), both
    /// running until `stop`.
    pub fn start(stop: &CancellationToken, tracker: &TaskTracker, bus: HealthBus) -> ProxyHealth {
        let hub = HealthHub::new();
        let running: Shared = Arc::default();
        let timers = hub.clone().run_timers();
        let stop_timers = stop.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = timers => {}
                () = stop_timers.cancelled() => {}
            }
        });
        let apply = apply_snapshots(hub.clone(), running.clone(), bus.clone());
        let stop_apply = stop.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = apply => {}
                () = stop_apply.cancelled() => {}
            }
        });
        ProxyHealth {
            hub,
            running,
            bus,
            rng: Arc::new(Mutex::new(rand::rngs::StdRng::from_entropy())),
            checks: BTreeMap::new(),
        }
    }

    /// Follows `config` with the runtime `pools` (by name) built from it and `frontends`
    /// bound; the pools and the bus show the resulting health before this returns.
    pub fn apply(
        &mut self,
        config: &Config,
        pools: BTreeMap<String, Pool>,
        frontends: usize,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        let gone: Vec<String> = self
            .checks
            .keys()
            .filter(|n| config.pool(n).is_none())
            .cloned()
            .collect();
        for name in gone {
            if let Some((_, tasks)) = self.checks.remove(&name) {
                tasks.iter().for_each(JoinHandle::abort);
            }
            self.hub.remove_pool(&name, now);
        }
        for pool_cfg in &config.pool {
            let name = pool_cfg.name.get_ref();
            register_pool(&self.hub, pool_cfg, now);
            if self.checks.get(name).is_none_or(|(c, _)| c != pool_cfg) {
                let tasks = spawn_pool_checks(&self.hub, pool_cfg, &self.rng)?;
                if let Some((_, old)) = self.checks.insert(name.clone(), (pool_cfg.clone(), tasks))
                {
                    old.iter().for_each(JoinHandle::abort);
                }
            }
            if let Some(pool) = pools.get(name) {
                pool.set_signal_sink(Arc::new(PassiveLink {
                    handle: self.hub.passive_handle(),
                }));
            }
        }
        let mut running = self.running.write().unwrap_or_else(|e| e.into_inner());
        *running = Running { pools, frontends };
        let snapshot = self.hub.snapshot();
        apply_snapshot(&snapshot, &running.pools);
        publish(&self.bus, &snapshot, &running);
        Ok(())
    }

    /// The hub's current view (the admin API reads check reasons and transitions here).
    pub fn snapshot(&self) -> Arc<HealthSnapshot> {
        self.hub.snapshot()
    }

    /// Every snapshot the hub publishes, as it is published.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<HealthSnapshot>> {
        self.hub.subscribe()
    }

    /// Stops every check.
    pub fn stop(&mut self) {
        for (_, tasks) in std::mem::take(&mut self.checks).into_values() {
            tasks.iter().for_each(JoinHandle::abort);
        }
    }
}

/// Applies every published snapshot to the runtime pools and the bus, for as long as the
/// hub lives.
async fn apply_snapshots(hub: Arc<HealthHub>, running: Shared, bus: HealthBus) {
    let mut rx = hub.subscribe();
    loop {
        {
            // The snapshot is read under the lock: whichever of this task and `apply`
            // publishes last publishes the latest snapshot with the latest pools.
            let running = running.read().unwrap_or_else(|e| e.into_inner());
            let snapshot = rx.borrow_and_update().clone();
            apply_snapshot(&snapshot, &running.pools);
            publish(&bus, &snapshot, &running);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn apply_snapshot(snapshot: &HealthSnapshot, pools: &BTreeMap<String, Pool>) {
    for (key, health) in &snapshot.targets {
        let Some(pool) = pools.get(&*key.pool) else {
            continue;
        };
        if let Some(id) = pool.id_of(&key.server) {
            pool.apply_health(id, health.state, health.load_percent);
            // An agent's `maxconn:N` reply limits the server (no-op when unchanged).
            pool.set_agent_maxconn(id, health.maxconn);
        }
    }
}

/// Forwards the proxy's per-attempt outcomes to the hub's passive detector.
#[derive(Debug)]
struct PassiveLink {
    handle: PassiveHandle,
}

impl SignalSink for PassiveLink {
    fn observe(&self, pool: &str, server: &Server, outcome: Outcome) {
        let signal = match outcome {
            Outcome::Success { .. } => PassiveSignal::Success,
            Outcome::ConnectFailed => PassiveSignal::ConnectFailed,
            Outcome::ConnectTimeout | Outcome::Timeout => PassiveSignal::Timeout,
            Outcome::ServerError => PassiveSignal::Status5xx,
        };
        self.handle.report_names(pool, &server.name, signal);
    }
}
