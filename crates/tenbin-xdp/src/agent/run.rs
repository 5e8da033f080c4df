//! The agent's event loop: probe results arrive on a channel and go through each check's
//! rise/fall; a report goes to every Mux on the report interval's timer and at once when a
//! service changes state; a new section (from `apply`) restarts the checks that changed and
//! keeps the state of those that did not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tenbin_config::mux::{AgentSection, AgentServiceCheck};
use tenbin_core::health::{HealthState, Hysteresis};
use tenbin_health::scheduler::SharedRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::probes::{self, Probed, ServiceKey};
use super::{AgentStats, CheckStats};
use crate::report::{Report, ReportKey, ServiceHealth};
use crate::tier::{report_key, TierError};

struct Check {
    config: AgentServiceCheck,
    state: Hysteresis,
}

pub(crate) struct Reporter {
    section: AgentSection,
    checks: Vec<Check>,
    key: Option<ReportKey>,
    socket: Option<UdpSocket>,
    seq: u64,
    generation: u64,
    probing: CancellationToken,
    results: mpsc::Sender<Probed>,
    stats: watch::Sender<AgentStats>,
    rng: SharedRng,
}

impl Reporter {
    pub(crate) async fn run(
        section: AgentSection,
        mut changes: mpsc::UnboundedReceiver<AgentSection>,
        stats: watch::Sender<AgentStats>,
        cancel: CancellationToken,
    ) {
        let (results, mut rx) = mpsc::channel(64);
        let mut me = Reporter {
            section: section.clone(),
            checks: Vec::new(),
            key: None,
            socket: None,
            // Wall-clock microseconds: strictly increasing across agent restarts too.
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
                .unwrap_or(1),
            generation: 0,
            probing: cancel.child_token(),
            results,
            stats,
            rng: probes::rng(),
        };
        if let Err(e) = me.reconfigure(section, &cancel).await {
            tracing::error!("agent reports: {e}");
        }
        let mut tick = ticker(me.section.report_interval);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                change = changes.recv() => {
                    let Some(s) = change else { break };
                    if s.report_interval != me.section.report_interval {
                        tick = ticker(s.report_interval);
                    }
                    if let Err(e) = me.reconfigure(s, &cancel).await {
                        tracing::error!("agent reports: {e}");
                    }
                }
                Some(p) = rx.recv() => {
                    if p.generation == me.generation && me.observe(p) {
                        me.report().await;
                    }
                }
                _ = tick.tick() => me.report().await,
            }
        }
        me.probing.cancel();
    }

    /// Takes a new section: checks whose config is unchanged keep their state.
    async fn reconfigure(
        &mut self,
        section: AgentSection,
        cancel: &CancellationToken,
    ) -> Result<(), TierError> {
        self.probing.cancel();
        self.probing = cancel.child_token();
        self.generation += 1;
        let mut old: Vec<Check> = std::mem::take(&mut self.checks);
        for (i, c) in section.check.iter().enumerate() {
            let spec = probes::check_spec(i, c)?;
            let kept = old
                .iter()
                .position(|o| o.config == *c)
                .map(|j| old.swap_remove(j));
            let (rise, fall) = (spec.rise, spec.fall);
            self.checks.push(kept.unwrap_or_else(|| Check {
                config: c.clone(),
                state: Hysteresis::new(rise, fall),
            }));
            probes::spawn(
                self.generation,
                i,
                spec.clone(),
                probes::target(c, &spec),
                self.results.clone(),
                self.probing.clone(),
                self.rng.clone(),
            );
        }
        self.key = match (&section.backend_address, section.report_to.is_empty()) {
            (Some(_), false) => Some(report_key(
                section.report_key.as_deref(),
                "agent.report_key",
            )?),
            _ => None,
        };
        let family = |a: Option<&SocketAddr>| a.map(|a| a.is_ipv4());
        if self.socket.is_none()
            || family(self.section.report_to.first()) != family(section.report_to.first())
        {
            self.socket = match section.report_to.first() {
                Some(to) => Some(bind(to).await?),
                None => None,
            };
        }
        self.section = section;
        self.publish(|_| {});
        Ok(())
    }

    /// One probe result; true when the service changed state.
    fn observe(&mut self, p: Probed) -> bool {
        let Some(c) = self.checks.get_mut(p.index) else {
            return false;
        };
        let changed = c.state.observe(p.error.is_none());
        if let Some(state) = changed {
            tracing::info!(vip = %c.config.vip, port = c.config.port, ?state, reason = p.error.as_deref().unwrap_or("passed"), "local service changed");
        }
        self.publish(|s| {
            if let Some(c) = s.checks.get_mut(p.index) {
                c.probes += 1;
                if p.error.is_some() {
                    c.failures += 1;
                }
                c.last_error = p.error;
            }
        });
        changed.is_some()
    }

    /// Sends the report of every service to every Mux (when reports are configured).
    async fn report(&mut self) {
        let (Some(key), Some(socket), Some(backend)) =
            (&self.key, &self.socket, self.section.backend_address)
        else {
            return;
        };
        self.seq += 1;
        // An unchecked service is left out: the Mux keeps to its configuration for it.
        let services = self
            .checks
            .iter()
            .filter(|c| c.state.state() != HealthState::Unchecked)
            .map(|c| ServiceHealth {
                vip: c.config.vip,
                port: c.config.port,
                proto: c.config.protocol.number(),
                healthy: c.state.state() == HealthState::Up,
            })
            .collect();
        let datagram = match (Report {
            seq: self.seq,
            backend,
            services,
        })
        .encode(key)
        {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("encoding the report: {e}");
                return;
            }
        };
        let mut errors = 0;
        for to in &self.section.report_to {
            if let Err(e) = socket.send_to(&datagram, to).await {
                errors += 1;
                tracing::warn!(%to, "sending report: {e}");
            }
        }
        self.publish(|s| {
            s.reports_sent += 1;
            s.send_errors += errors;
        });
    }

    /// Updates the published stats: states from the checks, counters through `f`.
    fn publish(&self, f: impl FnOnce(&mut AgentStats)) {
        self.stats.send_modify(|s| {
            let keys: Vec<ServiceKey> = self
                .checks
                .iter()
                .map(|c| probes::service_key(&c.config))
                .collect();
            let same = s
                .checks
                .iter()
                .map(|c| (c.vip, c.port, c.proto))
                .eq(keys.iter().copied());
            if !same {
                s.checks = self
                    .checks
                    .iter()
                    .map(|c| {
                        let (vip, port, proto) = probes::service_key(&c.config);
                        CheckStats::new(vip, port, proto)
                    })
                    .collect();
            }
            for (st, c) in s.checks.iter_mut().zip(&self.checks) {
                st.state = c.state.state();
            }
            f(s);
        });
    }
}

fn ticker(every: Duration) -> Interval {
    let mut t = tokio::time::interval(every.max(Duration::from_millis(1)));
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

async fn bind(to: &SocketAddr) -> Result<UdpSocket, TierError> {
    let any: IpAddr = if to.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let addr = SocketAddr::new(any, 0);
    UdpSocket::bind(addr)
        .await
        .map_err(|source| TierError::Bind { addr, source })
}
