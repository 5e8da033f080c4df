//! Folding one pool's inputs into published rows: admin intent, active check, agent,
//! ejection and panic mode, in that order of precedence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tenbin_core::ServerState;

use super::TargetOptions;
use crate::agent::{AgentAdmin, AgentOper};
use crate::hysteresis::Hysteresis;
use crate::outlier::OutlierPool;
use crate::snapshot::{HealthSnapshot, PoolHealth, TargetHealth};
use crate::target::TargetKey;

#[derive(Debug)]
pub(super) struct Target {
    pub(super) opts: TargetOptions,
    pub(super) hyst: Hysteresis,
    pub(super) check_reason: String,
    pub(super) agent_admin: Option<AgentAdmin>,
    pub(super) agent_oper: Option<AgentOper>,
    pub(super) agent_reason: Option<String>,
    pub(super) percent: u32,
    pub(super) maxconn: Option<u32>,
    pub(super) state: ServerState,
    pub(super) since: Instant,
}

#[derive(Debug)]
pub(super) struct Pool {
    pub(super) outlier: Option<OutlierPool<Arc<str>>>,
    pub(super) targets: BTreeMap<Arc<str>, Target>,
}

/// One target before pool-wide rules (ejection, panic mode) apply.
struct Row {
    server: Arc<str>,
    checked: ServerState,
    reason: String,
    ejected: bool,
    /// Taken out by an operator or agent, not by health.
    pinned: bool,
}

/// Combine admin intent, check, agent, ejection and panic mode for every target of a pool.
pub(super) fn evaluate_pool(
    name: &Arc<str>,
    pool: &mut Pool,
    now: Instant,
    snap: &mut HealthSnapshot,
) -> PoolHealth {
    let mut rows = Vec::with_capacity(pool.targets.len());
    for (server, t) in &pool.targets {
        let (checked, reason) = checked_state(t);
        let ejected = pool
            .outlier
            .as_ref()
            .is_some_and(|d| d.is_ejected(server, now));
        rows.push(Row {
            server: server.clone(),
            checked,
            reason,
            ejected,
            pinned: admin_pinned(t),
        });
    }
    // Servers an operator or agent took out (maintenance, drain) are neither counted nor
    // brought back by panic mode: that is intent, not health.
    let eligible = rows.iter().filter(|r| !r.pinned).count();
    let usable = rows
        .iter()
        .filter(|r| r.checked == ServerState::Active && !r.ejected)
        .count();
    let panic = pool
        .outlier
        .as_ref()
        .is_some_and(|d| d.panics(usable, eligible));
    for row in rows {
        let Row {
            server,
            checked,
            reason,
            ejected,
            pinned,
        } = row;
        let (mut state, mut why) = (checked, reason);
        if ejected && matches!(state, ServerState::Active | ServerState::Draining) {
            state = ServerState::Down;
            why = format!("ejected by passive detection; {why}");
        }
        if panic && !pinned && matches!(state, ServerState::Down | ServerState::Draining) {
            state = ServerState::Active;
            why = format!("panic mode ({usable}/{eligible} usable), health ignored; {why}");
        }
        let Some(t) = pool.targets.get_mut(&server) else {
            continue;
        };
        if t.state != state {
            t.state = state;
            t.since = now;
        }
        snap.targets.insert(
            TargetKey {
                pool: name.clone(),
                server,
            },
            TargetHealth {
                state,
                checked,
                ejected,
                load_percent: t.percent,
                maxconn: t.maxconn,
                reason: why,
                since: t.since,
            },
        );
    }
    PoolHealth {
        panic,
        usable,
        eligible,
    }
}

/// Taken out by intent (config or agent maintenance/drain) rather than by health.
fn admin_pinned(t: &Target) -> bool {
    matches!(
        t.opts.admin,
        ServerState::Maintenance | ServerState::Draining
    ) || matches!(t.agent_admin, Some(AgentAdmin::Maint | AgentAdmin::Drain))
}

/// The state from admin intent, active check and agent alone, with its reason.
fn checked_state(t: &Target) -> (ServerState, String) {
    let agent_why = || t.agent_reason.clone().unwrap_or_else(|| "agent".into());
    if t.opts.admin == ServerState::Maintenance {
        return (ServerState::Maintenance, "maintenance (config)".into());
    }
    if t.agent_admin == Some(AgentAdmin::Maint) {
        return (
            ServerState::Maintenance,
            format!("maintenance: {}", agent_why()),
        );
    }
    let check = if t.opts.checked {
        t.hyst.state()
    } else {
        ServerState::Active
    };
    if t.agent_oper == Some(AgentOper::Down) {
        return (ServerState::Down, format!("down: {}", agent_why()));
    }
    match check {
        ServerState::Down | ServerState::Unchecked => return (check, t.check_reason.clone()),
        ServerState::Draining => return (check, format!("draining: {}", t.check_reason)),
        _ => {}
    }
    if t.opts.admin == ServerState::Draining {
        return (ServerState::Draining, "draining (config)".into());
    }
    if t.agent_admin == Some(AgentAdmin::Drain) {
        return (ServerState::Draining, format!("draining: {}", agent_why()));
    }
    (ServerState::Active, t.check_reason.clone())
}
