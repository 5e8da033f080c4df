//! The GSLB pipeline, as pure stages: candidates and health ([`view`]), [`locality`],
//! [`capacity`], [`select`]; fitting to the size budget happens in the query path. Time and
//! randomness come from the caller.

pub mod capacity;
pub mod locality;
pub mod select;
pub mod view;

use crate::geoip::GeoIp;
use capacity::Site;
use locality::Locality;
use rand_core::RngCore;
use std::net::IpAddr;
use std::sync::Arc;
use tenbin_config::dns::{AllDown, DnsSection, GslbPolicy, TtlPolicy};
pub use view::NameView;

/// How an answer came about (counted per query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Healthy,
    /// Only draining addresses were left.
    DrainingOnly,
    /// Nothing healthy: answered everything.
    FailOpen,
    NoData,
    ServFail,
}

/// One datacenter's VIPs for one name.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub dc: usize,
    pub addrs: Vec<IpAddr>,
    pub weight: u32,
    pub priority: u32,
    pub capacity: Option<f64>,
}

/// A compiled GSLB name (its owner name lives in the zone tree).
#[derive(Debug, Clone, PartialEq)]
pub struct GslbName {
    pub ttl: u32,
    pub policy: GslbPolicy,
    pub sticky_v4: u8,
    pub sticky_v6: u8,
    pub pools: Vec<Pool>,
}

/// Every GSLB name plus the shared locality data and policy knobs.
#[derive(Debug, Clone, Default)]
pub struct Gslb {
    pub locality: Locality,
    pub names: Vec<GslbName>,
    pub ttl: TtlPolicy,
    pub on_all_down: AllDown,
    pub max_answers: usize,
}

/// The result of the pipeline for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub dc: Option<usize>,
    pub ttl: u32,
    /// ECS scope prefix length for this answer.
    pub scope: u8,
    pub outcome: Outcome,
}

impl Gslb {
    /// Compiles the `gslb` names of a validated section, in config order, without a GeoIP
    /// database (see [`Gslb::with_geoip`]).
    pub fn new(cfg: &DnsSection) -> Gslb {
        Self::with_geoip(cfg, None)
    }

    /// [`Gslb::new`] with the opened `[dns.geoip]` database.
    pub fn with_geoip(cfg: &DnsSection, geoip: Option<Arc<GeoIp>>) -> Gslb {
        let mut locality = Locality::new(cfg);
        locality.geoip = geoip;
        let names = cfg
            .gslb
            .iter()
            .map(|g| GslbName {
                ttl: g.ttl,
                policy: g.policy,
                sticky_v4: g.sticky_prefix_v4,
                sticky_v6: g.sticky_prefix_v6,
                pools: g
                    .pools
                    .iter()
                    .filter_map(|p| {
                        Some(Pool {
                            dc: locality.dc_id(&p.datacenter)?,
                            addrs: p.addresses.clone(),
                            weight: p.weight,
                            priority: p.priority,
                            capacity: p.capacity,
                        })
                    })
                    .collect(),
            })
            .collect();
        Gslb {
            locality,
            names,
            ttl: cfg.ttl,
            on_all_down: cfg.on_all_down,
            max_answers: cfg.max_answers,
        }
    }

