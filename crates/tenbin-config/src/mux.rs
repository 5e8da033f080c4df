//! The `[mux]` and `[agent]` sections: the XDP VIP tier.
//!
//! ```toml
//! [mux]
//! interface = "eth0"
//! seed = 24301               # every Mux of a pool must use the same seed
//! mtu = 1500                 # largest encapsulated packet; larger get ICMP too-big
//! source_v4 = "172.16.0.0/16" # outer sources vary per flow inside these prefixes
//!
//! [[mux.vip]]
//! address = "10.0.0.1"
//! port = 80                  # omitted or 0: every port
//! protocol = "tcp"
//! forward = "ipip"           # ipip | gre | dsr
//!
//! [[mux.vip.backend]]
//! address = "10.1.0.1"
//! mac = "02:be:00:00:00:01"  # next hop on the Mux's segment
//!
//! [agent]
//! interface = "eth0"
//! vips = ["10.0.0.1"]
//!
//! [[agent.check]]
//! vip = "10.0.0.1"
//! port = 80
//! [agent.check.health]       # the keys of [pool.health]
//! kind = "http"
//! path = "/health"
//! interval = "500ms"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Deserialize;

use crate::pool::HealthCheck;

/// `[mux]`: one XDP Mux node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuxSection {
    /// Interface the program attaches to (one arm: packets leave where they came in).
    pub interface: String,
    /// Two arms: forwarded packets leave through this interface (XDP_REDIRECT) instead.
    #[serde(default)]
    pub egress_interface: Option<String>,
    /// `driver` (native, falls back to generic with a warning) or `generic`.
    #[serde(default)]
    pub attach: AttachMode,
    /// Flow-hash seed; identical on every Mux so that ECMP changes do not move flows.
    #[serde(default)]
    pub seed: u32,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// UDP flow entries idle longer than this are placed again.
    #[serde(default = "default_udp_idle", with = "humantime_serde")]
    pub udp_idle: Duration,
    /// Flow-table entries (per-CPU LRU lists over one table).
    #[serde(default = "default_flow_table")]
    pub flow_table: u32,
    /// New flow entries per second per CPU; 0: unlimited. Above it flows are still
    /// forwarded by the ring, statelessly.
    #[serde(default)]
    pub flow_cap: u64,
    #[serde(default = "default_source_v4")]
    pub source_v4: Ipv4Net,
    /// At least a /96: only the last 32 bits vary.
    #[serde(default = "default_source_v6")]
    pub source_v6: Ipv6Net,
    #[serde(default)]
    pub vip: Vec<MuxVip>,
    /// UDP address where host agents' health reports arrive; none: reports are not used.
    #[serde(default)]
    pub report_listen: Option<SocketAddr>,
    /// Shared secret (at least 16 bytes) authenticating agent reports.
    #[serde(default)]
    pub report_key: Option<String>,
    /// A reporting backend silent for longer is taken out of the rings.
    #[serde(default = "default_report_timeout", with = "humantime_serde")]
    pub report_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    #[default]
    Driver,
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// How a VIP's packets reach its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    Ipip,
    Gre,
    Dsr,
}

/// `[[mux.vip]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuxVip {
    pub address: IpAddr,
    #[serde(default)]
    pub port: u16,
    pub protocol: Protocol,
    pub forward: Forward,
    #[serde(default)]
    pub backend: Vec<MuxBackend>,
}

/// `[[mux.vip.backend]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuxBackend {
    pub address: IpAddr,
    /// `aa:bb:cc:dd:ee:ff`: the next hop towards the backend on the Mux's segment.
    pub mac: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// `active` (default), `draining`, `down` or `maintenance`.
    #[serde(default)]
    pub state: BackendState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    #[default]
    Active,
    Draining,
    Down,
    Maintenance,
}

