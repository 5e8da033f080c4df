//! Plain conversions from tenbin-config's validated `[[pool]]` to the runtime types, and the
//! two calls the binary needs: register a pool's targets, then start its checks.

use std::sync::Arc;
use std::time::Instant;

use regex::Regex;
use tenbin_config::pool::{self as cfg, AdminState};
use tenbin_core::ServerState;
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::hub::{HealthHub, TargetOptions};
use crate::scheduler::{self, SharedRng};
use crate::spec::{AgentSpec, CheckKind, CheckSpec, HttpCheck, OutlierSpec};
use crate::target::TargetKey;

#[derive(Debug, Error)]
pub enum FromConfigError {
    #[error("pool {pool}: health: {reason}")]
    Http { pool: String, reason: &'static str },
    #[error("pool {pool}: health.expect_regex: {source}")]
    Regex {
        pool: String,
        #[source]
        source: regex::Error,
    },
}

/// `[pool.health]` → [`CheckSpec`]. `pool` names the pool in errors.
pub fn check_spec(pool: &str, h: &cfg::HealthCheck) -> Result<CheckSpec, FromConfigError> {
    let kind = match h.kind {
        cfg::CheckKind::Icmp => CheckKind::Icmp,
        cfg::CheckKind::Tcp => CheckKind::Tcp,
        cfg::CheckKind::Http => {
            let expect_regex = h
                .expect_regex
                .as_ref()
                .map(|r| Regex::new(r.get_ref()))
                .transpose()
                .map_err(|source| FromConfigError::Regex {
                    pool: pool.to_string(),
                    source,
                })?;
            let http = HttpCheck {
                method: h.method.clone(),
                path: h.path.clone(),
                host: h.host.clone(),
                expect_status: h.expect_status.clone(),
                expect_body: h.expect_body.clone(),
                expect_regex,
                ..HttpCheck::default()
            };
            http.validate().map_err(|reason| FromConfigError::Http {
                pool: pool.to_string(),
                reason,
            })?;
            CheckKind::Http(http)
        }
    };
    Ok(CheckSpec {
        kind,
        interval: h.interval,
        jitter: *h.jitter.get_ref(),
        timeout: h.timeout,
        rise: *h.rise.get_ref(),
        fall: *h.fall.get_ref(),
        port: h.port,
    })
}

/// `[pool.agent]` → [`AgentSpec`].
pub fn agent_spec(a: &cfg::AgentCheck) -> AgentSpec {
    AgentSpec {
        port: a.port,
        interval: a.interval,
        timeout: a.timeout,
        send: a.send.clone().unwrap_or_default().into_bytes(),
    }
}

/// `[pool.outlier]` → [`OutlierSpec`].
pub fn outlier_spec(o: &cfg::Outlier) -> OutlierSpec {
    OutlierSpec {
        consecutive_errors: o.consecutive_errors,
        base_ejection: o.base_ejection,
        max_ejection: o.max_ejection,
        max_ejected_percent: u32::from(o.max_ejected_percent),
        panic_threshold_percent: u32::from(o.panic_threshold_percent),
    }
}

/// A server's registration: checked iff the pool has `[pool.health]`, admin state from config.
pub fn target_options(s: &cfg::Server, health: Option<&cfg::HealthCheck>) -> TargetOptions {
    TargetOptions {
        checked: health.is_some(),
        rise: health.map_or(2, |h| *h.rise.get_ref()),
        fall: health.map_or(3, |h| *h.fall.get_ref()),
        admin: match s.state {
            AdminState::Active => ServerState::Active,
            AdminState::Draining => ServerState::Draining,
            AdminState::Maintenance => ServerState::Maintenance,
        },
    }
}

/// The key of a configured server.
pub fn target_key(pool: &cfg::Pool, s: &cfg::Server) -> TargetKey {
    TargetKey::new(pool.name.get_ref(), s.name.get_ref())
}

/// Declare a pool and its servers in the hub; after a reload, the same call keeps the health
/// of servers that stayed and forgets servers that left.
pub fn register_pool(hub: &HealthHub, pool: &cfg::Pool, now: Instant) {
    let name = pool.name.get_ref();
    hub.add_pool(name, pool.outlier.as_ref().map(outlier_spec), now);
    for s in &pool.server {
        let opts = target_options(s, pool.health.as_ref());
        hub.add_target(&target_key(pool, s), opts, now);
    }
    for gone in hub.servers(name) {
        if !pool
            .server
            .iter()
            .any(|s| s.name.get_ref().as_str() == &*gone)
        {
            hub.remove_target(&TargetKey::new(name, &gone), now);
        }
    }
}

/// Start the active and agent checks of a registered pool (servers in maintenance are not
/// checked). Abort the handles to stop them.
pub fn spawn_pool_checks(
    hub: &Arc<HealthHub>,
    pool: &cfg::Pool,
    rng: &SharedRng,
) -> Result<Vec<JoinHandle<()>>, FromConfigError> {
    let check = pool
        .health
        .as_ref()
        .map(|h| check_spec(pool.name.get_ref(), h))
        .transpose()?;
    let agent = pool.agent.as_ref().map(agent_spec);
    let mut tasks = Vec::new();
    for s in pool
        .server
        .iter()
        .filter(|s| s.state != AdminState::Maintenance)
    {
        let key = target_key(pool, s);
        let addr = *s.address.get_ref();
        if let Some(c) = &check {
            tasks.push(scheduler::spawn_check(
                hub.clone(),
                key.clone(),
                addr,
                c.clone(),
                rng.clone(),
            ));
        }
        if let Some(a) = &agent {
            tasks.push(scheduler::spawn_agent(
                hub.clone(),
                key,
                addr,
                a.clone(),
                rng.clone(),
            ));
        }
    }
    Ok(tasks)
}