    /// Runs locality → capacity → select for name `id` over its health view.
    ///
    /// `client` is the address to place (the ECS subnet, else the resolver); `resolver` is the
    /// transport peer, looked up in the user-base table.
    pub fn answer(
        &self,
        view: &NameView,
        id: usize,
        v6: bool,
        client: IpAddr,
        resolver: IpAddr,
        rng: &mut dyn RngCore,
    ) -> Answer {
        let name = &self.names[id];
        let fv = if v6 { &view.v6 } else { &view.v4 };
        let mut ttl = name.ttl.clamp(self.ttl.min, self.ttl.max);
        if view.degraded {
            ttl = ttl.min(self.ttl.degraded);
        }
        let mut out = Answer {
            addrs: Vec::new(),
            dc: None,
            ttl,
            scope: 0,
            outcome: fv.outcome,
        };
        let cands = &fv.candidates;
        if cands.is_empty() {
            return out;
        }
        // Locality: order the candidates.
        let (order, scope): (Vec<usize>, u8) = match name.policy {
            GslbPolicy::Multi | GslbPolicy::Sticky => {
                let place = self.locality.place(client);
                let mut order: Vec<usize> = (0..cands.len()).collect();
                if let Some(pref) = self.locality.order(place.region) {
                    order.sort_by_key(|&i| pref.iter().position(|d| *d == cands[i].dc));
                }
                (order, place.scope)
            }
            GslbPolicy::Weighted => ((0..cands.len()).collect(), 0),
            GslbPolicy::Failover => {
                let mut order: Vec<usize> = (0..cands.len()).collect();
                order.sort_by_key(|&i| name.pools[cands[i].pool].priority);
                (order, 0)
            }
        };
        // Capacity: shares from preference, capped by capacity against load.
        let total_weight: f64 = order
            .iter()
            .map(|&i| f64::from(name.pools[cands[i].pool].weight))
            .sum();
        let sites: Vec<Site> = order
            .iter()
            .enumerate()
            .map(|(rank, &i)| {
                let pool = &name.pools[cands[i].pool];
                let preferred = match name.policy {
                    GslbPolicy::Weighted if total_weight > 0.0 => {
                        f64::from(pool.weight) / total_weight
                    }
                    _ => f64::from(u8::from(rank == 0)),
                };
                Site {
                    preferred,
                    capacity: pool.capacity,
                    load: cands[i].load,
                }
            })
            .collect();
        let shares = capacity::shares(&sites, self.locality.users(resolver));
        // Select.
        let sticky = name.policy == GslbPolicy::Sticky;
        let key = if sticky {
            let len = if client.is_ipv6() {
                name.sticky_v6
            } else {
                name.sticky_v4
            };
            out.scope = scope.max(len);
            select::subnet_key(client, len)
        } else {
            out.scope = scope;
            rng.next_u64()
        };
        let chosen = &cands[order[select::draw(&shares, select::unit(key))]];
        out.addrs = select::shuffled(&chosen.addrs, self.max_answers, select::mix(key));
        out.dc = Some(chosen.dc);
        if cands.len() == 1 && !sticky {
            out.scope = 0;
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::health::{DcReport, HealthSnapshot};
    use tenbin_core::ServerState;

    /// Two datacenters (fra preferred by eu = 10/8, nrt by asia = 172.16/12), both families.
    pub(crate) fn section(policy: &str, all_down: &str) -> DnsSection {
        let topology = include_str!("../../tests/data/two_datacenters.toml");
        let s: DnsSection = toml::from_str(&format!(
            r#"
            on_all_down = "{all_down}"
            max_answers = 3
            ttl = {{ min = 5, max = 300, degraded = 7 }}
            {topology}
            [[resolvers]]
            cidr = "10.53.0.0/16"
            users = 900
            [[zones]]
            origin = "example.test."
            soa = {{ mname = "ns1", rname = "hostmaster" }}
            [[gslb]]
            name = "www.example.test."
            ttl = 60
            policy = "{policy}"
            pools = [
              {{ datacenter = "fra", addresses = ["192.0.2.1", "192.0.2.2", "2001:db8::1"], weight = 1, priority = 2, capacity = 1000.0 }},
              {{ datacenter = "nrt", addresses = ["198.51.100.1"], weight = 3, priority = 1, capacity = 1000.0 }},
            ]
            "#
        ))
        .unwrap();
        s.validate().unwrap();
        s
    }

    pub(crate) fn gslb(policy: &str, all_down: &str) -> Gslb {
        Gslb::new(&section(policy, all_down))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn run(g: &Gslb, h: &HealthSnapshot, client: &str, resolver: &str, n: u64) -> [u64; 2] {
        let v = view::build(g, h);
        let mut rng = rand::rngs::mock::StepRng::new(0, 0x9e37_79b9_7f4a_7c15);
        let mut per_dc = [0u64; 2];
        for _ in 0..n {
            let a = g.answer(&v[0], 0, false, ip(client), ip(resolver), &mut rng);
            per_dc[a.dc.unwrap()] += 1;
        }
        per_dc
    }

    #[test]
    fn locality_sends_each_network_to_its_region() {
        let g = gslb("multi", "fail-open");
        let h = HealthSnapshot::default();
        assert_eq!(run(&g, &h, "10.1.1.1", "10.1.1.1", 100), [100, 0]);
        assert_eq!(run(&g, &h, "172.16.5.5", "10.1.1.1", 100), [0, 100]);
        let v = view::build(&g, &h);
        let mut rng = rand::rngs::mock::StepRng::new(1, 1);
        let a = g.answer(&v[0], 0, false, ip("10.1.1.1"), ip("10.1.1.1"), &mut rng);
        assert_eq!((a.scope, a.ttl, a.outcome), (8, 60, Outcome::Healthy));
        assert_eq!(a.addrs.len(), 2);
    }

    #[test]
    fn down_datacenter_fails_over_and_shortens_ttl() {
        let g = gslb("multi", "fail-open");
        let h = HealthSnapshot::default()
            .with_addr(ip("192.0.2.1"), ServerState::Down)
            .with_addr(ip("192.0.2.2"), ServerState::Down);
        assert_eq!(run(&g, &h, "10.1.1.1", "10.1.1.1", 50), [0, 50]);
        let v = view::build(&g, &h);
        let mut rng = rand::rngs::mock::StepRng::new(1, 1);
        let a = g.answer(&v[0], 0, false, ip("10.1.1.1"), ip("10.1.1.1"), &mut rng);
        assert_eq!(a.ttl, 7);
    }

    #[test]
    fn overload_spills_to_the_next_datacenter() {
        let g = gslb("multi", "fail-open");
        let full = DcReport {
            admin: None,
            load: Some(2000.0),
        };
        let h = HealthSnapshot::default().with_dc("fra", full);
        let [fra, nrt] = run(&g, &h, "10.1.1.1", "10.1.1.1", 4000);
        // keeps 1000/2001 ≈ 0.5 of the answers
        assert!((1800..2200).contains(&fra), "{fra} {nrt}");
        // the big resolver (900 users) spills sooner at 500 load: keeps 1000/1400
        let h = HealthSnapshot::default().with_dc(
            "fra",
            DcReport {
                admin: None,
                load: Some(500.0),
            },
        );
        assert_eq!(run(&g, &h, "10.1.1.1", "10.1.1.1", 100), [100, 0]);
        let [fra, _] = run(&g, &h, "10.1.1.1", "10.53.0.53", 4000);
        assert!((2700..3000).contains(&fra), "{fra}");
    }

    #[test]
    fn weighted_ignores_location_and_failover_follows_priority() {
        let g = gslb("weighted", "fail-open");
        let [fra, nrt] = run(&g, &HealthSnapshot::default(), "10.1.1.1", "10.1.1.1", 4000);
        assert!((800..1200).contains(&fra) && nrt > 2800, "{fra} {nrt}");
        let g = gslb("failover", "fail-open");
        let h = HealthSnapshot::default();
        assert_eq!(run(&g, &h, "10.1.1.1", "10.1.1.1", 50), [0, 50]);
        let h = h.with_addr(ip("198.51.100.1"), ServerState::Down);
        assert_eq!(run(&g, &h, "10.1.1.1", "10.1.1.1", 50), [50, 0]);
    }

    #[test]
    fn sticky_gives_one_subnet_one_answer() {
        let g = gslb("sticky", "fail-open");
        let v = view::build(&g, &HealthSnapshot::default());
        let mut rng = rand::rngs::mock::StepRng::new(0, 12345);
        let a = g.answer(&v[0], 0, false, ip("10.1.1.1"), ip("9.9.9.9"), &mut rng);
        for host in 2..50u8 {
            let b = g.answer(
                &v[0],
                0,
                false,
                IpAddr::from([10, 1, 1, host]),
                ip("9.9.9.9"),
                &mut rng,
            );
            assert_eq!(a.addrs, b.addrs);
        }
        assert_eq!(a.scope, 24);
    }

    #[test]
    fn all_down_nodata_answers_nothing() {
        let g = gslb("multi", "nodata");
        let h = HealthSnapshot::default()
            .with_addr(ip("192.0.2.1"), ServerState::Down)
            .with_addr(ip("192.0.2.2"), ServerState::Down)
            .with_addr(ip("198.51.100.1"), ServerState::Down);
        let v = view::build(&g, &h);
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let a = g.answer(&v[0], 0, false, ip("10.1.1.1"), ip("10.1.1.1"), &mut rng);
        assert_eq!((a.addrs.len(), a.outcome), (0, Outcome::NoData));
        let a = g.answer(&v[0], 0, true, ip("10.1.1.1"), ip("10.1.1.1"), &mut rng);
        assert_eq!(a.addrs, vec![ip("2001:db8::1")]);
        assert_eq!(
            a.scope, 0,
            "one candidate: the answer does not depend on the client"
        );
    }
}
