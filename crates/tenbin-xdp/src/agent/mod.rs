//! The host agent's façade: [`start`] puts the `[agent]` VIPs on `lo`, sets the DSR sysctls,
//! attaches the decapsulating program to `[agent].interface` and starts the event loop that
//! runs every `[[agent.check]]` (kind, interval, jitter, timeout, rise and fall, through
//! tenbin-health's probers) and reports to the Muxes. The [`AgentHandle`] takes new sections
//! ([`AgentHandle::apply`]), reads the state ([`AgentHandle::stats`]) and stops
//! ([`AgentHandle::shutdown`]); the host setup is undone when the handle is dropped.
//!
//! The host changes themselves ([`configure`], [`unconfigure`], [`sysctls`]) are in
//! [`crate::host`].

mod probes;
mod run;

use std::net::IpAddr;
use std::sync::Mutex;

use tenbin_config::mux::AgentSection;
use tenbin_core::health::HealthState;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::host::{configure, sysctls, unconfigure, AgentError};
use crate::loader::{is_root, Attached, Program};
use crate::tier::{load, runtime, ApplyError, StartError, TierContext, TierError};

/// A running host agent.
pub struct AgentHandle {
    host: Mutex<Host>,
    changes: mpsc::UnboundedSender<AgentSection>,
    stats: watch::Receiver<AgentStats>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle")
            .field("stats", &*self.stats.borrow())
            .finish_non_exhaustive()
    }
}

/// The agent's state: each check's health and counts, the reports sent and the
/// decapsulation counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// One per `[[agent.check]]`, in config order.
    pub checks: Vec<CheckStats>,
    pub reports_sent: u64,
    pub send_errors: u64,
    /// decapsulated, passed, dropped, not_local (filled by [`AgentHandle::stats`]).
    pub decap: Vec<u64>,
}

/// One check's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckStats {
    pub vip: IpAddr,
    pub port: u16,
    pub proto: u8,
    /// After rise/fall; `Unchecked` services are left out of reports.
    pub state: HealthState,
    pub probes: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

impl CheckStats {
    pub(crate) fn new(vip: IpAddr, port: u16, proto: u8) -> Self {
        CheckStats {
            vip,
            port,
            proto,
            state: HealthState::Unchecked,
            probes: 0,
            failures: 0,
            last_error: None,
        }
    }
}

/// Validates `section`, sets up the host (root) and starts the checks and reports on the
/// current tokio runtime.
pub fn start(section: AgentSection, ctx: TierContext) -> Result<AgentHandle, StartError> {
    section.validate()?;
    if !is_root() {
        return Err(TierError::NotRoot("the host agent"));
    }
    let rt = runtime()?;
    for (i, c) in section.check.iter().enumerate() {
        probes::check_spec(i, c)?;
    }
    let host = Host::up(&section)?;
    let (stats_tx, stats) = watch::channel(AgentStats::default());
    let (changes, rx) = mpsc::unbounded_channel();
    let cancel = ctx.cancel.child_token();
    let task = rt.spawn(run::Reporter::run(section, rx, stats_tx, cancel.clone()));
    Ok(AgentHandle {
        host: Mutex::new(host),
        changes,
        stats,
        cancel,
        task,
    })
}

impl AgentHandle {
    /// Takes a new `[agent]`: checks, report settings, VIPs, tunnel addresses and the
    /// interface all apply at once. A refused section changes nothing.
    pub fn apply(&self, section: AgentSection) -> Result<(), ApplyError> {
        section.validate()?;
        for (i, c) in section.check.iter().enumerate() {
            probes::check_spec(i, c)?;
        }
        lock(&self.host).change(&section)?;
        self.changes.send(section).map_err(|_| TierError::Stopped)
    }

    /// The checks' state, the reports sent and the decapsulation counters.
    pub fn stats(&self) -> AgentStats {
        let mut s = self.stats.borrow().clone();
        s.decap = lock(&self.host).decap.decap_stats().unwrap_or_default();
        s
    }

    /// Follow the stats as they change (each probe result and report).
    pub fn watch(&self) -> watch::Receiver<AgentStats> {
        self.stats.clone()
    }

    /// Stops the checks and reports and waits for them; the VIPs leave `lo` and the program
    /// detaches when this returns.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// What the agent changed on the host, undone on drop.
struct Host {
    decap: Program,
    interface: String,
    vips: Vec<IpAddr>,
    tunnel: Vec<IpAddr>,
}

impl Host {
    fn up(s: &AgentSection) -> Result<Host, TierError> {
        configure(&s.interface, &s.vips)?;
        let decap = attach(s).inspect_err(|_| unconfigure(&s.vips))?;
        let host = Host {
            decap,
            interface: s.interface.clone(),
            vips: s.vips.clone(),
            tunnel: s.tunnel_addresses.clone(),
        };
        tracing::info!(interface = %s.interface, vips = ?s.vips, "agent up: decapsulating IPIP/GRE, VIPs on lo");
        Ok(host)
    }

    fn change(&mut self, s: &AgentSection) -> Result<(), TierError> {
        if s.interface != self.interface {
            configure(&s.interface, &s.vips)?;
            self.decap = attach(s)?;
            self.interface = s.interface.clone();
            self.tunnel = s.tunnel_addresses.clone();
        } else if s.tunnel_addresses != self.tunnel {
            self.decap
                .set_locals(&s.tunnel_addresses)
                .map_err(load("setting tunnel addresses"))?;
            self.tunnel = s.tunnel_addresses.clone();
        }
        configure(&s.interface, &s.vips)?;
        let gone: Vec<IpAddr> = self
            .vips
            .iter()
            .filter(|v| !s.vips.contains(v))
            .copied()
            .collect();
        unconfigure(&gone);
        self.vips = s.vips.clone();
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        unconfigure(&self.vips);
        let s = self.decap.decap_stats().unwrap_or_default();
        tracing::info!(
            ?s,
            "agent stopping (decapsulated, passed, dropped, not_local)"
        );
    }
}

fn attach(s: &AgentSection) -> Result<Program, TierError> {
    let mut decap = Program::decap().map_err(load("loading the decapsulation program"))?;
    decap
        .set_locals(&s.tunnel_addresses)
        .map_err(load("setting tunnel addresses"))?;
    if decap
        .attach(&s.interface)
        .map_err(load(format!("attaching to {}", s.interface)))?
        == Attached::Generic
    {
        tracing::warn!(interface = %s.interface, "decapsulation runs in generic (skb) XDP mode");
    }
    Ok(decap)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
