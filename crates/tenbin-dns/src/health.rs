//! The health input of the DNS tier: a snapshot the caller publishes (from tenbin-health, the
//! other tiers or the admin API). This crate never probes anything itself.

use std::collections::HashMap;
use std::net::IpAddr;

use tenbin_core::ServerState;

/// An operator's word on a whole datacenter; it beats the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOverride {
    ForceUp,
    ForceDown,
    Drain,
}

/// What is known about one datacenter beyond its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DcReport {
    pub admin: Option<AdminOverride>,
    /// Current load, in the unit of the pools' `capacity`.
    pub load: Option<f64>,
}

/// Everything the pipeline needs to know about health and load, published as a whole.
///
/// Addresses carry tenbin-core's server states, of which DNS tells three apart: `Active`
/// and `Unchecked` (no verdict yet: a fresh node must not black-hole names) answer,
/// `Draining` answers only when nothing else is left, `Down` and `Maintenance` never.
/// An address missing from `addresses` counts as active: the DNS tier answers for services
/// whose checks are not wired, and failing closed on a missing report would black-hole them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthSnapshot {
    pub addresses: HashMap<IpAddr, ServerState>,
    /// Keyed by datacenter name (ASCII lower case).
    pub datacenters: HashMap<String, DcReport>,
}

impl HealthSnapshot {
    /// Effective state of `addr` in datacenter `dc`, admin override first: `Active`,
    /// `Draining` or `Down` (see the type's docs for the others).
    pub fn state(&self, dc: &str, addr: IpAddr) -> ServerState {
        match self.datacenters.get(dc).and_then(|d| d.admin) {
            Some(AdminOverride::ForceUp) => ServerState::Active,
            Some(AdminOverride::ForceDown) => ServerState::Down,
            Some(AdminOverride::Drain) => ServerState::Draining,
            None => answered(
                self.addresses
                    .get(&addr)
                    .copied()
                    .unwrap_or(ServerState::Active),
            ),
        }
    }

    /// Reported load of `dc` (0 when unknown).
    pub fn load(&self, dc: &str) -> f64 {
        self.datacenters
            .get(dc)
            .and_then(|d| d.load)
            .filter(|l| l.is_finite() && *l >= 0.0)
            .unwrap_or(0.0)
    }

    /// Builder helper: set one address.
    pub fn with_addr(mut self, addr: IpAddr, state: ServerState) -> Self {
        self.addresses.insert(addr, state);
        self
    }

    /// Builder helper: set one datacenter's report.
    pub fn with_dc(mut self, dc: &str, report: DcReport) -> Self {
        self.datacenters.insert(dc.to_ascii_lowercase(), report);
        self
    }
}

/// The three states DNS answers by (see [`HealthSnapshot`]).
pub fn answered(s: ServerState) -> ServerState {
    match s {
        ServerState::Active | ServerState::Unchecked => ServerState::Active,
        ServerState::Draining => ServerState::Draining,
        ServerState::Down | ServerState::Maintenance => ServerState::Down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_beats_checks_and_missing_is_up() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s = HealthSnapshot::default()
            .with_addr(a, ServerState::Down)
            .with_dc(
                "fra",
                DcReport {
                    admin: Some(AdminOverride::ForceUp),
                    load: Some(-1.0),
                },
            );
        assert_eq!(s.state("fra", a), ServerState::Active);
        assert_eq!(s.state("nrt", a), ServerState::Down);
        assert_eq!(s.state("nrt", b), ServerState::Active);
        assert_eq!(s.load("fra"), 0.0, "negative load is ignored");
    }
}
