//! The role's state as the admin API shows it ([`BgpState`]), and as Prometheus text for
//! `tenbin mux run --metrics`.

use std::time::Instant;

use ipnet::IpNet;
use tenbin_config::api::bgp::{BgpNeighborState, BgpPrefix, BgpState};
use tenbin_ha::bgp::State;

use super::{lock, BgpRole};

impl BgpRole {
    /// Each neighbour's session and what is announced, as the admin API shows it.
    pub fn state(&self) -> BgpState {
        let a = lock(&self.inner);
        let status = a.speaker.status();
        let peers = status.borrow();
        let now = Instant::now();
        let neighbors = self
            .section
            .neighbor
            .iter()
            .map(|n| {
                let address = *n.address.get_ref();
                let p = peers.iter().find(|p| p.peer == address);
                BgpNeighborState {
                    address,
                    remote_as: *n.remote_as.get_ref(),
                    state: p.map_or("idle", |p| state_name(p.state)).to_string(),
                    uptime_secs: p
                        .and_then(|p| p.established_at)
                        .map(|t| now.saturating_duration_since(t).as_secs_f64()),
                    hold_time_secs: p.map_or(0, |p| p.hold_time.as_secs()),
                    prefixes_announced: p.map_or(0, |p| p.announced as u64),
                    flaps: p.map_or(0, |p| p.stats.flaps),
                    updates_sent: p.map_or(0, |p| p.stats.updates_sent),
                    updates_received: p.map_or(0, |p| p.stats.updates_received),
                    last_error: p.and_then(|p| p.last_error.clone()),
                }
            })
            .collect();
        BgpState {
            router_id: *self.section.router_id.get_ref(),
            local_as: *self.section.local_as.get_ref(),
            neighbors,
            prefixes: a
                .wanted
                .prefixes()
                .into_iter()
                .map(|(address, source)| BgpPrefix {
                    prefix: IpNet::from(address).to_string(),
                    source: source.name().to_string(),
                    address,
                })
                .collect(),
            mux_drained: a.wanted.mux_drained,
        }
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Idle => "idle",
        State::Connect => "connect",
        State::Active => "active",
        State::OpenSent => "opensent",
        State::OpenConfirm => "openconfirm",
        State::Established => "established",
    }
}