/// `[agent]`: the host agent on a backend.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Interface the decapsulation program attaches to.
    pub interface: String,
    /// VIPs this host serves: put on `lo`.
    pub vips: Vec<IpAddr>,
    /// Outer destinations to decapsulate (this host's addresses); empty: any.
    #[serde(default)]
    pub tunnel_addresses: Vec<IpAddr>,
    /// This backend's address as the Muxes know it (the report's sender identity).
    #[serde(default)]
    pub backend_address: Option<IpAddr>,
    /// Muxes' `report_listen` addresses.
    #[serde(default)]
    pub report_to: Vec<SocketAddr>,
    #[serde(default)]
    pub report_key: Option<String>,
    #[serde(default = "default_report_interval", with = "humantime_serde")]
    pub report_interval: Duration,
    /// Local services checked and reported.
    #[serde(default)]
    pub check: Vec<AgentServiceCheck>,
}

/// `[[agent.check]]`: a service behind a VIP on this host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentServiceCheck {
    pub vip: IpAddr,
    pub port: u16,
    #[serde(default = "default_tcp")]
    pub protocol: Protocol,
    /// `[agent.check.health]`: how the service is probed at `vip`, with the keys (and
    /// defaults) of `[pool.health]`: kind, interval, timeout, rise, fall, HTTP status and
    /// content. None: a TCP connect with those defaults (a UDP service must say).
    #[serde(default)]
    pub health: Option<HealthCheck>,
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn default_mtu() -> u32 {
    1500
}

fn default_udp_idle() -> Duration {
    Duration::from_secs(30)
}

fn default_flow_table() -> u32 {
    262_144
}

fn default_source_v4() -> Ipv4Net {
    Ipv4Net::new(std::net::Ipv4Addr::new(172, 16, 0, 0), 16).expect("valid prefix")
}

fn default_source_v6() -> Ipv6Net {
    Ipv6Net::new(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0), 96).expect("valid prefix")
}

fn default_weight() -> u32 {
    1
}

fn default_report_timeout() -> Duration {
    Duration::from_secs(3)
}

fn default_report_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_tcp() -> Protocol {
    Protocol::Tcp
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
interface = "eth0"
seed = 7
source_v4 = "10.99.0.1/32"

[[vip]]
address = "10.0.0.1"
port = 80
protocol = "tcp"
forward = "gre"

[[vip.backend]]
address = "10.1.0.1"
mac = "02:be:00:00:00:01"
weight = 3

[[vip.backend]]
address = "10.1.0.2"
mac = "02-be-00-00-00-02"
state = "draining"
"#;

    #[test]
    fn parses_with_defaults() {
        let m: MuxSection = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(m.mtu, 1500);
        assert_eq!(m.udp_idle, Duration::from_secs(30));
        assert_eq!(m.attach, AttachMode::Driver);
        assert_eq!(m.source_v4.prefix_len(), 32);
        assert_eq!(m.vip[0].forward, Forward::Gre);
        assert_eq!(m.vip[0].backend[0].weight, 3);
        assert_eq!(m.vip[0].backend[1].state, BackendState::Draining);
        assert_eq!(
            parse_mac(&m.vip[0].backend[1].mac),
            Some([2, 0xbe, 0, 0, 0, 2])
        );
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        assert!(toml::from_str::<MuxSection>(&format!("{EXAMPLE}\nsurprise = 1")).is_err());
        assert!(toml::from_str::<MuxSection>(&EXAMPLE.replace("\"gre\"", "\"vxlan\"")).is_err());
    }

    #[test]
    fn mac_parser_is_strict() {
        assert_eq!(parse_mac("ff:ff:ff:ff:ff:ff"), Some([0xff; 6]));
        for bad in [
            "",
            "ff:ff:ff:ff:ff",
            "ff:ff:ff:ff:ff:ff:ff",
            "gg:ff:ff:ff:ff:ff",
            "f:ff:ff:ff:ff:fff",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn agent_section() {
        let a: AgentSection =
            toml::from_str("interface = \"eth0\"\nvips = [\"10.0.0.1\", \"2001:db8::1\"]").unwrap();
        assert_eq!(a.vips.len(), 2);
        assert!(a.tunnel_addresses.is_empty());
        assert!(toml::from_str::<AgentSection>("interface = \"eth0\"").is_err());
    }
}
