//! The `[bgp]` role: one speaker (tenbin-ha's driver) announcing, as /32 or /128, what the
//! node's sources want announced, and withdrawing the rest.
//!
//! Sources ([`Source`]): the Mux's announceable VIPs (attached, a backend taking new flows;
//! [`BgpRole::follow_mux`]) and, with `announce_dns = true`, each DNS listen address while
//! the DNS tier answers there ([`super::anycast`]). `tenbin run` and `tenbin mux run` both
//! run this role. Every node announces the same attributes from its `[bgp]`, so routers
//! treat them as equal-cost paths.
//!
//! Drain ([`BgpRole::set_mux_drained`], `tenbin ctl drain-mux`) withdraws the Mux's VIPs and
//! leaves the sessions up and the data plane forwarding. [`BgpRole::stop`] withdraws
//! everything, lingers while routers move the flows, then closes the sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use ipnet::IpNet;
use tenbin_config::api::bgp::{BgpNeighborState, BgpPrefix, BgpState};
use tenbin_config::bgp::BgpSection;
use tenbin_ha::bfd::BfdConfig;
use tenbin_ha::bgp::driver::{Neighbor, Speaker, SpeakerConfig};
use tenbin_ha::bgp::{PeerConfig, Route, RouteAttrs, State};
use tokio::task::JoinHandle;

/// Why an address is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Mux,
    Dns,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Mux => "mux",
            Source::Dns => "dns",
        }
    }
}

/// What each source asks for, and the operator's drain of the Mux's VIPs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Wanted {
    by: BTreeMap<Source, BTreeSet<IpAddr>>,
    mux_drained: bool,
}

impl Wanted {
    /// Each address to announce and the first source that wants it.
    fn prefixes(&self) -> BTreeMap<IpAddr, Source> {
        let mut out = BTreeMap::new();
        for (source, addrs) in &self.by {
            if *source == Source::Mux && self.mux_drained {
                continue;
            }
            for a in addrs {
                out.entry(*a).or_insert(*source);
            }
        }
        out
    }
}

/// The speaker and what it has been told to announce.
#[derive(Debug)]
struct Announcer {
    speaker: Speaker,
    attrs: RouteAttrs,
    wanted: Wanted,
    announced: BTreeSet<IpAddr>,
}

impl Announcer {
    fn want(&mut self, source: Source, addrs: BTreeSet<IpAddr>) {
        if self.wanted.by.get(&source) != Some(&addrs) {
            self.wanted.by.insert(source, addrs);
            self.sync();
        }
    }

    fn sync(&mut self) {
        let next: BTreeSet<IpAddr> = self.wanted.prefixes().into_keys().collect();
        for gone in self.announced.difference(&next) {
            tracing::info!(prefix = %gone, "bgp: withdrawing");
            self.speaker.withdraw(IpNet::from(*gone));
        }
        for new in next.difference(&self.announced) {
            tracing::info!(prefix = %new, "bgp: announcing");
            self.speaker.announce(Route {
                prefix: IpNet::from(*new),
                attrs: self.attrs.clone(),
            });
        }
        self.announced = next;
    }
}

/// The running role; [`BgpRole::stop`] ends it (dropping it aborts its source tasks and
/// leaves the speaker's sessions to the runtime's end).
#[derive(Debug)]
pub struct BgpRole {
    inner: Arc<Mutex<Announcer>>,
    section: BgpSection,
    sources: Sources,
}

/// Starts the speaker of `section` on the current tokio runtime; it announces nothing until a
/// source asks.
pub async fn start(section: &BgpSection) -> anyhow::Result<BgpRole> {
    let attrs = RouteAttrs {
        med: section.med,
        local_pref: section.local_pref,
        communities: section
            .communities()
            .map_err(|e| anyhow::anyhow!(e.message))?,
        large_communities: section
            .large_communities()
            .map_err(|e| anyhow::anyhow!(e.message))?,
        ..RouteAttrs::default()
    };
    let speaker = Speaker::start(speaker_config(section))
        .await
        .context("starting the BGP speaker")?;
    tracing::info!(neighbors = section.neighbor.len(), "bgp speaker started");
    Ok(BgpRole {
        inner: Arc::new(Mutex::new(Announcer {
            speaker,
            attrs,
            wanted: Wanted::default(),
            announced: BTreeSet::new(),
        })),
        section: section.clone(),
        sources: Sources::default(),
    })
}

