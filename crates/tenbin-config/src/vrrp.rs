//! The `[vrrp]` section: VRRPv3 virtual routers between proxy nodes (run by tenbin-ha).
//!
//! ```toml
//! [vrrp]
//! notify = "/etc/tenbin/vrrp-notify"   # default for every instance
//!
//! [[vrrp.instance]]
//! name = "web"
//! interface = "eth0"
//! vrid = 51
//! priority = 150                # 1..=254; 255 only for the owner of the addresses
//! interval = "1s"               # 10ms steps, 10ms..=40.95s
//! preempt = true
//! preempt_delay = "0s"
//! vips = ["10.77.0.100/24"]
//! checksum = "keepalived"       # IPv4 pseudo-header (Debian's keepalived 2.2.7) | rfc5798
//!                               # (no pseudo-header) | keepalived-old-unicast
//! unicast_peers = []            # empty: multicast 224.0.0.18 / ff02::12
//! probe = ["10.77.0.254"]       # cable-safe promotion: ARP these before taking over
//! track_interfaces = ["eth1"]
//!
//! [[vrrp.instance.track]]      # fed by `tenbin run`; `tenbin vrrp` alone feeds none
//! name = "pool/web"             # pool/NAME, frontend/NAME, or proxy (the node can serve)
//! weight = 50                   # priority decrement while down; omitted: Fault
//! ```

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use humantime_serde::Serde;
use ipnet::IpNet;
use serde::Deserialize;
use serde_spanned::Spanned;

/// `[vrrp]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSection {
    #[serde(default)]
    pub notify: Option<PathBuf>,
    #[serde(default)]
    pub instance: Vec<VrrpInstance>,
}

/// `[[vrrp.instance]]`: one virtual router.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstance {
    pub name: Spanned<String>,
    pub interface: Spanned<String>,
    pub vrid: Spanned<u8>,
    pub priority: Spanned<u8>,
    #[serde(default = "default_interval")]
    pub interval: Spanned<Serde<Duration>>,
    #[serde(default = "yes")]
    pub preempt: bool,
    #[serde(default, with = "humantime_serde")]
    pub preempt_delay: Duration,
    pub vips: Spanned<Vec<Vip>>,
    #[serde(default)]
    pub checksum: Checksum,
    #[serde(default = "empty")]
    pub unicast_peers: Spanned<Vec<IpAddr>>,
    #[serde(default)]
    pub source: Option<IpAddr>,
    #[serde(default = "empty")]
    pub probe: Spanned<Vec<IpAddr>>,
    /// Also refuse takeover while another host answers ARP for a VIP.
    #[serde(default = "yes")]
    pub probe_vips: bool,
    #[serde(default)]
    pub track_interfaces: Vec<String>,
    #[serde(default)]
    pub track: Vec<VrrpTrack>,
    #[serde(default)]
    pub notify: Option<PathBuf>,
    /// VIPs vanish this long after the master stops refreshing them (a killed process);
    /// whole seconds, 0: permanent.
    #[serde(default = "default_lifetime")]
    pub vip_lifetime: Spanned<Serde<Duration>>,
    #[serde(default = "default_garp")]
    pub garp_repeat: u32,
}

/// A VIP with its prefix; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Vip(pub IpNet);

impl TryFrom<String> for Vip {
    type Error = String;

    fn try_from(s: String) -> Result<Vip, String> {
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map(Vip)
            .map_err(|_| format!("`{s}` is not an address or address/prefix"))
    }
}

impl Vip {
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }
}

/// Which bytes the IPv4 checksum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Checksum {
    /// With the IPv4 pseudo-header, as Debian's keepalived 2.2.7 sends and expects.
    #[default]
    Keepalived,
    /// The VRRP message alone (FRR's `no checksum-with-ipv4-pseudoheader`, older routers).
    Rfc5798,
    /// The pseudo-header with 224.0.0.18 as destination even for unicast: keepalived's
    /// `old_unicast_checksum`.
    KeepalivedOldUnicast,
}

/// `[[vrrp.instance.track]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpTrack {
    pub name: String,
    #[serde(default)]
    pub weight: Option<u8>,
}

fn default_interval() -> Spanned<Serde<Duration>> {
    Spanned::new(0..0, Serde::from(Duration::from_secs(1)))
}

fn default_lifetime() -> Spanned<Serde<Duration>> {
    Spanned::new(0..0, Serde::from(Duration::from_secs(3)))
}

fn empty<T>() -> Spanned<Vec<T>> {
    Spanned::new(0..0, Vec::new())
}

fn default_garp() -> u32 {
    2
}

fn yes() -> bool {
    true
}

/// A `[vrrp]` error before it is placed in the file: span, dotted key, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInvalid {
    pub span: Option<Range<usize>>,
    pub key: String,
    pub message: String,
}

fn bad<T>(at: &Spanned<T>, key: String, message: impl Into<String>) -> VrrpInvalid {
    let span = at.span();
    VrrpInvalid {
        span: (span != (0..0)).then_some(span),
        key,
        message: message.into(),
    }
}

