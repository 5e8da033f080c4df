//! The DNS tier's health policy: which VIPs are checked (each once, by datacenter and
//! address), and how their checked states, the operators' overrides and the pushed loads
//! become the [`HealthSnapshot`] queries are answered with.
//!
//! Every checked VIP is one target of a `tenbin_health::HealthHub` of the tier's own (the
//! hub's "pool" is the datacenter, its "server" the address). Each snapshot the hub publishes
//! goes to the node's health bus under typed keys (`HealthKey::Vip { datacenter, addr }`,
//! through the map made when the VIPs were registered, so no key is parsed back), and those
//! entries become the tier's snapshot by [`dns_snapshot`]:
//!
//! | tenbin-health        | DNS         | why                                                    |
//! |----------------------|-------------|--------------------------------------------------------|
//! | Active               | Active      |                                                        |
//! | Draining             | Draining    | no new clients, still answered if nothing else is left |
//! | Down, Maintenance    | Down        |                                                        |
//! | Unchecked            | Active      | no verdict yet: a fresh node must not black-hole names |
//!
//! A VIP without a check is simply absent from the snapshot, which the DNS tier reads as up. A
//! VIP that appears in several datacenters or checks takes the worst state reported for it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::SeedableRng;
use tenbin_config::dns::{DcAdmin, DnsSection};
use tenbin_core::ServerState;
use tenbin_health::bus::{Entry, HealthBus, HealthKey, Tier};
use tenbin_health::from_config::{check_spec, FromConfigError};
use tenbin_health::hub::TargetOptions;
use tenbin_health::scheduler::{spawn_check, SharedRng};
use tenbin_health::{CheckSpec, HealthHub, HealthSnapshot as HubSnapshot, TargetKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::health::{answered, AdminOverride, DcReport, HealthSnapshot};

/// A checked VIP: its key on the bus and its check.
#[derive(Debug)]
struct CheckedVip {
    key: HealthKey,
    addr: IpAddr,
    spec: CheckSpec,
}

/// Every checked VIP once: its hub key (datacenter, address) → its bus key and check. The
/// first check configured for a VIP wins; a different one elsewhere is reported and ignored.
fn checked_vips(dns: &DnsSection) -> Result<BTreeMap<TargetKey, CheckedVip>, FromConfigError> {
    let mut vips = BTreeMap::new();
    for g in &dns.gslb {
        for p in &g.pools {
            let Some(c) = g.check_of(p) else { continue };
            let dc = p.datacenter.to_ascii_lowercase();
            let spec = check_spec(&format!("gslb {} ({})", g.name, p.datacenter), c)?;
            for addr in &p.addresses {
                let key = TargetKey::new(&dc, &addr.to_string());
                if vips.contains_key(&key) {
                    tracing::debug!(vip = %key, gslb = %g.name, "VIP already checked");
                    continue;
                }
                let vip = CheckedVip {
                    key: HealthKey::Vip {
                        datacenter: Arc::from(dc.as_str()),
                        addr: *addr,
                    },
                    addr: *addr,
                    spec: spec.clone(),
                };
                vips.insert(key, vip);
            }
        }
    }
    Ok(vips)
}

/// Registers the checked VIPs with a hub, spawns their checks and the task that turns the
/// hub's snapshots into the DNS tier's.
pub(super) fn start_checks(
    dns: &DnsSection,
    out: watch::Sender<Arc<HealthSnapshot>>,
    loads: watch::Receiver<BTreeMap<String, f64>>,
    bus: HealthBus,
) -> Result<Vec<JoinHandle<()>>, FromConfigError> {
    let vips = checked_vips(dns)?;
    let overrides = admin_overrides(dns);
    let mut tasks = Vec::new();
    let hub = HealthHub::new();
    let now = Instant::now();
    let rng: SharedRng = Arc::new(Mutex::new(rand::rngs::StdRng::from_entropy()));
    for (key, CheckedVip { addr, spec, .. }) in &vips {
        let opts = TargetOptions {
            checked: true,
            rise: spec.rise,
            fall: spec.fall,
            admin: ServerState::Active,
        };
        hub.add_target(key, opts, now);
        // The port is required by the config for connecting checks; ICMP ignores it.
        let target = SocketAddr::new(*addr, spec.port.unwrap_or(0));
        tasks.push(spawn_check(
            hub.clone(),
            key.clone(),
            target,
            spec.clone(),
            rng.clone(),
        ));
    }
    if !vips.is_empty() {
        tracing::info!(vips = vips.len(), "dns: VIP checks started");
        tasks.push(tokio::spawn(hub.clone().run_timers()));
    }
    let keys = vips.into_iter().map(|(k, v)| (k, v.key)).collect();
    let publisher = Publisher {
        keys,
        bus,
        out,
        overrides,
    };
    // The first snapshot goes out before this returns, so a reload's overrides are answered
    // with as soon as the apply reports success.
    let mut rx = hub.subscribe();
    let mut loads = loads;
    if publisher.send(&rx.borrow_and_update(), &loads.borrow_and_update()) {
        tasks.push(tokio::spawn(publisher.follow(hub, rx, loads)));
    }
    Ok(tasks)
}

/// `[[dns.datacenters]] admin = ...` as the DNS tier's per-datacenter reports.
fn admin_overrides(dns: &DnsSection) -> HashMap<String, DcReport> {
    dns.datacenters
        .iter()
        .filter_map(|dc| {
            let admin = match dc.admin? {
                DcAdmin::ForceUp => AdminOverride::ForceUp,
                DcAdmin::ForceDown => AdminOverride::ForceDown,
                DcAdmin::Drain => AdminOverride::Drain,
            };
            let report = DcReport {
                admin: Some(admin),
                load: None,
            };
            Some((dc.name.to_ascii_lowercase(), report))
        })
        .collect()
}

/// Forwards hub snapshots to the bus (under `keys`) and, with the operator's overrides and
/// the latest loads, to the DNS tier.
struct Publisher {
    keys: BTreeMap<TargetKey, HealthKey>,
    bus: HealthBus,
    out: watch::Sender<Arc<HealthSnapshot>>,
    overrides: HashMap<String, DcReport>,
}

impl Publisher {
    /// Publishes `snap` with `loads`; `false` once the DNS tier is gone.
    fn send(&self, snap: &HubSnapshot, loads: &BTreeMap<String, f64>) -> bool {
        let entries: Vec<(HealthKey, Entry)> = snap
            .targets
            .iter()
            .filter_map(|(k, t)| {
                let entry = Entry {
                    state: t.state,
                    reason: t.reason.clone(),
                };
                Some((self.keys.get(k)?.clone(), entry))
            })
            .collect();
        let mut dns = dns_snapshot(entries.iter().map(|(k, e)| (k, e)));
        self.bus.publish(Tier::Dns, entries);
        dns.datacenters = self.overrides.clone();
        for (dc, load) in loads {
            dns.datacenters.entry(dc.clone()).or_default().load = Some(*load);
        }
        for (addr, state) in &dns.addresses {
            tracing::debug!(%addr, ?state, "dns: VIP health");
        }
        self.out.send(Arc::new(dns)).is_ok()
    }

    /// Publishes every later snapshot and load change, for as long as both ends live.
    /// Holds `hub`: with no VIP checked, nothing else keeps its snapshot channel open.
    async fn follow(
        self,
        _hub: Arc<HealthHub>,
        mut rx: watch::Receiver<Arc<HubSnapshot>>,
        mut loads: watch::Receiver<BTreeMap<String, f64>>,
    ) {
        loop {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                r = loads.changed() => if r.is_err() { return },
            }
            let snap = rx.borrow_and_update().clone();
            if !self.send(&snap, &loads.borrow_and_update()) {
                return;
            }
        }
    }
}

