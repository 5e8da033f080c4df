//! The node's state as the admin API shows it, read from the tiers.

use std::collections::BTreeSet;
use std::time::Instant;

use tenbin_config::api::{
    DatacenterState, DnsState, FrontendState, NodeState, PoolState, ServerStatus, TierReadiness,
    VipState,
};
use tenbin_core::ServerState;
use tenbin_health::bus::Tier;
use tenbin_health::TargetKey;

use super::control::Node;

impl Node {
    pub(super) fn state(&self) -> NodeState {
        let health = self.health.snapshot();
        let now = Instant::now();
        let frontends: Vec<FrontendState> = self
            .proxy
            .frontends()
            .into_iter()
            .map(|f| FrontendState {
                name: f.name,
                mode: f.mode.to_string(),
                listen: f.listen,
                pools: f.pools,
            })
            .collect();
        let mut pools = Vec::new();
        for (name, pool) in self.proxy.pools() {
            let cfg = self.effective.pool(&name);
            let servers = pool
                .status()
                .into_iter()
                .map(|s| {
                    let key = TargetKey::new(&name, &s.server.name);
                    let target = health.target(&key);
                    let admin = cfg
                        .and_then(|c| c.server.iter().find(|x| *x.name.get_ref() == s.server.name))
                        .map(|x| x.state)
                        .unwrap_or_default();
                    ServerStatus {
                        name: s.server.name.clone(),
                        address: s.server.addr,
                        state: state_name(s.state).to_string(),
                        admin,
                        weight: s.weight,
                        effective_weight: s.effective_weight,
                        active: s.active,
                        check: target.map(|t| t.reason.clone()),
                        since_change_secs: target
                            .map(|t| now.saturating_duration_since(t.since).as_secs_f64()),
                    }
                })
                .collect();
            pools.push(PoolState {
                algorithm: pool.algorithm_name().to_string(),
                queued: pool.queued(),
                panic: health.pool(&name).is_some_and(|p| p.panic),
                name,
                servers,
            });
        }
        let dns = self.dns.as_ref().map(|tier| {
            let snap = tier.health();
            let section = self.effective.dns.as_ref();
            let datacenters = section
                .map(|d| d.datacenters.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|dc| {
                    let key = dc.name.to_ascii_lowercase();
                    let report = snap.datacenters.get(&key);
                    let vips: BTreeSet<std::net::IpAddr> = section
                        .iter()
                        .flat_map(|d| d.gslb.iter())
                        .flat_map(|g| g.pools.iter())
                        .filter(|p| p.datacenter.eq_ignore_ascii_case(&dc.name))
                        .flat_map(|p| p.addresses.iter().copied())
                        .collect();
                    DatacenterState {
                        name: dc.name.clone(),
                        admin: dc.admin.map(Into::into),
                        load: report.and_then(|r| r.load).unwrap_or(0.0),
                        vips: vips
                            .into_iter()
                            .map(|address| VipState {
                                address,
                                state: match snap.state(&key, address) {
                                    ServerState::Active => "up",
                                    ServerState::Draining => "draining",
                                    _ => "down",
                                }
                                .to_string(),
                            })
                            .collect(),
                    }
                })
                .collect();
            DnsState {
                // The addresses bound (port 0 resolved), once each; what was asked if none.
                listen: if tier.bound().is_empty() {
                    tier.listen().to_vec()
                } else {
                    let mut bound = tier.bound().to_vec();
                    bound.sort_unstable();
                    bound.dedup();
                    bound
                },
                datacenters,
            }
        });
        let mut tiers = Vec::new();
        if !frontends.is_empty() {
            tiers.push("proxy".to_string());
        }
        if dns.is_some() {
            tiers.push("dns".to_string());
        }
        let mux = self.mux.state();
        if mux.is_some() {
            tiers.push("mux".to_string());
        }
        let agent = self.agent.state();
        if agent.is_some() {
            tiers.push("agent".to_string());
        }
        if self.sync.is_some() {
            tiers.push("sync".to_string());
        }
        if self.vrrp.is_some() {
            tiers.push("vrrp".to_string());
        }
        if self.admin.is_some() {
            tiers.push("admin".to_string());
        }
        let bgp = self.bgp.as_ref().map(|b| b.state());
        if bgp.is_some() {
            tiers.push("bgp".to_string());
        }
        NodeState {
            config: self.path.display().to_string(),
            generation: self.generation,
            tiers,
            frontends,
            pools,
            dns,
            admin: self.admin.as_ref().map(|a| a.addr),
            bgp,
            mux,
            agent,
            readiness: self
                .bus
                .node()
                .borrow()
                .tiers
                .iter()
                .map(|(tier, r)| TierReadiness {
                    tier: match tier {
                        Tier::Proxy => "proxy",
                        Tier::Dns => "dns",
                        Tier::Mux => "mux",
                    }
                    .to_string(),
                    ready: r.ready,
                    detail: r.detail.clone(),
                })
                .collect(),
            sync: self.sync.as_ref().map(|s| s.state()),
            vrrp: self.vrrp.as_ref().map(|v| v.state()),
        }
    }
}

fn state_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Active => "active",
        ServerState::Draining => "draining",
        ServerState::Down => "down",
        ServerState::Maintenance => "maintenance",
        ServerState::Unchecked => "unchecked",
    }
}
