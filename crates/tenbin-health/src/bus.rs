//! The node's health bus: one published view of every checked thing the node runs, under
//! typed keys, and the node's readiness derived from it.
//!
//! The folding stays where the checks run (each [`crate::HealthHub`]: the proxy's pools, the
//! DNS tier's VIPs); their owners publish the result here as [`HealthKey`]s, never as
//! formatted strings, and say what else readiness depends on (frontends bound, DNS sockets
//! serving, the Mux attached). Two `watch` channels go out: [`HealthBus::subscribe`] (every
//! entry, replaced whole) and [`HealthBus::node`] ([`NodeHealth`], sent only when it
//! changes), which VRRP priority and BGP announce/withdraw follow.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tenbin_core::ServerState;
use tokio::sync::watch;

/// The tier a health entry or a readiness belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Tier {
    Proxy,
    Dns,
    Mux,
}

/// What one entry is about.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum HealthKey {
    /// A proxy pool's server, by the names the config gives them.
    Server { pool: Arc<str>, server: Arc<str> },
    /// A GSLB datacenter's checked VIP (datacenter in ASCII lower case).
    Vip { datacenter: Arc<str>, addr: IpAddr },
}

impl HealthKey {
    pub fn tier(&self) -> Tier {
        match self {
            HealthKey::Server { .. } => Tier::Proxy,
            HealthKey::Vip { .. } => Tier::Dns,
        }
    }
}

/// One entry's health as its tier folded it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    pub state: ServerState,
    /// The last check's (or the operator's) word, for status pages.
    pub reason: String,
}

/// Every entry the node publishes, replaced whole on change.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BusSnapshot {
    pub entries: BTreeMap<HealthKey, Entry>,
}

impl BusSnapshot {
    /// The entries of one tier, in key order.
    pub fn tier(&self, tier: Tier) -> impl Iterator<Item = (&HealthKey, &Entry)> {
        self.entries.iter().filter(move |(k, _)| k.tier() == tier)
    }
}

/// What a tier's readiness is made of, as its owner reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TierInput {
    /// Frontends with every listener bound, and how many of their pools have a usable
    /// server out of how many they use.
    Proxy {
        frontends: usize,
        pools: usize,
        pools_usable: usize,
    },
    /// The DNS sockets are bound and the server runs.
    Dns { answering: bool },
    /// The program is attached (and the last state written), with so many VIPs of which so
    /// many have a backend taking new flows.
    Mux {
        attached: bool,
        vips: usize,
        vips_healthy: usize,
    },
}

/// One tier's readiness.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Readiness {
    pub ready: bool,
    /// Why, in a few words (`2/3 pools usable`).
    pub detail: String,
}

/// Each running tier's readiness; a tier the node does not run is absent.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct NodeHealth {
    pub tiers: BTreeMap<Tier, Readiness>,
}

impl NodeHealth {
    /// Something runs and every running tier is ready.
    pub fn ready(&self) -> bool {
        !self.tiers.is_empty() && self.tiers.values().all(|r| r.ready)
    }

    /// One tier's readiness (None: not running).
    pub fn tier(&self, tier: Tier) -> Option<&Readiness> {
        self.tiers.get(&tier)
    }
}

impl TierInput {
    /// The readiness this input means. A proxy is ready with at least one frontend bound
    /// and a usable server in every pool its frontends use; a Mux once attached with a
    /// healthy VIP (or no VIP configured).
    pub fn readiness(self) -> Readiness {
        match self {
            TierInput::Proxy {
                frontends,
                pools,
                pools_usable,
            } => Readiness {
                ready: frontends > 0 && pools_usable == pools,
                detail: format!(
                    "{frontends} frontend(s) bound, {pools_usable}/{pools} pools usable"
                ),
            },
            TierInput::Dns { answering } => Readiness {
                ready: answering,
                detail: if answering {
                    "answering"
                } else {
                    "not answering"
                }
                .into(),
            },
            TierInput::Mux {
                attached,
                vips,
                vips_healthy,
            } => Readiness {
                ready: attached && (vips == 0 || vips_healthy > 0),
                detail: format!(
                    "{}, {vips_healthy}/{vips} VIPs healthy",
                    if attached { "attached" } else { "detached" }
                ),
            },
        }
    }
}

/// The bus. Cheap to clone; every clone publishes to the same channels.
#[derive(Clone, Debug)]
pub struct HealthBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    inputs: Mutex<BTreeMap<Tier, TierInput>>,
    entries: watch::Sender<Arc<BusSnapshot>>,
    node: watch::Sender<NodeHealth>,
}

impl Default for HealthBus {
    fn default() -> Self {
        HealthBus {
            inner: Arc::new(Inner {
                inputs: Mutex::default(),
                entries: watch::channel(Arc::default()).0,
                node: watch::channel(NodeHealth::default()).0,
            }),
        }
    }
}

impl HealthBus {
    pub fn new() -> HealthBus {
        HealthBus::default()
    }

    /// Replaces every entry of `tier` with `entries` (keys of another tier are ignored).
    pub fn publish(&self, tier: Tier, entries: impl IntoIterator<Item = (HealthKey, Entry)>) {
        let fresh: Vec<(HealthKey, Entry)> = entries
            .into_iter()
            .filter(|(k, _)| k.tier() == tier)
            .collect();
        self.inner.entries.send_if_modified(|snap| {
            let mut next = BusSnapshot {
                entries: snap
                    .entries
                    .iter()
                    .filter(|(k, _)| k.tier() != tier)
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect(),
            };
            next.entries.extend(fresh);
            if next == **snap {
                return false;
            }
            *snap = Arc::new(next);
            true
        });
    }