impl VrrpInstance {
    /// Advertisement_Interval in centiseconds (validated: 1..=4095).
    pub fn interval_centis(&self) -> u16 {
        (self.interval.get_ref().as_millis() / 10).clamp(1, 4095) as u16
    }

    /// VIP lifetime in whole seconds (validated), 0: permanent.
    pub fn vip_lifetime_secs(&self) -> u32 {
        u32::try_from(self.vip_lifetime.get_ref().as_secs()).unwrap_or(u32::MAX)
    }

    /// IPv4 probe targets (validated: all are IPv4).
    pub fn probe_v4(&self) -> Vec<Ipv4Addr> {
        self.probe
            .get_ref()
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect()
    }
}

impl VrrpSection {
    pub fn validate(&self) -> Result<(), VrrpInvalid> {
        let mut names = HashSet::new();
        let mut vrids = HashSet::new();
        for (i, inst) in self.instance.iter().enumerate() {
            let key = |k: &str| format!("vrrp.instance[{i}].{k}");
            if !names.insert(inst.name.get_ref().as_str()) {
                return Err(bad(&inst.name, key("name"), "duplicate instance name"));
            }
            let family = inst.vips.get_ref().first().map(|v| v.addr().is_ipv4());
            if !vrids.insert((
                inst.interface.get_ref().as_str(),
                *inst.vrid.get_ref(),
                family,
            )) {
                return Err(bad(
                    &inst.vrid,
                    key("vrid"),
                    "another instance uses this vrid on this interface and family",
                ));
            }
            if *inst.vrid.get_ref() == 0 {
                return Err(bad(&inst.vrid, key("vrid"), "must be 1..=255"));
            }
            if *inst.priority.get_ref() == 0 {
                return Err(bad(
                    &inst.priority,
                    key("priority"),
                    "must be 1..=254, or 255 for the address owner (0 is reserved for resigning)",
                ));
            }
            let ms = inst.interval.get_ref().as_millis();
            if ms % 10 != 0 || !(10..=40_950).contains(&ms) {
                return Err(bad(
                    &inst.interval,
                    key("interval"),
                    "must be a multiple of 10ms between 10ms and 40.95s",
                ));
            }
            let Some(v4) = family else {
                return Err(bad(&inst.vips, key("vips"), "needs at least one address"));
            };
            if inst.vips.get_ref().iter().any(|v| v.addr().is_ipv4() != v4) {
                return Err(bad(
                    &inst.vips,
                    key("vips"),
                    "all of one family (use one instance per family)",
                ));
            }
            if inst
                .unicast_peers
                .get_ref()
                .iter()
                .any(|p| p.is_ipv4() != v4)
            {
                return Err(bad(
                    &inst.unicast_peers,
                    key("unicast_peers"),
                    "must be of the VIPs' family",
                ));
            }
            if inst.probe.get_ref().iter().any(|p| !p.is_ipv4())
                || (!v4 && !inst.probe.get_ref().is_empty())
            {
                return Err(bad(
                    &inst.probe,
                    key("probe"),
                    "probe targets are IPv4 addresses answered by ARP (IPv4 instances only)",
                ));
            }
            if inst.vip_lifetime.get_ref().subsec_nanos() != 0 {
                return Err(bad(
                    &inst.vip_lifetime,
                    key("vip_lifetime"),
                    "whole seconds",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const OK: &str = r#"
[vrrp]
[[vrrp.instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
interval = "100ms"
vips = ["10.77.0.100/24", "10.77.0.101"]
probe = ["10.77.0.3"]
[[vrrp.instance.track]]
name = "pool/web"
weight = 30
"#;

    #[test]
    fn parses_with_defaults() {
        let c = Config::parse(OK, "t.toml").unwrap();
        let v = c.vrrp.unwrap();
        let i = &v.instance[0];
        assert_eq!(i.interval_centis(), 10);
        assert!(i.preempt && i.probe_vips);
        assert_eq!(i.checksum, super::Checksum::Keepalived);
        assert_eq!(i.track[0].weight, Some(30));
        assert_eq!(i.vips.get_ref()[1].0.to_string(), "10.77.0.101/32");
    }

    #[test]
    fn errors_name_line_column_and_key() {
        let e = Config::parse(&OK.replace("priority = 150", "priority = 0"), "t.toml").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (7, "vrrp.instance[0].priority"));
        assert_eq!(e.column, 12);
        let e = Config::parse(
            &OK.replace("interval = \"100ms\"", "interval = \"105ms\""),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!(e.key, "vrrp.instance[0].interval");
        let e =
            Config::parse(&OK.replace("vrid = 51", "vrid = 51\nbogus = 1"), "t.toml").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        assert_eq!(e.line, 7);
        let e = Config::parse(
            &OK.replace("10.77.0.100/24\"", "10.77.0.100/24\", \"2001:db8::1/64\""),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("vrrp.instance[0].vips", 9));
        let e =
            Config::parse(&OK.replace("\"10.77.0.3\"", "\"2001:db8::3\""), "t.toml").unwrap_err();
        assert_eq!(e.key, "vrrp.instance[0].probe");
    }
}
