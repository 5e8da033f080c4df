//! Health stage: from a [`HealthSnapshot`], the candidates each GSLB name may answer with, per
//! address family. Built once per snapshot or config change, off the query path.

use super::{Gslb, Outcome};
use tenbin_core::ServerState;

use crate::health::HealthSnapshot;
use std::net::IpAddr;
use tenbin_config::dns::AllDown;

/// One datacenter's addresses a name may answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Index into the name's pools.
    pub pool: usize,
    pub dc: usize,
    pub addrs: Vec<IpAddr>,
    pub load: f64,
}

/// Candidates of one name for one family.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyView {
    pub candidates: Vec<Candidate>,
    pub outcome: Outcome,
}

/// Both families of one name and whether any of its addresses is unwell.
#[derive(Debug, Clone, PartialEq)]
pub struct NameView {
    pub v4: FamilyView,
    pub v6: FamilyView,
    pub degraded: bool,
}

/// Builds the view of every name.
pub fn build(gslb: &Gslb, health: &HealthSnapshot) -> Vec<NameView> {
    gslb.names
        .iter()
        .map(|n| {
            let mut degraded = false;
            let mut family = |v6: bool| {
                let pick = |want: &dyn Fn(ServerState) -> bool| -> Vec<Candidate> {
                    n.pools
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| {
                            let dc = &gslb.locality.datacenters[p.dc];
                            let addrs: Vec<IpAddr> = p
                                .addrs
                                .iter()
                                .copied()
                                .filter(|a| a.is_ipv6() == v6 && want(health.state(dc, *a)))
                                .collect();
                            (!addrs.is_empty()).then(|| Candidate {
                                pool: i,
                                dc: p.dc,
                                addrs,
                                load: health.load(dc),
                            })
                        })
                        .collect()
                };
                let up = pick(&|s| s == ServerState::Active);
                let total: usize = n
                    .pools
                    .iter()
                    .map(|p| p.addrs.iter().filter(|a| a.is_ipv6() == v6).count())
                    .sum();
                let up_count: usize = up.iter().map(|c| c.addrs.len()).sum();
                degraded |= up_count < total;
                if !up.is_empty() {
                    return FamilyView {
                        candidates: up,
                        outcome: Outcome::Healthy,
                    };
                }
                let draining = pick(&|s| s == ServerState::Draining);
                if !draining.is_empty() {
                    return FamilyView {
                        candidates: draining,
                        outcome: Outcome::DrainingOnly,
                    };
                }
                match gslb.on_all_down {
                    AllDown::FailOpen if total > 0 => FamilyView {
                        candidates: pick(&|_| true),
                        outcome: Outcome::FailOpen,
                    },
                    AllDown::Servfail if total > 0 => FamilyView {
                        candidates: Vec::new(),
                        outcome: Outcome::ServFail,
                    },
                    _ => FamilyView {
                        candidates: Vec::new(),
                        outcome: if total > 0 {
                            Outcome::NoData
                        } else {
                            Outcome::Healthy
                        },
                    },
                }
            };
            let v4 = family(false);
            let v6 = family(true);
            NameView { v4, v6, degraded }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gslb::tests::gslb;
    use crate::health::{AdminOverride, DcReport};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn down_addresses_leave_and_mark_the_name_degraded() {
        let g = gslb("multi", "fail-open");
        let v = build(&g, &HealthSnapshot::default());
        assert_eq!(v[0].v4.candidates.len(), 2);
        assert!(!v[0].degraded);
        let h = HealthSnapshot::default().with_addr(ip("192.0.2.1"), ServerState::Down);
        let v = build(&g, &h);
        assert_eq!(v[0].v4.outcome, Outcome::Healthy);
        assert_eq!(v[0].v4.candidates[0].addrs, vec![ip("192.0.2.2")]);
        assert!(v[0].degraded);
        assert_eq!(v[0].v6.candidates.len(), 1, "v6 unaffected");
    }

    #[test]
    fn admin_drain_and_all_down_policies() {
        let drain = DcReport {
            admin: Some(AdminOverride::Drain),
            load: None,
        };
        let down = DcReport {
            admin: Some(AdminOverride::ForceDown),
            load: None,
        };
        let h = HealthSnapshot::default()
            .with_dc("fra", drain)
            .with_dc("nrt", down);
        let v = build(&gslb("multi", "fail-open"), &h);
        assert_eq!(v[0].v4.outcome, Outcome::DrainingOnly);
        assert_eq!(v[0].v4.candidates.len(), 1);
        let h = HealthSnapshot::default()
            .with_dc("fra", down)
            .with_dc("nrt", down);
        let v = build(&gslb("multi", "fail-open"), &h);
        assert_eq!(v[0].v4.outcome, Outcome::FailOpen);
        assert_eq!(v[0].v4.candidates.len(), 2);
        let v = build(&gslb("multi", "nodata"), &h);
        assert_eq!(v[0].v4.outcome, Outcome::NoData);
        let v = build(&gslb("multi", "servfail"), &h);
        assert_eq!(v[0].v4.outcome, Outcome::ServFail);
    }
}