/// The node's role: the speaker of `section`, following the Mux's readiness where the node
/// runs one, and the DNS tier of `config` when `announce_dns` is on.
pub async fn start_for_node(
    section: &BgpSection,
    config: &tenbin_config::Config,
    mux: Option<tokio::sync::watch::Receiver<tenbin_xdp::mux::MuxReadiness>>,
) -> anyhow::Result<BgpRole> {
    let mut role = start(section).await?;
    role.follow_mux(mux);
    role.follow_dns(config.dns.as_ref());
    Ok(role)
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

impl BgpRole {
    /// Announces exactly `addrs` for `source` (replacing what it asked before).
    pub fn set(&self, source: Source, addrs: BTreeSet<IpAddr>) {
        lock(&self.inner).want(source, addrs);
    }

    /// Withdraws (`true`) or announces again (`false`) the Mux's VIPs; returns whether that
    /// changed anything.
    pub fn set_mux_drained(&self, drained: bool) -> bool {
        let mut a = lock(&self.inner);
        let changed = a.wanted.mux_drained != drained;
        a.wanted.mux_drained = drained;
        a.sync();
        changed
    }

    /// Follows the Mux's readiness: every change announces what is announceable now.
    /// `None` (the node runs no Mux) withdraws the Mux's VIPs.
    pub fn follow_mux(
        &mut self,
        ready: Option<tokio::sync::watch::Receiver<tenbin_xdp::mux::MuxReadiness>>,
    ) {
        let Some(mut ready) = ready else {
            if let Some(old) = self.sources.0.remove(&Source::Mux) {
                old.abort();
            }
            self.set(Source::Mux, BTreeSet::new());
            return;
        };
        let role = self.source_handle();
        self.replace_source(
            Source::Mux,
            tokio::spawn(async move {
                loop {
                    let healthy = ready.borrow_and_update().announceable();
                    if !role.set(Source::Mux, healthy) || ready.changed().await.is_err() {
                        return;
                    }
                }
            }),
        );
    }

    /// With `announce_dns`, announces each of `dns`'s listen addresses while the DNS tier
    /// answers there ([`super::anycast`]); call again when the tier moves, with `None`
    /// when it is gone.
    pub fn follow_dns(&mut self, dns: Option<&tenbin_config::dns::DnsSection>) {
        if !*self.section.announce_dns.get_ref() {
            return;
        }
        if let Some(old) = self.sources.0.remove(&Source::Dns) {
            old.abort();
        }
        self.set(Source::Dns, BTreeSet::new());
        let role = self.source_handle();
        let interval = self.section.dns_check_interval;
        if let Some(task) = dns
            .and_then(|d| super::anycast::watch(d, interval, move |up| role.set(Source::Dns, up)))
        {
            self.sources.0.insert(Source::Dns, task);
        }
    }

    fn replace_source(&mut self, source: Source, task: JoinHandle<()>) {
        if let Some(old) = self.sources.0.insert(source, task) {
            old.abort();
        }
    }

    fn source_handle(&self) -> SourceHandle {
        SourceHandle {
            inner: Arc::downgrade(&self.inner),
        }
    }

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

    /// Withdraws everything, waits `[bgp].linger` so routers move the flows elsewhere (the
    /// node keeps serving meanwhile), then ends every session with a Cease.
    pub async fn stop(mut self) {
        for (_, t) in std::mem::take(&mut self.sources.0) {
            t.abort();
            let _ = t.await;
        }
        tracing::info!(linger = ?self.section.linger, "bgp: withdrawing all before stopping");
        lock(&self.inner).speaker.drain(true);
        tokio::time::sleep(self.section.linger).await;
        match Arc::try_unwrap(self.inner) {
            Ok(a) => {
                let a = a.into_inner().unwrap_or_else(|e| e.into_inner());
                a.speaker.shutdown().await;
            }
            Err(_) => tracing::warn!("bgp: a source still holds the speaker; not closing"),
        }
    }
}

/// The source tasks, aborted on drop.
#[derive(Debug, Default)]
struct Sources(BTreeMap<Source, JoinHandle<()>>);

impl Drop for Sources {
    fn drop(&mut self) {
        self.0.values().for_each(JoinHandle::abort);
    }
}

/// What a source task holds: it announces while the role lives and stops once it is gone.
#[derive(Clone, Debug)]
struct SourceHandle {
    inner: std::sync::Weak<Mutex<Announcer>>,
}

impl SourceHandle {
    /// `false` once the role has stopped.
    fn set(&self, source: Source, addrs: BTreeSet<IpAddr>) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        lock(&inner).want(source, addrs);
        true
    }
}

