//! The `[dns]` section: GSLB DNS tier (owned by the DNS tier's work).
//!
//! Raw TOML types (`deny_unknown_fields`) plus [`DnsSection::validate`], which checks every
//! cross reference (regions, datacenters, zones) and the shape of each record's data, so the DNS
//! tier only ever compiles a section that makes sense.

use crate::pool::{CheckKind, HealthCheck};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// Raw `[dns]` table as written in TOML.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// Addresses to serve on (UDP and TCP).
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// UDP sockets per address (SO_REUSEPORT); 0 means one per core.
    #[serde(default)]
    pub udp_sockets: usize,
    /// Cap on addresses in one GSLB answer.
    #[serde(default = "default_max_answers")]
    pub max_answers: usize,
    /// Largest UDP response with EDNS, whatever the client advertises (RFC 9715 advice).
    #[serde(default = "default_edns_udp_max")]
    pub edns_udp_max: u16,
    /// What a GSLB name answers when none of its addresses is healthy.
    #[serde(default)]
    pub on_all_down: AllDown,
    /// TTL bounds for GSLB answers.
    #[serde(default)]
    pub ttl: TtlPolicy,
    /// Region for clients that match no network.
    #[serde(default)]
    pub default_region: Option<String>,
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    #[serde(default)]
    pub datacenters: Vec<DatacenterConfig>,
    #[serde(default)]
    pub regions: Vec<RegionConfig>,
    /// Network map: client CIDR → region, longest prefix wins.
    #[serde(default)]
    pub networks: Vec<NetworkEntry>,
    /// Resolver user-base table: resolver CIDR → estimated users behind it.
    #[serde(default)]
    pub resolvers: Vec<ResolverEntry>,
    /// A MaxMind-format database consulted for clients no `networks` entry matches.
    #[serde(default)]
    pub geoip: Option<GeoIpConfig>,
    #[serde(default)]
    pub gslb: Vec<GslbConfig>,
}

fn default_max_answers() -> usize {
    8
}
fn default_edns_udp_max() -> u16 {
    1232
}

/// Answer when every address of a GSLB name is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AllDown {
    /// Answer every address anyway (a DNS tier must not black-hole a service on a bad check).
    #[default]
    FailOpen,
    Nodata,
    Servfail,
}

/// TTL clamp and the TTL used while a name is degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlPolicy {
    pub min: u32,
    pub max: u32,
    /// Upper bound while any datacenter of the name is not fully healthy.
    pub degraded: u32,
}

impl Default for TtlPolicy {
    fn default() -> Self {
        TtlPolicy {
            min: 5,
            max: 3600,
            degraded: 10,
        }
    }
}

/// One authoritative zone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub origin: String,
    #[serde(default = "default_zone_ttl")]
    pub ttl: u32,
    pub soa: SoaConfig,
    #[serde(default)]
    pub records: Vec<RecordConfig>,
}

fn default_zone_ttl() -> u32 {
    300
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaConfig {
    pub mname: String,
    pub rname: String,
    #[serde(default = "one")]
    pub serial: u32,
    #[serde(default = "default_refresh")]
    pub refresh: u32,
    #[serde(default = "default_retry")]
    pub retry: u32,
    #[serde(default = "default_expire")]
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308).
    #[serde(default = "default_minimum")]
    pub minimum: u32,
}

fn one() -> u32 {
    1
}
fn default_refresh() -> u32 {
    3600
}
fn default_retry() -> u32 {
    600
}
fn default_expire() -> u32 {
    604_800
}
fn default_minimum() -> u32 {
    60
}

/// Record types a zone may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Ns,
    Mx,
    Txt,
    Srv,
    Caa,
}

/// One record: `name` is relative to the origin (`@` for the apex) or absolute with a final dot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RecordKind,
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Presentation data: `192.0.2.1`, `10 mail.example.`, `0 5 443 host.`, `0 issue "ca.example"`.
    pub data: String,
}

/// Record data checked and split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ns(String),
    Mx {
        preference: u16,
        exchange: String,
    },
    Txt(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Caa {
        flags: u8,
        tag: String,
        value: String,
    },
}

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
    #[serde(default = "one")]
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

