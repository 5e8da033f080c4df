//! The agent's checks: `[[agent.check]]` → a tenbin-health [`CheckSpec`] and a task per
//! check that probes on its interval (with its jitter) and sends each result to the loop.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use tenbin_config::mux::AgentServiceCheck;
use tenbin_health::scheduler::{jittered, SharedRng};
use tenbin_health::spec::{CheckKind, CheckSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::tier::TierError;

/// The service a check covers, as reports name it.
pub(crate) type ServiceKey = (IpAddr, u16, u8);

/// One probe's result, tagged with the generation of checks it belongs to.
#[derive(Debug)]
pub(crate) struct Probed {
    pub generation: u64,
    pub index: usize,
    pub error: Option<String>,
}

/// The check of `[[agent.check]]` number `i`: its `health` table, or a TCP connect with
/// `[pool.health]`'s defaults.
pub(crate) fn check_spec(i: usize, c: &AgentServiceCheck) -> Result<CheckSpec, TierError> {
    match &c.health {
        Some(h) => {
            tenbin_health::from_config::check_spec(&format!("agent.check[{i}]"), h).map_err(|e| {
                TierError::Invalid {
                    key: "agent.check.health",
                    message: e.to_string(),
                }
            })
        }
        None => Ok(CheckSpec::new(CheckKind::Tcp)),
    }
}

pub(crate) fn service_key(c: &AgentServiceCheck) -> ServiceKey {
    (c.vip, c.port, c.protocol.number())
}

/// Where the check probes: the VIP, on the check's own port if it has one.
pub(crate) fn target(c: &AgentServiceCheck, spec: &CheckSpec) -> SocketAddr {
    SocketAddr::new(c.vip, spec.port.unwrap_or(c.port))
}

pub(crate) fn rng() -> SharedRng {
    Arc::new(Mutex::new(rand::rngs::StdRng::from_entropy()))
}

/// Probes `addr` until `stop`: the first probe at once, then one per jittered interval.
pub(crate) fn spawn(
    generation: u64,
    index: usize,
    spec: CheckSpec,
    addr: SocketAddr,
    out: mpsc::Sender<Probed>,
    stop: CancellationToken,
    rng: SharedRng,
) {
    tokio::spawn(async move {
        loop {
            // The prober keeps its own deadline; this one guards a prober that would not.
            let guard = spec.timeout + Duration::from_millis(100);
            let probe = tokio::time::timeout(
                guard,
                tenbin_health::probe::run(&spec.kind, addr, spec.timeout),
            );
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = probe => r,
            };
            let error = match result {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {:?}", spec.timeout)),
            };
            let sent = out.send(Probed {
                generation,
                index,
                error,
            });
            if sent.await.is_err() {
                return;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(jittered(spec.interval, spec.jitter, &rng)) => {}
            }
        }
    });
}
