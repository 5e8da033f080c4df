//! The `[vrrp]` role: the section's virtual routers (tenbin-ha's driver on its own thread),
//! their VIP guard process, what the node tells them and what they report.
//!
//! - [`start`]: the guard first (this binary as `tenbin vrrp --guard`, tied by a pipe, so
//!   the VIPs go even when the node is SIGKILLed), then the driver.
//! - [`VrrpRole::apply`]: priority, preemption, tracked objects and notify change live;
//!   anything else (interface, VRID, VIPs, interval, ...) is left for the next restart,
//!   since restarting a router hands its VIPs over.
//! - [`readiness`]: the tracked objects the node reports (`pool/NAME`, `frontend/NAME`,
//!   `proxy`), and [`follow`] feeds them to the driver on every health change.
//! - [`VrrpRole::shutdown`]: masters send priority 0 and keep the VIPs until the successor
//!   is heard; the node calls it before its listeners close, so the backup takes the VIPs
//!   at once and requests already in flight still finish here.
//!
//! `tenbin vrrp` runs the same role with nothing tracked.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Weak;
use std::time::Duration;

use anyhow::Context as _;
use tenbin_config::api::{VrrpDrops, VrrpInstanceState, VrrpState};
use tenbin_config::vrrp::{Checksum, VrrpInstance, VrrpSection};
use tenbin_ha::vrrp::driver::track::Track;
use tenbin_ha::vrrp::driver::{Driver, Handle, Input, InstanceConfig, Status};
use tenbin_ha::vrrp::machine::Counters;
use tenbin_ha::vrrp::{ChecksumMode, State};
use tenbin_health::HealthSnapshot;
use tenbin_proxy::tier::FrontendInfo;
use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

use super::control::Node;

type Joined = std::io::Result<Vec<(String, Counters)>>;

/// The running virtual routers of a node.
#[derive(Debug)]
pub struct VrrpRole {
    section: VrrpSection,
    handle: Handle,
    thread: Option<std::thread::JoinHandle<Joined>>,
    /// Held until the role ends; the guard's stdin then reaches end of file.
    guard: Option<Child>,
}

/// Starts `section`'s routers; `path` is the file the guard reads them from. `tracked`:
/// the objects' state at the start ([`readiness`]), so a node that cannot serve starts in
/// Fault.
pub fn start(
    section: &VrrpSection,
    path: &Path,
    tracked: &[(String, bool)],
) -> anyhow::Result<VrrpRole> {
    let guard = Command::new(std::env::current_exe()?)
        .arg("vrrp")
        .arg("--guard")
        .arg("-c")
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .context("vrrp: cannot start the VIP guard")?;
    let (driver, handle) = Driver::new(instances(section)).context("vrrp: cannot start")?;
    track(&handle, tracked);
    let thread = std::thread::Builder::new()
        .name("vrrp".into())
        .spawn(move || driver.run(|_| {}))
        .context("vrrp: cannot start the driver thread")?;
    Ok(VrrpRole {
        section: section.clone(),
        handle,
        thread: Some(thread),
        guard: Some(guard),
    })
}

impl VrrpRole {
    /// Applies a changed `[vrrp]`: `Ok(true)` when it took effect now, `Ok(false)` when it
    /// waits for the next restart (the running routers are left as they are).
    pub fn apply(&mut self, section: &VrrpSection) -> bool {
        let old = instances(&self.section);
        let new = instances(section);
        let live = old.len() == new.len()
            && old.iter().all(|o| {
                new.iter()
                    .find(|n| n.name == o.name)
                    .is_some_and(|n| o.live_change(n) != Some(false))
            });
        if live {
            self.handle.send(Input::Reconfigure(new));
            self.section = section.clone();
        }
        live
    }

    /// Tells the routers which tracked objects are up.
    pub fn track(&self, objects: &[(String, bool)]) {
        track(&self.handle, objects);
    }

    pub fn state(&self) -> VrrpState {
        VrrpState {
            instances: self
                .handle
                .status()
                .into_iter()
                .map(instance_state)
                .collect(),
        }
    }

