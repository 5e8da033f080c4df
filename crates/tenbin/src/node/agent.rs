//! The `[agent]` role in the node: `tenbin_xdp::agent`'s handle, started and followed
//! through [`crate::role::follow`] (the code `tenbin agent` runs too), and its state for
//! [`NodeState`](tenbin_config::api::NodeState)'s `agent` field.

use tenbin_config::api::{AgentCheckState, AgentState};
use tenbin_core::health::HealthState;
use tenbin_xdp::agent::AgentHandle;

use crate::role::{follow, Refused};

/// The running host agent and the section it runs.
#[derive(Debug, Default)]
pub(super) struct Agent {
    handle: Option<AgentHandle>,
    section: Option<tenbin_config::mux::AgentSection>,
}

impl Agent {
    /// Follows `[agent]` (see [`follow`]).
    pub(super) async fn apply(
        &mut self,
        section: Option<&tenbin_config::mux::AgentSection>,
        ctx: &tenbin_xdp::TierContext,
    ) -> Result<(), Refused> {
        follow(&mut self.handle, section, ctx).await?;
        self.section = section.cloned();
        Ok(())
    }

    pub(super) fn state(&self) -> Option<AgentState> {
        let (handle, section) = (self.handle.as_ref()?, self.section.as_ref()?);
        let s = handle.stats();
        let decap = |i: usize| s.decap.get(i).copied().unwrap_or(0);
        Some(AgentState {
            interface: section.interface.clone(),
            vips: section.vips.clone(),
            checks: s
                .checks
                .iter()
                .map(|c| AgentCheckState {
                    vip: c.vip,
                    port: c.port,
                    protocol: if c.proto == 17 { "udp" } else { "tcp" }.to_string(),
                    state: match c.state {
                        HealthState::Unchecked => "unchecked",
                        HealthState::Up => "up",
                        HealthState::Down => "down",
                    }
                    .to_string(),
                    probes: c.probes,
                    failures: c.failures,
                    last_error: c.last_error.clone(),
                })
                .collect(),
            reports_sent: s.reports_sent,
            send_errors: s.send_errors,
            decapsulated: decap(0),
            passed: decap(1),
            dropped: decap(2),
            not_local: decap(3),
        })
    }

    /// Stops the checks and reports; the VIPs leave `lo` and the program detaches.
    pub(super) async fn shutdown(&mut self) {
        let _ = follow(&mut self.handle, None, &Default::default()).await;
        self.section = None;
    }
}
