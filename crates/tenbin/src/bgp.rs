//! `[bgp]` for `tenbin mux run`: the speaker announces each VIP (as a /32 or /128) while the
//! Mux is attached and the VIP has a backend that takes new flows, withdraws it otherwise,
//! and on stop withdraws everything, lingers while routers move the flows, then closes.
//!
//! The section is read once at start; every Mux announces the same attributes from it.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::Context as _;
use ipnet::IpNet;
use tenbin_config::bgp::BgpSection;
use tenbin_ha::bfd::BfdConfig;
use tenbin_ha::bgp::driver::{Neighbor, Speaker, SpeakerConfig};
use tenbin_ha::bgp::{PeerConfig, Route, RouteAttrs, State};

/// A running speaker and what it announces.
pub struct Announcer {
    rt: tokio::runtime::Runtime,
    speaker: Speaker,
    attrs: RouteAttrs,
    linger: std::time::Duration,
    announced: BTreeSet<IpAddr>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("announced", &self.announced)
            .finish_non_exhaustive()
    }
}

/// Starts the speaker if the config file has a `[bgp]` section.
pub fn start(path: &Path) -> anyhow::Result<Option<Announcer>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config = tenbin_config::Config::parse(&text, &path.display().to_string())?;
    let Some(b) = config.bgp else {
        return Ok(None);
    };
    let attrs = RouteAttrs {
        med: b.med,
        local_pref: b.local_pref,
        communities: b.communities().map_err(|e| anyhow::anyhow!(e.message))?,
        large_communities: b
            .large_communities()
            .map_err(|e| anyhow::anyhow!(e.message))?,
        ..RouteAttrs::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bgp")
        .enable_all()
        .build()?;
    let speaker = rt
        .block_on(Speaker::start(speaker_config(&b)))
        .context("starting the BGP speaker")?;
    tracing::info!(neighbors = b.neighbor.len(), "bgp speaker started");
    Ok(Some(Announcer {
        rt,
        speaker,
        attrs,
        linger: b.linger,
        announced: BTreeSet::new(),
    }))
}

fn speaker_config(b: &BgpSection) -> SpeakerConfig {
    let neighbors: Vec<Neighbor> = b
        .neighbor
        .iter()
        .enumerate()
        .map(|(i, n)| Neighbor {
            address: *n.address.get_ref(),
            port: n.port,
            local_address: n.local_address.as_ref().map(|a| *a.get_ref()),
            session: PeerConfig {
                local_as: *b.local_as.get_ref(),
                remote_as: *n.remote_as.get_ref(),
                router_id: *b.router_id.get_ref(),
                hold_time: *n.hold_time.as_ref().unwrap_or(&b.hold_time).get_ref(),
                passive: n.passive,
                connect_retry: b.connect_retry,
                connect_retry_max: b.connect_retry_max,
                ipv4: n.ipv4,
                ipv6: n.ipv6,
                next_hop_v4: b.next_hop_v4,
                next_hop_v6: b.next_hop_v6,
            },
            bfd: n.bfd.then(|| BfdConfig {
                desired_min_tx: b.bfd_interval,
                required_min_rx: b.bfd_interval,
                detect_mult: *b.bfd_multiplier.get_ref(),
                local_discr: u32::try_from(i + 1).unwrap_or(u32::MAX),
                // Jitter only needs to differ between nodes and sessions.
                seed: u64::from(u32::from(*b.router_id.get_ref())) << 8 | i as u64,
            }),
        })
        .collect();
    let passive = neighbors.iter().any(|n| n.session.passive);
    SpeakerConfig {
        listen: passive.then(|| b.listen.unwrap_or(SocketAddr::from(([0u16; 8], 179)))),
        neighbors,
    }
}

impl Announcer {
    /// Announces the VIPs in `healthy` (the Mux's `MuxReadiness::announceable`: attached, with
    /// a backend taking new flows) and withdraws the others.
    pub fn follow(&mut self, healthy: BTreeSet<IpAddr>) {
        for gone in self.announced.difference(&healthy) {
            tracing::info!(vip = %gone, "bgp: withdrawing");
            self.speaker.withdraw(IpNet::from(*gone));
        }
        for new in healthy.difference(&self.announced) {
            tracing::info!(vip = %new, "bgp: announcing");
            self.speaker.announce(Route {
                prefix: IpNet::from(*new),
                attrs: self.attrs.clone(),
            });
        }
        self.announced = healthy;
    }

    /// Appends each neighbour's session state, prefixes announced and flaps as Prometheus
    /// text.
    pub fn metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let status = self.speaker.status();
        let peers = status.borrow();
        for (name, kind, help) in [
            (
                "tenbin_bgp_session_established",
                "gauge",
                "1 while the session with the neighbour is Established.",
            ),
            (
                "tenbin_bgp_prefixes_announced",
                "gauge",
                "Prefixes the neighbour has from us.",
            ),
            (
                "tenbin_bgp_flaps_total",
                "counter",
                "Times the session left Established.",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in peers.iter() {
                let v = match name {
                    "tenbin_bgp_session_established" => u64::from(p.state == State::Established),
                    "tenbin_bgp_prefixes_announced" => p.announced as u64,
                    _ => p.stats.flaps,
                };
                let _ = writeln!(out, "{name}{{peer=\"{}\"}} {v}", p.peer);
            }
        }
    }

    /// Withdraws everything, waits `linger` so routers move flows elsewhere, then closes.
    pub fn stop(self) {
        tracing::info!(linger = ?self.linger, "bgp: withdrawing all before stopping");
        self.speaker.drain(true);
        std::thread::sleep(self.linger);
        self.rt.block_on(self.speaker.shutdown());
    }
}