    /// Graceful stop: priority 0, VIPs handed over, driver thread joined (bounded by two
    /// of the longest advertisement interval and a second), then the guard ends.
    pub async fn shutdown(mut self) {
        self.handle.send(Input::Shutdown);
        let longest = self
            .section
            .instance
            .iter()
            .map(|i| u64::from(i.interval_centis()))
            .max()
            .unwrap_or(0);
        let bound = Duration::from_millis(longest * 20) + Duration::from_secs(1);
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            match tokio::time::timeout(bound, joined).await {
                Ok(Ok(Ok(Ok(counters)))) => {
                    for (name, c) in counters {
                        tracing::info!(instance = %name, ?c, "vrrp counters at exit");
                    }
                }
                Ok(Ok(Ok(Err(e)))) => tracing::error!("vrrp: the driver failed: {e}"),
                Ok(_) => tracing::error!("vrrp: the driver thread panicked"),
                Err(_) => tracing::error!("vrrp: the driver did not stop in {bound:?}"),
            }
        }
        self.end_guard();
    }

    fn end_guard(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            // Closing its stdin is what makes it remove the VIPs and exit.
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }
}

impl Drop for VrrpRole {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.handle.send(Input::Shutdown);
        }
        self.end_guard();
    }
}

/// The objects a `[[vrrp.instance.track]]` may name, and whether each is up: `pool/NAME`
/// (a server of it takes new sessions, or the pool is in panic mode), `frontend/NAME` (one
/// of its pools is up) and `proxy` (one frontend is up: the node can serve). The one place
/// VRRP learns the node's health; the node's health bus is to replace its inputs.
pub fn readiness(frontends: &[FrontendInfo], health: &HealthSnapshot) -> Vec<(String, bool)> {
    let pool_up = |name: &str| {
        health.pool(name).is_some_and(|p| p.panic)
            || health
                .pool_targets(name)
                .any(|(_, t)| t.state.accepts_new())
    };
    let mut out: Vec<(String, bool)> = health
        .pools
        .keys()
        .map(|p| (format!("pool/{p}"), pool_up(p)))
        .collect();
    let mut any = false;
    for f in frontends {
        let up = f.pools.iter().any(|p| pool_up(p));
        any |= up;
        out.push((format!("frontend/{}", f.name), up));
    }
    out.push(("proxy".to_string(), any));
    out
}

/// Feeds [`readiness`] to the node's VRRP role on every health snapshot, until `stop`.
pub(super) async fn follow(
    node: Weak<Mutex<Node>>,
    mut health: watch::Receiver<std::sync::Arc<HealthSnapshot>>,
    stop: CancellationToken,
) {
    loop {
        let snapshot = health.borrow_and_update().clone();
        let Some(node) = node.upgrade() else { return };
        {
            let node = node.lock().await;
            if let Some(role) = &node.vrrp {
                role.track(&readiness(&node.proxy.frontends(), &snapshot));
            }
        }
        drop(node);
        tokio::select! {
            r = health.changed() => if r.is_err() { return },
            () = stop.cancelled() => return,
        }
    }
}

fn track(handle: &Handle, objects: &[(String, bool)]) {
    for (name, up) in objects {
        handle.send(Input::Tracked {
            name: name.clone(),
            up: *up,
        });
    }
}