/// An IP network `addr/len` with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    /// Maximum prefix length of the family.
    pub fn max_len(&self) -> u8 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }
}

impl FromStr for Cidr {
    type Err = DnsConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DnsConfigError::Cidr(s.to_string());
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        let (bits, max) = match addr {
            IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        };
        if len > max {
            return Err(bad());
        }
        let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        if bits & host != 0 {
            return Err(bad());
        }
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What is wrong with a `[dns]` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsConfigError {
    #[error("dns: `{0}` is not a CIDR like 192.0.2.0/24 (no host bits, length within the family)")]
    Cidr(String),
    #[error(
        "dns: `{0}` is not a domain name (labels of 1..=63 letters, digits, `_`, `-` but not \
         first, `*` only first; 255 bytes in all)"
    )]
    Name(String),
    #[error("dns: {what} `{name}` is defined twice")]
    Duplicate { what: &'static str, name: String },
    #[error("dns: {what} `{name}` is not defined (referenced by {by})")]
    Unknown {
        what: &'static str,
        name: String,
        by: String,
    },
    #[error("dns: record `{name}` {kind:?}: bad data `{data}` ({why})")]
    Data {
        name: String,
        kind: RecordKind,
        data: String,
        why: &'static str,
    },
    #[error("dns: gslb name `{0}` is outside every zone")]
    OutsideZones(String),
    #[error("dns: {0}")]
    Invalid(String),
}

