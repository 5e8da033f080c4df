//! The `[mux]` role in the node: `tenbin_xdp::mux`'s handle, started and followed through
//! [`crate::role::follow`] (the code `tenbin mux run` runs too), its readiness followed onto
//! the node's health bus (`Tier::Mux`), and its state for
//! [`NodeState`](tenbin_config::api::NodeState)'s `mux` field.

use tenbin_config::api::{MuxState, MuxVipState};
use tenbin_health::bus::{HealthBus, Tier, TierInput};
use tenbin_xdp::abi::STAT_NAMES;
use tenbin_xdp::mux::{MuxHandle, MuxReadiness};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::role::{follow, Refused};

/// The running Mux, the interface it runs on and the task copying its readiness to the bus.
#[derive(Debug)]
pub(super) struct Mux {
    handle: Option<MuxHandle>,
    interface: String,
    bus: HealthBus,
    follower: Option<CancellationToken>,
}

impl Mux {
    pub(super) fn new(bus: HealthBus) -> Mux {
        Mux {
            handle: None,
            interface: String::new(),
            bus,
            follower: None,
        }
    }

    /// Follows `[mux]` (see [`follow`]).
    pub(super) async fn apply(
        &mut self,
        section: Option<&tenbin_config::mux::MuxSection>,
        ctx: &tenbin_xdp::TierContext,
    ) -> Result<(), Refused> {
        if section.is_none() {
            // The last readiness a stopping loop sends must not outlive the tier on the bus.
            if let Some(f) = self.follower.take() {
                f.cancel();
            }
        }
        follow(&mut self.handle, section, ctx).await?;
        self.interface = section.map(|s| s.interface.clone()).unwrap_or_default();
        match (&self.handle, &self.follower) {
            (Some(h), None) => {
                let stop = CancellationToken::new();
                tokio::spawn(to_bus(h.readiness(), self.bus.clone(), stop.clone()));
                self.follower = Some(stop);
            }
            (None, _) => self.bus.set(Tier::Mux, None),
            (Some(_), Some(_)) => {}
        }
        Ok(())
    }

    /// The Mux's readiness, for whoever announces its VIPs (BGP) or folds it into the
    /// node's health; `None` when `[mux]` does not run.
    pub(super) fn readiness(
        &self,
    ) -> Option<tokio::sync::watch::Receiver<tenbin_xdp::mux::MuxReadiness>> {
        self.handle.as_ref().map(MuxHandle::readiness)
    }

    /// The data plane's counters (verdicts, per VIP, per backend) for `/metrics`, which
    /// renders them with `tenbin_xdp::metrics`, as `tenbin mux run --metrics` does.
    pub(super) fn counters(&self) -> Option<tenbin_xdp::metrics::MuxCounters> {
        match self.handle.as_ref()?.stats() {
            Ok(s) => Some(s.counters),
            Err(e) => {
                tracing::warn!("mux: reading counters: {e}");
                None
            }
        }
    }

    pub(super) fn state(&self) -> Option<MuxState> {
        let handle = self.handle.as_ref()?;
        let (readiness, counters, loops) = match handle.stats() {
            Ok(s) => (s.readiness, Some(s.counters), s.loop_counts),
            Err(e) => {
                tracing::warn!("mux: reading counters: {e}");
                (
                    handle.readiness().borrow().clone(),
                    None,
                    handle.loop_counts(),
                )
            }
        };
        let vips = readiness
            .vips
            .iter()
            .map(|v| {
                let protocol = match v.proto {
                    6 => "tcp",
                    17 => "udp",
                    _ => "ip",
                };
                let addr = match v.addr {
                    std::net::IpAddr::V6(a) => format!("[{a}]"),
                    a => a.to_string(),
                };
                // The counters' label for this VIP (tenbin_xdp::metrics's `addr:port/proto`).
                let label = format!("{addr}:{}/{protocol}", v.port);
                let c = counters
                    .as_ref()
                    .and_then(|c| c.vips.iter().find(|(l, _)| *l == label))
                    .map(|(_, c)| *c)
                    .unwrap_or_default();
                MuxVipState {
                    address: v.addr,
                    port: v.port,
                    protocol: protocol.to_string(),
                    healthy: v.healthy,
                    packets: c.packets,
                    bytes: c.bytes,
                    new_flows: c.new_flows,
                }
            })
            .collect();
        Some(MuxState {
            interface: self.interface.clone(),
            attached: readiness.attached,
            vips,
            packets: counters
                .map(|c| {
                    STAT_NAMES
                        .iter()
                        .zip(c.verdicts)
                        .map(|(n, v)| (n.to_string(), v))
                        .collect()
                })
                .unwrap_or_default(),
            updates: loops.updates,
            apply_errors: loops.apply_errors,
            reports_accepted: loops.reports_accepted,
            reports_ignored: loops.reports_ignored,
            reports_refused: loops.reports_refused,
        })
    }

    /// Stops the loop and detaches the program (after BGP has withdrawn, where it runs).
    pub(super) async fn shutdown(&mut self) {
        let _ = self.apply(None, &Default::default()).await;
    }
}

/// Copies every readiness the Mux publishes to the bus until `stop` or the loop ends.
async fn to_bus(mut rx: watch::Receiver<MuxReadiness>, bus: HealthBus, stop: CancellationToken) {
    loop {
        let input = {
            let r = rx.borrow_and_update();
            TierInput::Mux {
                attached: r.attached,
                vips: r.vips.len(),
                vips_healthy: r.vips.iter().filter(|v| v.healthy).count(),
            }
        };
        bus.set(Tier::Mux, Some(input));
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    }
}
