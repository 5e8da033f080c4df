//! Runs checks on an interval with injected jitter and feeds the hub.
//!
//! One task per target and check. The first check runs within `jitter * interval` of start (a
//! new server should not wait a whole interval to become usable); later waits are
//! `interval * (1 ± jitter)`, drawn from the injected RNG so that a fleet of checkers spreads
//! out and tests are reproducible. Sleeping uses tokio's clock, so paused time drives it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_core::RngCore;
use tokio::task::JoinHandle;

use crate::hub::HealthHub;
use crate::outcome::{CheckResult, ProbeError};
use crate::probe;
use crate::spec::{AgentSpec, CheckSpec};
use crate::target::TargetKey;

/// The randomness jitter is drawn from, shared by every check task.
pub type SharedRng = Arc<Mutex<dyn RngCore + Send>>;

/// `interval * (1 + jitter * u)` with `u` uniform in [-1, 1).
pub fn jittered(interval: Duration, jitter: f64, rng: &SharedRng) -> Duration {
    let u = unit(rng) * 2.0 - 1.0;
    interval.mul_f64((1.0 + jitter.clamp(0.0, 1.0) * u).max(0.0))
}

/// Uniform in [0, 1).
fn unit(rng: &SharedRng) -> f64 {
    let x = rng.lock().unwrap_or_else(|p| p.into_inner()).next_u32();
    f64::from(x) / (f64::from(u32::MAX) + 1.0)
}

/// Check `key` at `addr` (or at `spec.port` on the same host) forever; abort the handle to stop.
pub fn spawn_check(
    hub: Arc<HealthHub>,
    key: TargetKey,
    addr: SocketAddr,
    spec: CheckSpec,
    rng: SharedRng,
) -> JoinHandle<()> {
    let addr = SocketAddr::new(addr.ip(), spec.port.unwrap_or(addr.port()));
    let kind = spec.kind.clone();
    let timeout = spec.timeout;
    spawn_check_with(hub, key, spec, rng, move || {
        let kind = kind.clone();
        async move { probe::run(&kind, addr, timeout).await }
    })
}

/// [`spawn_check`] with any prober: the seam tests use to script results under paused time.
pub fn spawn_check_with<F, Fut>(
    hub: Arc<HealthHub>,
    key: TargetKey,
    spec: CheckSpec,
    rng: SharedRng,
    mut probe: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<String, ProbeError>> + Send,
{
    tokio::spawn(async move {
        let first = spec
            .interval
            .mul_f64(spec.jitter.clamp(0.0, 1.0) * unit(&rng));
        tokio::time::sleep(first).await;
        loop {
            // The prober holds its own deadline; this outer one only guards a prober that
            // ignores it.
            let guard = spec.timeout + Duration::from_millis(100);
            let result = match tokio::time::timeout(guard, probe()).await {
                Ok(r) => r,
                Err(_) => Err(ProbeError::ResponseTimeout(spec.timeout)),
            };
            let now = tokio::time::Instant::now().into_std();
            match result {
                Ok(reason) => hub.report_check(&key, CheckResult::pass(reason), now),
                Err(e) => match CheckResult::from_error(&e) {
                    Some(r) => hub.report_check(&key, r, now),
                    None => hub.note_check(&key, e.to_string(), now),
                },
            }
            tokio::time::sleep(jittered(spec.interval, spec.jitter, &rng)).await;
        }
    })
}

/// Query the agent of `key` at `addr`'s host on `spec.port` forever. Unreachable agents and
/// unparsable replies change nothing (the active check covers connectivity).
pub fn spawn_agent(
    hub: Arc<HealthHub>,
    key: TargetKey,
    addr: SocketAddr,
    spec: AgentSpec,
    rng: SharedRng,
) -> JoinHandle<()> {
    let addr = SocketAddr::new(addr.ip(), spec.port);
    tokio::spawn(async move {
        tokio::time::sleep(spec.interval.mul_f64(0.1 * unit(&rng))).await;
        loop {
            let deadline = tokio::time::Instant::now() + spec.timeout;
            let r = probe::agent::query(addr, &spec.send, deadline).await;
            let now = tokio::time::Instant::now().into_std();
            if let Ok(reply) = r {
                hub.report_agent(&key, &reply, now);
            }
            tokio::time::sleep(jittered(spec.interval, 0.1, &rng)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let rng: SharedRng = Arc::new(Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(7)));
        let iv = Duration::from_secs(10);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(iv, 0.2, &rng)).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_secs(8) && *w <= Duration::from_secs(12)));
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "jitter actually varies");
        assert!(waits.iter().any(|w| *w < iv) && waits.iter().any(|w| *w > iv));
        assert_eq!(jittered(iv, 0.0, &rng), iv);
    }
}