fn instance_state(s: Status) -> VrrpInstanceState {
    VrrpInstanceState {
        state: match s.state {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
        .to_string(),
        name: s.name,
        interface: s.interface,
        vrid: s.vrid,
        priority: s.priority,
        configured_priority: s.configured_priority,
        master: s.master,
        tracked_down: s.tracked_down,
        transitions: s.transitions,
        adverts_sent: s.counters.sent,
        adverts_received: s.counters.received,
        drops: VrrpDrops {
            ttl: s.counters.dropped_ttl,
            malformed: s.counters.dropped_malformed,
            checksum: s.counters.dropped_checksum,
            other_vrid: s.counters.other_vrid,
        },
    }
}

/// The driver's configs for `section`'s instances.
pub fn instances(section: &VrrpSection) -> Vec<InstanceConfig> {
    section
        .instance
        .iter()
        .map(|i| instance(i, section))
        .collect()
}

fn instance(i: &VrrpInstance, section: &VrrpSection) -> InstanceConfig {
    InstanceConfig {
        name: i.name.get_ref().clone(),
        interface: i.interface.get_ref().clone(),
        vrid: *i.vrid.get_ref(),
        priority: *i.priority.get_ref(),
        interval: i.interval_centis(),
        preempt: i.preempt,
        preempt_delay: i.preempt_delay,
        vips: i.vips.get_ref().iter().map(|v| v.0).collect(),
        checksum: match i.checksum {
            Checksum::Keepalived => ChecksumMode::PseudoHeader,
            Checksum::Rfc5798 => ChecksumMode::VrrpOnly,
            Checksum::KeepalivedOldUnicast => ChecksumMode::PseudoHeaderGroup,
        },
        unicast_peers: i.unicast_peers.get_ref().clone(),
        source: i.source,
        probe_targets: i.probe_v4(),
        probe_vips: i.probe_vips,
        track_interfaces: i.track_interfaces.clone(),
        track: i
            .track
            .iter()
            .map(|t| Track {
                name: t.name.clone(),
                weight: t.weight,
            })
            .collect(),
        notify: i.notify.clone().or_else(|| section.notify.clone()),
        vip_lifetime: i.vip_lifetime_secs(),
        garp_repeat: i.garp_repeat,
    }
}

impl Node {
    /// `[vrrp]` changed to `section`: the line to report, or `None` when it waits for the
    /// next restart.
    pub(super) async fn apply_vrrp(
        &mut self,
        section: Option<&VrrpSection>,
    ) -> anyhow::Result<Option<&'static str>> {
        match (self.vrrp.as_mut(), section) {
            (Some(role), Some(s)) => {
                if !role.apply(s) {
                    return Ok(None);
                }
                // Newly tracked objects learn their state now, not at the next health change.
                role.track(&readiness(&self.proxy.frontends(), &self.health.snapshot()));
                Ok(Some("[vrrp] applied live"))
            }
            (None, Some(s)) => {
                let tracked = readiness(&self.proxy.frontends(), &self.health.snapshot());
                self.vrrp = Some(start(s, &self.path, &tracked)?);
                Ok(Some("[vrrp] started"))
            }
            (Some(_), None) => {
                if let Some(role) = self.vrrp.take() {
                    role.shutdown().await;
                }
                Ok(Some("[vrrp] stopped"))
            }
            (None, None) => Ok(Some("[vrrp] removed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use tenbin_core::ServerState;
    use tenbin_health::{HealthSnapshot, TargetHealth, TargetKey};
    use tenbin_proxy::tier::FrontendInfo;

    use super::readiness;

    fn target(state: ServerState) -> TargetHealth {
        TargetHealth {
            state,
            checked: state,
            ejected: false,
            load_percent: 100,
            maxconn: None,
            reason: String::new(),
            since: Instant::now(),
        }
    }

    #[test]
    fn pools_frontends_and_the_proxy_are_up_while_a_server_takes_new_sessions() {
        let mut h = HealthSnapshot::default();
        for (pool, server, state) in [
            ("web", "a", ServerState::Down),
            ("web", "b", ServerState::Active),
            ("api", "a", ServerState::Draining),
            ("img", "a", ServerState::Down),
        ] {
            h.targets
                .insert(TargetKey::new(pool, server), target(state));
            h.pools.insert(Arc::from(pool), Default::default());
        }
        // Panic mode serves the down servers again: the pool serves.
        h.pools.get_mut("img").unwrap().panic = true;
        let fe = |name: &str, pools: &[&str]| FrontendInfo {
            name: name.into(),
            mode: "http",
            listen: Vec::new(),
            pools: pools.iter().map(|p| p.to_string()).collect(),
        };
        let got = readiness(&[fe("site", &["web"]), fe("api", &["api"])], &h);
        let up = |n: &str| got.iter().find(|(name, _)| name == n).map(|(_, up)| *up);
        assert_eq!(up("pool/web"), Some(true));
        assert_eq!(
            up("pool/api"),
            Some(false),
            "draining takes no new sessions"
        );
        assert_eq!(up("pool/img"), Some(true));
        assert_eq!(up("frontend/site"), Some(true));
        assert_eq!(up("frontend/api"), Some(false));
        assert_eq!(up("proxy"), Some(true));
        let got = readiness(&[fe("api", &["api"])], &h);
        assert_eq!(got.last(), Some(&("proxy".to_string(), false)));
    }
}