impl DnsSection {
    /// Checks references, names, record data and bounds.
    pub fn validate(&self) -> Result<(), DnsConfigError> {
        if self.max_answers == 0 {
            return Err(DnsConfigError::Invalid(
                "max_answers must be at least 1".into(),
            ));
        }
        if self.edns_udp_max < 512 {
            return Err(DnsConfigError::Invalid(
                "edns_udp_max must be at least 512".into(),
            ));
        }
        if self.ttl.min > self.ttl.max {
            return Err(DnsConfigError::Invalid(
                "ttl.min must not exceed ttl.max".into(),
            ));
        }
        let dcs = unique(
            "datacenter",
            self.datacenters.iter().map(|d| d.name.as_str()),
        )?;
        let regions = unique("region", self.regions.iter().map(|r| r.name.as_str()))?;
        for r in &self.regions {
            for p in &r.prefer {
                known("datacenter", &dcs, p, &format!("region {}", r.name))?;
            }
        }
        for n in &self.networks {
            known(
                "region",
                &regions,
                &n.region,
                &format!("network {}", n.cidr),
            )?;
        }
        if let Some(r) = &self.default_region {
            known("region", &regions, r, "default_region")?;
        }
        if let Some(g) = &self.geoip {
            for (value, r) in &g.regions {
                known("region", &regions, r, &format!("geoip value {value}"))?;
            }
            let bad_path = |f: &String| f.is_empty() || f.split('.').any(str::is_empty);
            if g.fields.is_empty() || g.fields.iter().any(bad_path) {
                return Err(DnsConfigError::Invalid(
                    "geoip.fields: dotted paths like country.iso_code, at least one".into(),
                ));
            }
        }
        let mut origins = Vec::new();
        for z in &self.zones {
            let origin = absolute(&z.origin, None)?;
            absolute(&z.soa.mname, Some(&origin))?;
            absolute(&z.soa.rname, Some(&origin))?;
            for r in &z.records {
                owner_name(&r.name, &origin)?;
                r.value(&origin)?;
            }
            origins.push(origin);
        }
        unique("zone", origins.iter().map(String::as_str))?;
        let mut gslb_names = HashSet::new();
        for g in &self.gslb {
            let name = absolute(&g.name, None)?;
            if !origins.iter().any(|o| in_zone(&name, o)) {
                return Err(DnsConfigError::OutsideZones(g.name.clone()));
            }
            if !gslb_names.insert(name.clone()) {
                return Err(DnsConfigError::Duplicate {
                    what: "gslb name",
                    name,
                });
            }
            if g.pools.is_empty() {
                return Err(DnsConfigError::Invalid(format!("gslb {name}: no pools")));
            }
            if g.sticky_prefix_v4 > 32 || g.sticky_prefix_v6 > 128 {
                return Err(DnsConfigError::Invalid(format!(
                    "gslb {name}: sticky prefix too long"
                )));
            }
            for p in &g.pools {
                known("datacenter", &dcs, &p.datacenter, &format!("gslb {name}"))?;
                if p.capacity.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                    return Err(DnsConfigError::Invalid(format!(
                        "gslb {name}: capacity must be a positive number"
                    )));
                }
                if let Some(c) = g.check_of(p) {
                    check_ok(c).map_err(|why| {
                        DnsConfigError::Invalid(format!(
                            "gslb {name}: check of datacenter {}: {why}",
                            p.datacenter
                        ))
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// The bounds `[pool.health]` has, plus a port for checks that connect.
fn check_ok(c: &HealthCheck) -> Result<(), &'static str> {
    if *c.rise.get_ref() == 0 || *c.fall.get_ref() == 0 {
        return Err("rise and fall must be at least 1");
    }
    if !(0.0..=0.5).contains(c.jitter.get_ref()) {
        return Err("jitter must be within 0.0..=0.5");
    }
    if c.interval.is_zero() || c.timeout.is_zero() {
        return Err("interval and timeout must be positive");
    }
    if c.kind != CheckKind::Icmp && c.port.is_none() {
        return Err("tcp and http checks need a port");
    }
    Ok(())
}

impl RecordConfig {
    /// Parses `data` for this record's type; names come back absolute and lower-case free.
    pub fn value(&self, origin: &str) -> Result<RecordValue, DnsConfigError> {
        let err = |why| DnsConfigError::Data {
            name: self.name.clone(),
            kind: self.kind,
            data: self.data.clone(),
            why,
        };
        let d = self.data.trim();
        let f: Vec<&str> = d.split_whitespace().collect();
        let name = |s: &str| absolute(s, Some(origin)).map_err(|_| err("bad domain name"));
        let num = |s: &str| s.parse::<u16>().map_err(|_| err("bad number"));
        Ok(match self.kind {
            RecordKind::A => RecordValue::A(d.parse().map_err(|_| err("not an IPv4 address"))?),
            RecordKind::Aaaa => {
                RecordValue::Aaaa(d.parse().map_err(|_| err("not an IPv6 address"))?)
            }
            RecordKind::Cname => RecordValue::Cname(name(d)?),
            RecordKind::Ns => RecordValue::Ns(name(d)?),
            RecordKind::Mx => match f.as_slice() {
                [p, x] => RecordValue::Mx {
                    preference: num(p)?,
                    exchange: name(x)?,
                },
                _ => return Err(err("expected `preference exchange`")),
            },
            RecordKind::Txt => {
                if d.len() > 4000 {
                    return Err(err("text longer than 4000 bytes"));
                }
                RecordValue::Txt(self.data.clone())
            }
            RecordKind::Srv => match f.as_slice() {
                [p, w, port, t] => RecordValue::Srv {
                    priority: num(p)?,
                    weight: num(w)?,
                    port: num(port)?,
                    target: name(t)?,
                },
                _ => return Err(err("expected `priority weight port target`")),
            },
            RecordKind::Caa => {
                let mut it = d.splitn(3, char::is_whitespace);
                let flags = it.next().and_then(|s| s.parse::<u8>().ok());
                let tag = it.next().filter(|t| {
                    !t.is_empty() && t.len() < 16 && t.bytes().all(|b| b.is_ascii_alphanumeric())
                });
                let value = it.next().map(|v| v.trim().trim_matches('"').to_string());
                match (flags, tag, value) {
                    (Some(flags), Some(tag), Some(value)) if value.len() < 1024 => {
                        RecordValue::Caa {
                            flags,
                            tag: tag.to_ascii_lowercase(),
                            value,
                        }
                    }
                    _ => return Err(err("expected `flags tag \"value\"`")),
                }
            }
        })
    }
}

/// The owner name of a record, made absolute against `origin` (`@` is the origin itself).
pub fn owner_name(name: &str, origin: &str) -> Result<String, DnsConfigError> {
    if name == "@" {
        Ok(origin.to_string())
    } else {
        absolute(name, Some(origin))
    }
}

/// Makes a name absolute (final dot) and checks its syntax.
pub fn absolute(name: &str, origin: Option<&str>) -> Result<String, DnsConfigError> {
    let bad = || DnsConfigError::Name(name.to_string());
    let full = if name == "." {
        ".".to_string()
    } else if name.ends_with('.') {
        name.to_string()
    } else {
        match origin {
            Some(".") => format!("{name}."),
            Some(o) => format!("{name}.{o}"),
            None => format!("{name}."),
        }
    };
    if full.len() > 254 {
        return Err(bad());
    }
    if full != "." && !full[..full.len() - 1].split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(full)
}

/// The labels the DNS tier can load (hickory's `Name::from_ascii`): 1..=63 ASCII letters,
/// digits and `_`, with `-` anywhere but first and `*` only first. Checked here so that a name
/// the tier would refuse at start is refused with its file position instead.
fn label_ok(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'_' || (b == b'-' && i > 0) || (b == b'*' && i == 0)
        })
}

/// Whether absolute `name` is at or below absolute `origin` (ASCII case-insensitive).
pub fn in_zone(name: &str, origin: &str) -> bool {
    if origin == "." {
        return true;
    }
    let (n, o) = (name.to_ascii_lowercase(), origin.to_ascii_lowercase());
    n == o || n.ends_with(&format!(".{o}"))
}

fn unique<'a>(
    what: &'static str,
    names: impl Iterator<Item = &'a str>,
) -> Result<HashSet<String>, DnsConfigError> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n.to_ascii_lowercase()) {
            return Err(DnsConfigError::Duplicate {
                what,
                name: n.to_string(),
            });
        }
    }
    Ok(seen)
}