    /// Sets what `tier`'s readiness is made of; `None`: the tier stopped (its entries go
    /// too). `input` must be of `tier`'s kind.
    pub fn set(&self, tier: Tier, input: Option<TierInput>) {
        let node = {
            let mut inputs = self.inner.inputs.lock().unwrap_or_else(|p| p.into_inner());
            match input {
                Some(i) => inputs.insert(tier, i),
                None => inputs.remove(&tier),
            };
            NodeHealth {
                tiers: inputs.iter().map(|(t, i)| (*t, i.readiness())).collect(),
            }
        };
        if input.is_none() {
            self.publish(tier, []);
        }
        self.inner.node.send_if_modified(|cur| {
            let changed = *cur != node;
            *cur = node;
            changed
        });
    }

    /// Follow every entry.
    pub fn subscribe(&self) -> watch::Receiver<Arc<BusSnapshot>> {
        self.inner.entries.subscribe()
    }

    /// Follow the node's readiness (VRRP priority, BGP announce/withdraw).
    pub fn node(&self) -> watch::Receiver<NodeHealth> {
        self.inner.node.subscribe()
    }

    /// The entries now.
    pub fn snapshot(&self) -> Arc<BusSnapshot> {
        self.inner.entries.borrow().clone()
    }
}

/// The proxy's entries of a hub snapshot: each target under its typed key.
pub fn proxy_entries(
    snap: &crate::HealthSnapshot,
) -> impl Iterator<Item = (HealthKey, Entry)> + '_ {
    snap.targets.iter().map(|(k, t)| {
        (
            HealthKey::Server {
                pool: k.pool.clone(),
                server: k.server.clone(),
            },
            Entry {
                state: t.state,
                reason: t.reason.clone(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(dc: &str, a: &str) -> HealthKey {
        HealthKey::Vip {
            datacenter: Arc::from(dc),
            addr: a.parse().unwrap(),
        }
    }

    fn server(p: &str, s: &str) -> HealthKey {
        HealthKey::Server {
            pool: Arc::from(p),
            server: Arc::from(s),
        }
    }

    fn entry(state: ServerState) -> Entry {
        Entry {
            state,
            reason: String::new(),
        }
    }

    #[test]
    fn a_tier_replaces_only_its_own_entries() {
        let bus = HealthBus::new();
        let rx = bus.subscribe();
        bus.publish(
            Tier::Proxy,
            [(server("web", "a"), entry(ServerState::Active))],
        );
        bus.publish(
            Tier::Dns,
            [(vip("fra", "192.0.2.1"), entry(ServerState::Down))],
        );
        // A key of another tier is not the DNS tier's to publish.
        bus.publish(
            Tier::Dns,
            [
                (vip("fra", "192.0.2.2"), entry(ServerState::Active)),
                (server("web", "b"), entry(ServerState::Active)),
            ],
        );
        let snap = rx.borrow().clone();
        let keys: Vec<&HealthKey> = snap.entries.keys().collect();
        assert_eq!(keys, [&server("web", "a"), &vip("fra", "192.0.2.2")]);
        assert_eq!(snap.tier(Tier::Dns).count(), 1);
    }

    #[test]
    fn node_health_follows_each_tier_and_changes_only_when_it_does() {
        let bus = HealthBus::new();
        let mut rx = bus.node();
        assert!(!rx.borrow_and_update().ready(), "nothing runs yet");
        let proxy = |usable| TierInput::Proxy {
            frontends: 1,
            pools: 2,
            pools_usable: usable,
        };
        bus.set(Tier::Proxy, Some(proxy(1)));
        assert!(rx.has_changed().unwrap());
        assert!(
            !rx.borrow_and_update().ready(),
            "a pool without a usable server"
        );
        bus.set(Tier::Proxy, Some(proxy(2)));
        bus.set(Tier::Dns, Some(TierInput::Dns { answering: true }));
        assert!(rx.borrow_and_update().ready());
        bus.set(Tier::Dns, Some(TierInput::Dns { answering: true }));
        assert!(!rx.has_changed().unwrap(), "the same input is no change");
        let mux = |attached, healthy| TierInput::Mux {
            attached,
            vips: 2,
            vips_healthy: healthy,
        };
        bus.set(Tier::Mux, Some(mux(true, 0)));
        assert!(!rx.borrow_and_update().ready(), "no VIP to announce");
        bus.set(Tier::Mux, Some(mux(false, 2)));
        let h = rx.borrow_and_update().clone();
        assert!(!h.ready());
        assert_eq!(
            h.tier(Tier::Mux).unwrap().detail,
            "detached, 2/2 VIPs healthy"
        );
        bus.set(Tier::Mux, None);
        assert!(rx.borrow_and_update().ready(), "a stopped tier is left out");
    }

    #[test]
    fn a_stopped_tier_takes_its_entries_along() {
        let bus = HealthBus::new();
        bus.publish(
            Tier::Dns,
            [(vip("fra", "192.0.2.1"), entry(ServerState::Down))],
        );
        bus.set(Tier::Dns, Some(TierInput::Dns { answering: true }));
        bus.set(Tier::Dns, None);
        assert!(bus.snapshot().entries.is_empty());
    }
}