fn lock(m: &Mutex<Announcer>) -> std::sync::MutexGuard<'_, Announcer> {
    // The speaker's calls only queue commands; a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// The role's state as Prometheus text (for `tenbin mux run --metrics`).
pub fn render_metrics(s: &BgpState, out: &mut String) {
    use std::fmt::Write as _;
    type Family = (
        &'static str,
        &'static str,
        &'static str,
        fn(&BgpNeighborState) -> u64,
    );
    let families: [Family; 3] = [
        (
            "tenbin_bgp_session_established",
            "gauge",
            "1 while the session with the neighbour is Established.",
            |n| u64::from(n.state == "established"),
        ),
        (
            "tenbin_bgp_prefixes_announced",
            "gauge",
            "Prefixes the neighbour has from us.",
            |n| n.prefixes_announced,
        ),
        (
            "tenbin_bgp_flaps_total",
            "counter",
            "Times the session left Established.",
            |n| n.flaps,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for n in &s.neighbors {
            let _ = writeln!(out, "{name}{{peer=\"{}\"}} {}", n.address, value(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(a: &[&str]) -> BTreeSet<IpAddr> {
        a.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn drain_withdraws_the_mux_vips_and_keeps_the_dns_addresses() {
        let mut w = Wanted::default();
        w.by.insert(Source::Mux, set(&["10.99.0.1", "fd99::1"]));
        w.by.insert(Source::Dns, set(&["10.53.0.1", "10.99.0.1"]));
        let all: Vec<_> = w.prefixes().into_iter().collect();
        assert_eq!(all.len(), 3, "one address wanted twice is announced once");
        assert_eq!(all[1], ("10.99.0.1".parse().unwrap(), Source::Mux));
        w.mux_drained = true;
        let left = w.prefixes();
        assert_eq!(
            left.keys().copied().collect::<BTreeSet<_>>(),
            set(&["10.53.0.1", "10.99.0.1"])
        );
        assert!(left.values().all(|s| *s == Source::Dns));
    }

    #[test]
    fn metrics_name_each_neighbour() {
        let s = BgpState {
            neighbors: vec![BgpNeighborState {
                address: "10.88.11.1".parse().unwrap(),
                remote_as: 65000,
                state: "established".into(),
                uptime_secs: Some(3.0),
                hold_time_secs: 3,
                prefixes_announced: 2,
                flaps: 1,
                updates_sent: 3,
                updates_received: 0,
                last_error: None,
            }],
            router_id: "10.88.11.2".parse().unwrap(),
            local_as: 65001,
            prefixes: Vec::new(),
            mux_drained: false,
        };
        let mut out = String::new();
        render_metrics(&s, &mut out);
        assert!(
            out.contains("tenbin_bgp_session_established{peer=\"10.88.11.1\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("tenbin_bgp_prefixes_announced{peer=\"10.88.11.1\"} 2\n"));
        assert!(out.contains("tenbin_bgp_flaps_total{peer=\"10.88.11.1\"} 1\n"));
    }
}