fn known(
    what: &'static str,
    set: &HashSet<String>,
    name: &str,
    by: &str,
) -> Result<(), DnsConfigError> {
    if set.contains(&name.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(DnsConfigError::Unknown {
            what,
            name: name.to_string(),
            by: by.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        listen = ["127.0.0.1:5353"]
        default_region = "eu"
        [[datacenters]]
        name = "fra"
        location = { lat = 50.1, lon = 8.7 }
        [[datacenters]]
        name = "nrt"
        [[regions]]
        name = "eu"
        prefer = ["fra", "nrt"]
        [[networks]]
        cidr = "10.1.0.0/16"
        region = "eu"
        [[zones]]
        origin = "example.test."
        soa = { mname = "ns1", rname = "hostmaster" }
        records = [
          { name = "@", type = "NS", data = "ns1" },
          { name = "ns1", type = "A", data = "192.0.2.53" },
          { name = "@", type = "MX", data = "10 mail" },
          { name = "_sip._tcp", type = "SRV", data = "0 5 5060 sip.example.test." },
          { name = "@", type = "CAA", data = "0 issue \"ca.example\"" },
        ]
        [[gslb]]
        name = "www.example.test."
        pools = [ { datacenter = "fra", addresses = ["192.0.2.1"] } ]
    "#;

    fn sample() -> DnsSection {
        toml::from_str(SAMPLE).unwrap()
    }

    #[test]
    fn sample_validates_and_parses_record_data() {
        let s = sample();
        s.validate().unwrap();
        let z = &s.zones[0];
        assert_eq!(
            z.records[2].value(&z.origin).unwrap(),
            RecordValue::Mx {
                preference: 10,
                exchange: "mail.example.test.".into()
            }
        );
        assert_eq!(
            z.records[4].value(&z.origin).unwrap(),
            RecordValue::Caa {
                flags: 0,
                tag: "issue".into(),
                value: "ca.example".into()
            }
        );
        assert_eq!(s.max_answers, 8);
        assert_eq!(s.on_all_down, AllDown::FailOpen);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = toml::from_str::<DnsSection>("bogus = 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn dangling_references_are_named() {
        let mut s = sample();
        s.networks[0].region = "mars".into();
        let e = s.validate().unwrap_err();
        assert!(matches!(e, DnsConfigError::Unknown { ref name, .. } if name == "mars"));
        let mut s = sample();
        s.gslb[0].pools[0].datacenter = "nowhere".into();
        assert!(s.validate().is_err());
        let mut s = sample();
        s.gslb[0].name = "www.other.test.".into();
        assert_eq!(
            s.validate().unwrap_err(),
            DnsConfigError::OutsideZones("www.other.test.".into())
        );
    }

    #[test]
    fn cidr_rejects_host_bits_and_long_prefixes() {
        assert!("10.0.0.0/8".parse::<Cidr>().is_ok());
        assert!("10.0.0.1/8".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("2001:db8::/32".parse::<Cidr>().is_ok());
        assert!("0.0.0.0/0".parse::<Cidr>().is_ok());
        assert!("2001:db8::1/128".parse::<Cidr>().is_ok());
    }

    #[test]
    fn names_the_dns_tier_cannot_load_are_refused_here() {
        // Found by fuzz/fuzz_targets/config.rs: `_sipҨudp` passed validation, then the DNS
        // engine refused it at start, without a file position.
        assert!(absolute("_sip\u{4a8}udp", Some("example.test.")).is_err());
        for bad in ["a b", "a\\.b", "-a", "a*", "a!b", "a..b", "caf\u{e9}"] {
            assert!(absolute(bad, Some("example.test.")).is_err(), "{bad}");
        }
        for good in ["_sip._udp", "a-b", "*", "*.x", "xn--caf-dma", "A1", "a-"] {
            assert!(absolute(good, Some("example.test.")).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_record_data_is_reported() {
        let mut s = sample();
        s.zones[0].records[1].data = "not-an-ip".into();
        assert!(matches!(s.validate(), Err(DnsConfigError::Data { .. })));
        assert!(absolute(&"a".repeat(64), None).is_err());
        assert_eq!(
            owner_name("www", "example.test.").unwrap(),
            "www.example.test."
        );
    }

    #[test]
    fn vip_checks_inherit_from_the_name_and_need_a_port() {
        let with = |check: &str| toml::from_str::<DnsSection>(&format!("{SAMPLE}\n{check}"));
        let s = with(r#"check = { kind = "tcp", port = 80, interval = "2s", fall = 2 }"#).unwrap();
        s.validate().unwrap();
        let g = &s.gslb[0];
        let c = g.check_of(&g.pools[0]).expect("inherited from the name");
        assert_eq!((c.port, *c.fall.get_ref()), (Some(80), 2));
        assert!(with(r#"check = { kind = "tcp" }"#)
            .unwrap()
            .validate()
            .is_err());
        assert!(with(r#"check = { kind = "icmp", rise = 0 }"#)
            .unwrap()
            .validate()
            .is_err());
        with(r#"check = { kind = "icmp" }"#)
            .unwrap()
            .validate()
            .unwrap();
        let mut s = sample();
        assert!(s.gslb[0].check_of(&s.gslb[0].pools[0]).is_none());
        s.gslb[0].pools[0].check = with(r#"check = { kind = "tcp" }"#).unwrap().gslb[0]
            .check
            .clone();
        assert!(s.validate().is_err(), "a pool's own check is validated too");
    }

    #[test]
    fn geoip_regions_must_exist_and_fields_default_to_country_then_continent() {
        let geo = |regions: &str| {
            toml::from_str::<DnsSection>(&format!(
                "geoip = {{ db = \"x.mmdb\", regions = {{ {regions} }} }}\n{SAMPLE}"
            ))
            .unwrap()
        };
        let s = geo(r#"JP = "eu""#);
        s.validate().unwrap();
        let g = s.geoip.as_ref().unwrap();
        assert_eq!(g.fields, ["country.iso_code", "continent.code"]);
        assert_eq!(g.regions["JP"], "eu");
        assert!(matches!(
            geo(r#"JP = "mars""#).validate(),
            Err(DnsConfigError::Unknown { ref name, .. }) if name == "mars"
        ));
        let mut s = geo("");
        s.geoip.as_mut().unwrap().fields = vec!["country..iso_code".into()];
        assert!(s.validate().is_err());
    }
}
