//! Where a `[dns]` section's answers come from: datacenters, regions, the client networks and
//! resolvers that place a client, the optional GeoIP database, and the GSLB names with their
//! per-datacenter VIPs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::cidr::Cidr;
use crate::pool::HealthCheck;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatacenterConfig {
    pub name: String,
    #[serde(default)]
    pub location: Option<GeoPoint>,
    /// An operator's word on the whole datacenter; it beats the checks (gdnsd's admin_state).
    /// Applied at start and on reload (SIGHUP).
    #[serde(default)]
    pub admin: Option<DcAdmin>,
}

/// Operator overrides of a datacenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DcAdmin {
    /// Answer with it whatever the checks say.
    ForceUp,
    /// Never answer with it.
    ForceDown,
    /// No new clients: only answered when nothing else is left.
    Drain,
}

/// A region orders datacenters by `prefer`, else by great-circle distance from `location`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    pub name: String,
    #[serde(default)]
    pub location: Option<GeoPoint>,
    #[serde(default)]
    pub prefer: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkEntry {
    pub cidr: Cidr,
    pub region: String,
}

/// `[dns.geoip]`: client address → record of a MaxMind-format database → region.
///
/// Each of `fields` (a dotted path to a string in the record) is tried in order; the first
/// value that `regions` names (ASCII case-insensitive) decides. No match: `default_region`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// The `.mmdb` file, read when the configuration is (re)loaded.
    pub db: PathBuf,
    #[serde(default = "default_geoip_fields")]
    pub fields: Vec<String>,
    /// Field value (a country code, a continent code, a custom value) → region name.
    pub regions: BTreeMap<String, String>,
}

fn default_geoip_fields() -> Vec<String> {
    vec!["country.iso_code".into(), "continent.code".into()]
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverEntry {
    pub cidr: Cidr,
    pub users: u64,
}

/// How a GSLB name chooses among its datacenters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GslbPolicy {
    /// Nearest datacenter (with capacity overflow), all its healthy addresses up to N, shuffled.
    #[default]
    Multi,
    /// Datacenters drawn by configured weight, regardless of the client's location.
    Weighted,
    /// Lowest `priority` number first; the next only when the first is down or full.
    Failover,
    /// Like `multi`, but the draw is a hash of the client subnet: one subnet, one answer.
    Sticky,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GslbConfig {
    pub name: String,
    #[serde(default = "default_gslb_ttl")]
    pub ttl: u32,
    #[serde(default)]
    pub policy: GslbPolicy,
    #[serde(default = "default_sticky_v4")]
    pub sticky_prefix_v4: u8,
    #[serde(default = "default_sticky_v6")]
    pub sticky_prefix_v6: u8,
    /// Health check of every VIP of the name, for pools without their own `check`.
    #[serde(default)]
    pub check: Option<HealthCheck>,
    pub pools: Vec<PoolConfig>,
}

impl GslbConfig {
    /// The check that applies to `pool`'s VIPs: its own, else the name's, else none.
    pub fn check_of<'a>(&'a self, pool: &'a PoolConfig) -> Option<&'a HealthCheck> {
        pool.check.as_ref().or(self.check.as_ref())
    }
}

fn default_gslb_ttl() -> u32 {
    30
}
fn default_sticky_v4() -> u8 {
    24
}
fn default_sticky_v6() -> u8 {
    56
}

/// The VIPs of one GSLB name in one datacenter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub datacenter: String,
    pub addresses: Vec<IpAddr>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub priority: u32,
    /// Capacity in the unit of the reported load (users or queries/s); none means unbounded.
    #[serde(default)]
    pub capacity: Option<f64>,
    /// Health check of these VIPs (tenbin-health's `[pool.health]` keys; `port` is required
    /// for `tcp` and `http` since a VIP has no service port of its own). Unchecked VIPs count
    /// as up.
    #[serde(default)]
    pub check: Option<HealthCheck>,
}

fn default_weight() -> u32 {
    1
}
