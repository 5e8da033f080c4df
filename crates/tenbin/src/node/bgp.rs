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
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use ipnet::IpNet;
use tenbin_config::bgp::BgpSection;
use tenbin_ha::bgp::driver::Speaker;
use tenbin_ha::bgp::{Route, RouteAttrs};
use tokio::task::JoinHandle;

mod speaker;
mod state;

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
    let speaker = Speaker::start(speaker::speaker_config(section))
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
}
