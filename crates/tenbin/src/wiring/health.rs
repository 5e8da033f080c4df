//! Health for the proxy tier: register every pool's servers with one `HealthHub`, run their
//! checks and agents, apply each published snapshot to the runtime pools, and feed
//! live-traffic outcomes back to the hub as passive signals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::SeedableRng;
use tenbin_config::Config;
use tenbin_health::from_config::{register_pool, spawn_pool_checks};
use tenbin_health::scheduler::SharedRng;
use tenbin_health::{HealthHub, PassiveHandle, PassiveSignal};
use tenbin_proxy::pool::{Outcome, Pool, Server, SignalSink};
use tokio::task::JoinHandle;

/// The running health machinery of a proxy node. Dropping it stops checks and the link.
#[derive(Debug)]
pub struct ProxyHealth {
    // The tasks own the hub; dropping them ends it.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ProxyHealth {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl ProxyHealth {
    /// Registers every pool of `config`, starts their checks, and links the hub to the
    /// runtime `pools` (by name) both ways. Must run inside a tokio runtime.
    pub fn start(config: &Config, pools: &BTreeMap<String, Pool>) -> anyhow::Result<ProxyHealth> {
        let hub = HealthHub::new();
        let now = Instant::now();
        let rng: SharedRng = Arc::new(Mutex::new(rand::rngs::StdRng::from_entropy()));
        let mut tasks = Vec::new();
        for pool_cfg in &config.pool {
            register_pool(&hub, pool_cfg, now);
            tasks.extend(spawn_pool_checks(&hub, pool_cfg, &rng)?);
            if let Some(pool) = pools.get(pool_cfg.name.get_ref()) {
                pool.set_signal_sink(Arc::new(PassiveLink {
                    handle: hub.passive_handle(),
                }));
            }
        }
        tasks.push(tokio::spawn(hub.clone().run_timers()));
        tasks.push(tokio::spawn(apply_snapshots(hub.clone(), pools.clone())));
        Ok(ProxyHealth { tasks })
    }
}

/// Applies every published snapshot to the runtime pools, for as long as the hub lives.
async fn apply_snapshots(hub: Arc<HealthHub>, pools: BTreeMap<String, Pool>) {
    let mut rx = hub.subscribe();
    loop {
        let snapshot = rx.borrow_and_update().clone();
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
        if rx.changed().await.is_err() {
            return;
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
