//! The `[dns]` section: the GSLB DNS tier's schema (`deny_unknown_fields` everywhere).
//!
//! Here: the section, its zones and records as written. `gslb`: datacenters, regions,
//! client networks and GSLB names; `cidr`: the network type they use. The checks (cross
//! references, name and record syntax) are in `validate/dns.rs`; what names and record data
//! mean is the DNS tier's (`tenbin-dns`).

mod cidr;
mod gslb;

use std::net::SocketAddr;

use serde::Deserialize;

pub use cidr::{Cidr, CidrError};
pub use gslb::{
    DatacenterConfig, DcAdmin, GeoIpConfig, GeoPoint, GslbConfig, GslbPolicy, NetworkEntry,
    PoolConfig, RegionConfig, ResolverEntry,
};

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

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        listen = ["127.0.0.1:5353"]
        geoip = { db = "x.mmdb", regions = { JP = "eu" } }
        [[datacenters]]
        name = "fra"
        location = { lat = 50.1, lon = 8.7 }
        [[zones]]
        origin = "example.test."
        soa = { mname = "ns1", rname = "hostmaster" }
        records = [ { name = "@", type = "MX", data = "10 mail" } ]
        [[gslb]]
        name = "www.example.test."
        check = { kind = "tcp", port = 80, fall = 2 }
        pools = [ { datacenter = "fra", addresses = ["192.0.2.1"] } ]
    "#;

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let s: DnsSection = toml::from_str(SAMPLE).unwrap();
        assert_eq!((s.max_answers, s.edns_udp_max), (8, 1232));
        assert_eq!(s.on_all_down, AllDown::FailOpen);
        assert_eq!(s.ttl, TtlPolicy::default());
        assert_eq!((s.zones[0].ttl, s.zones[0].soa.serial), (300, 1));
        assert_eq!(s.zones[0].records[0].kind, RecordKind::Mx);
        let geoip = s.geoip.as_ref().unwrap();
        assert_eq!(geoip.fields, ["country.iso_code", "continent.code"]);
        let g = &s.gslb[0];
        assert_eq!(
            (g.ttl, g.policy, g.sticky_prefix_v4),
            (30, GslbPolicy::Multi, 24)
        );
        assert_eq!((g.pools[0].weight, g.pools[0].capacity), (1, None));
        let c = g.check_of(&g.pools[0]).expect("inherited from the name");
        assert_eq!((c.port, *c.fall.get_ref()), (Some(80), 2));
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = toml::from_str::<DnsSection>("bogus = 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