/// The DNS tier's view of the bus's VIP entries (see the module docs for the mapping);
/// entries of other tiers are ignored.
pub fn dns_snapshot<'a>(
    entries: impl IntoIterator<Item = (&'a HealthKey, &'a Entry)>,
) -> HealthSnapshot {
    let mut addresses: HashMap<IpAddr, ServerState> = HashMap::new();
    for (key, e) in entries {
        let HealthKey::Vip { addr, .. } = key else {
            continue;
        };
        let state = answered(e.state);
        let e = addresses.entry(*addr).or_insert(state);
        *e = worst(*e, state);
    }
    HealthSnapshot {
        addresses,
        datacenters: HashMap::new(),
    }
}

fn worst(a: ServerState, b: ServerState) -> ServerState {
    let rank = |s| match s {
        ServerState::Draining => 1,
        ServerState::Down => 2,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(extra: &str) -> DnsSection {
        let text = format!(
            r#"
            [dns]
            [[dns.datacenters]]
            name = "fra"
            [[dns.datacenters]]
            name = "nrt"
            [[dns.zones]]
            origin = "example.test."
            soa = {{ mname = "ns1", rname = "hostmaster" }}
            [[dns.gslb]]
            name = "www.example.test."
            check = {{ kind = "tcp", port = 80, rise = 1, fall = 2 }}
            pools = [
              {{ datacenter = "fra", addresses = ["192.0.2.1", "192.0.2.2"] }},
              {{ datacenter = "nrt", addresses = ["198.51.100.1"], check = {{ kind = "icmp" }} }},
            ]
            {extra}
            "#
        );
        let config = tenbin_config::Config::parse(&text, "test.toml").unwrap();
        config.dns.expect("a [dns] section")
    }

    #[test]
    fn every_checked_vip_is_keyed_by_datacenter_and_address_once() {
        let s = section(
            r#"[[dns.gslb]]
            name = "api.example.test."
            pools = [ { datacenter = "fra", addresses = ["192.0.2.1", "192.0.2.9"] } ]"#,
        );
        s.validate().unwrap();
        let vips = checked_vips(&s).unwrap();
        let keys: Vec<&HealthKey> = vips.values().map(|v| &v.key).collect();
        assert_eq!(
            keys,
            [
                &vip("fra", "192.0.2.1"),
                &vip("fra", "192.0.2.2"),
                &vip("nrt", "198.51.100.1")
            ],
            "api's unchecked 192.0.2.9 is not registered"
        );
        let nrt = &vips[&TargetKey::new("nrt", "198.51.100.1")].spec;
        assert!(matches!(nrt.kind, tenbin_health::CheckKind::Icmp));
        assert_eq!(vips[&TargetKey::new("fra", "192.0.2.1")].spec.fall, 2);
    }

    fn vip(dc: &str, addr: &str) -> HealthKey {
        HealthKey::Vip {
            datacenter: Arc::from(dc),
            addr: addr.parse().unwrap(),
        }
    }

    #[test]
    fn bus_states_map_to_dns_states() {
        let entry = |state| Entry {
            state,
            reason: String::new(),
        };
        let server = HealthKey::Server {
            pool: Arc::from("web"),
            server: Arc::from("192.0.2.3"),
        };
        let mut entries = BTreeMap::from([
            (vip("fra", "192.0.2.1"), entry(ServerState::Unchecked)),
            (vip("fra", "192.0.2.2"), entry(ServerState::Active)),
            (server, entry(ServerState::Down)),
        ]);
        let snap = dns_snapshot(&entries);
        assert_eq!(snap.addresses.len(), 2, "the proxy's servers are not VIPs");
        assert!(
            snap.addresses.values().all(|s| *s == ServerState::Active),
            "unchecked is up"
        );
        entries.insert(vip("fra", "192.0.2.1"), entry(ServerState::Down));
        entries.insert(vip("fra", "192.0.2.2"), entry(ServerState::Draining));
        let snap = dns_snapshot(&entries);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(snap.addresses[&ip("192.0.2.1")], ServerState::Down);
        assert_eq!(snap.addresses[&ip("192.0.2.2")], ServerState::Draining);
        entries.insert(vip("nrt", "192.0.2.2"), entry(ServerState::Maintenance));
        let snap = dns_snapshot(&entries);
        assert_eq!(
            snap.addresses[&ip("192.0.2.2")],
            ServerState::Down,
            "worst wins"
        );
        entries.insert(vip("fra", "192.0.2.1"), entry(ServerState::Active));
        let snap = dns_snapshot(&entries);
        assert_eq!(snap.state("fra", ip("192.0.2.1")), ServerState::Active);
    }
}
