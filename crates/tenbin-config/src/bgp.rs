//! The `[bgp]` section: the speaker that announces this node's VIPs (and, with
//! `announce_dns`, its DNS listen addresses: anycast DNS) to its routers.
//!
//! Sessions run without TCP MD5 (RFC 2385) or TCP-AO: there is no key to set (`md5` is an
//! unknown key), so keep sessions on links only routers and nodes reach.
//!
//! ```toml
//! [bgp]
//! router_id = "10.88.11.2"
//! local_as = 65001
//! hold_time = 3                    # seconds, proposed; 0 (none) or at least 3; default 90
//! connect_retry = "1s"             # first retry; doubles up to connect_retry_max
//! linger = "2s"                    # on SIGTERM: withdraw, wait this long, then close
//! med = 10                         # optional; identical on every Mux of a pool
//! communities = ["65001:100"]
//! large_communities = ["65001:1:2"]
//!
//! bfd_interval = "100ms"           # for neighbours with bfd = true; default 300ms
//! bfd_multiplier = 3
//!
//! announce_dns = true              # anycast DNS: announce each [dns].listen address
//! dns_check_interval = "1s"        # ... while a query for its first zone's SOA is answered
//!
//! [[bgp.neighbor]]
//! address = "10.88.11.1"
//! remote_as = 65000                # = local_as: iBGP (LOCAL_PREF sent)
//! bfd = true
//! ```

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

/// `[bgp]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpSection {
    pub router_id: Spanned<Ipv4Addr>,
    pub local_as: Spanned<u32>,
    #[serde(default = "default_hold")]
    pub hold_time: Spanned<u16>,
    #[serde(default = "default_retry", with = "humantime_serde")]
    pub connect_retry: Duration,
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub connect_retry_max: Duration,
    #[serde(default = "default_linger", with = "humantime_serde")]
    pub linger: Duration,
    /// Where passive neighbours connect; default `[::]:179`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Next hops announced; default: the session's local address of that family.
    #[serde(default)]
    pub next_hop_v4: Option<Ipv4Addr>,
    #[serde(default)]
    pub next_hop_v6: Option<Ipv6Addr>,
    #[serde(default)]
    pub med: Option<u32>,
    /// Sent to internal neighbours only; default 100.
    #[serde(default)]
    pub local_pref: Option<u32>,
    /// `"ASN:VALUE"`, each 16 bits (RFC 1997).
    #[serde(default)]
    pub communities: Vec<Spanned<String>>,
    /// `"GLOBAL:LOCAL1:LOCAL2"`, each 32 bits (RFC 8092).
    #[serde(default)]
    pub large_communities: Vec<Spanned<String>>,
    /// BFD transmit and receive interval for neighbours with `bfd = true`.
    #[serde(default = "default_bfd_interval", with = "humantime_serde")]
    pub bfd_interval: Duration,
    /// Packets missed before BFD declares a neighbour down.
    #[serde(default = "default_bfd_multiplier")]
    pub bfd_multiplier: Spanned<u8>,
    /// Anycast authoritative DNS: announce each address of `[dns].listen` (as a /32 or
    /// /128) while the DNS tier answers a query for its first zone's SOA there, checked every
    /// `dns_check_interval`; withdraw it while it does not. Needs `[dns]` with a zone and
    /// specific (not wildcard) listen addresses.
    #[serde(default = "no")]
    pub announce_dns: Spanned<bool>,
    #[serde(default = "default_dns_check", with = "humantime_serde")]
    pub dns_check_interval: Duration,
    pub neighbor: Vec<BgpNeighbor>,
}

/// `[[bgp.neighbor]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpNeighbor {
    pub address: Spanned<IpAddr>,
    pub remote_as: Spanned<u32>,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Only accept the neighbour's connections; never connect.
    #[serde(default)]
    pub passive: bool,
    #[serde(default)]
    pub local_address: Option<Spanned<IpAddr>>,
    /// Overrides `[bgp].hold_time`.
    #[serde(default)]
    pub hold_time: Option<Spanned<u16>>,
    /// Address families offered; both by default.
    #[serde(default = "yes")]
    pub ipv4: bool,
    #[serde(default = "yes")]
    pub ipv6: bool,
    /// Run BFD (RFC 5880/5881, IPv4 neighbours) beside the session.
    #[serde(default)]
    pub bfd: bool,
}

/// A `[bgp]` value the schema accepts but the speaker cannot use, placed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpInvalid {
    pub span: Option<Range<usize>>,
    pub key: String,
    pub message: String,
}

// Enough for any operator policy; bounded so one UPDATE always fits in 4096 bytes.
const MAX_COMMUNITIES: usize = 64;
const MAX_LARGE_COMMUNITIES: usize = 32;

fn invalid<T>(at: &Spanned<T>, key: impl Into<String>, message: impl Into<String>) -> BgpInvalid {
    let span = at.span();
    BgpInvalid {
        span: (span != (0..0)).then_some(span),
        key: key.into(),
        message: message.into(),
    }
}

impl BgpSection {
    /// Checks what the schema cannot: identifiers, AS numbers, hold times, communities,
    /// duplicate neighbours, address families.
    pub fn validate(&self) -> Result<(), BgpInvalid> {
        if self.router_id.get_ref().is_unspecified() {
            return Err(invalid(
                &self.router_id,
                "bgp.router_id",
                "must not be 0.0.0.0",
            ));
        }
        if *self.local_as.get_ref() == 0 {
            return Err(invalid(&self.local_as, "bgp.local_as", "AS 0 is reserved"));
        }
        hold(&self.hold_time, "bgp.hold_time")?;
        if self.connect_retry.is_zero() || self.connect_retry_max < self.connect_retry {
            return Err(BgpInvalid {
                span: None,
                key: "bgp.connect_retry".into(),
                message: "must be above zero and at most connect_retry_max".into(),
            });
        }
        self.communities()?;
        self.large_communities()?;
        if *self.bfd_multiplier.get_ref() == 0 {
            return Err(invalid(
                &self.bfd_multiplier,
                "bgp.bfd_multiplier",
                "must be at least 1",
            ));
        }
        if self.bfd_interval < Duration::from_millis(10) {
            return Err(BgpInvalid {
                span: None,
                key: "bgp.bfd_interval".into(),
                message: "must be at least 10ms".into(),
            });
        }
        if self.dns_check_interval < Duration::from_millis(100) {
            return Err(BgpInvalid {
                span: None,
                key: "bgp.dns_check_interval".into(),
                message: "must be at least 100ms".into(),
            });
        }
        if self.neighbor.is_empty() {
            return Err(invalid(
                &self.router_id,
                "bgp.neighbor",
                "needs at least one [[bgp.neighbor]]",
            ));
        }
        let mut seen = HashSet::new();
        for (i, n) in self.neighbor.iter().enumerate() {
            let key = |k: &str| format!("bgp.neighbor[{i}].{k}");
            if !seen.insert(*n.address.get_ref()) {
                return Err(invalid(&n.address, key("address"), "duplicate neighbour"));
            }
            if *n.remote_as.get_ref() == 0 {
                return Err(invalid(&n.remote_as, key("remote_as"), "AS 0 is reserved"));
            }
            if let Some(h) = &n.hold_time {
                hold(h, &key("hold_time"))?;
            }
            if let Some(l) = &n.local_address {
                if l.get_ref().is_ipv4() != n.address.get_ref().is_ipv4() {
                    return Err(invalid(
                        l,
                        key("local_address"),
                        "must be of the neighbour's address family",
                    ));
                }
            }
            if n.bfd && !n.address.get_ref().is_ipv4() {
                return Err(invalid(
                    &n.address,
                    key("bfd"),
                    "BFD runs with IPv4 neighbours only",
                ));
            }
            if !n.ipv4 && !n.ipv6 {
                return Err(invalid(
                    &n.address,
                    key("ipv4"),
                    "offers no address family (ipv4 and ipv6 both false)",
                ));
            }
        }
        Ok(())
    }

    /// Checks `announce_dns` against the `[dns]` section it announces (`None`: the file
    /// has none).
    pub fn validate_dns(&self, dns: Option<&crate::dns::DnsSection>) -> Result<(), BgpInvalid> {
        if !*self.announce_dns.get_ref() {
            return Ok(());
        }
        let at = |message: String| Err(invalid(&self.announce_dns, "bgp.announce_dns", message));
        let Some(dns) = dns else {
            return at("announces the DNS tier's addresses, but there is no [dns] section".into());
        };
        if dns.listen.is_empty() {
            return at("announces [dns].listen, which is empty".into());
        }
        if let Some(a) = dns.listen.iter().find(|a| a.ip().is_unspecified()) {
            return at(format!(
                "cannot announce the wildcard address {a} of [dns].listen: listen on the anycast address itself"
            ));
        }
        if dns.zones.is_empty() {
            return at("needs a [[dns.zones]] to check the DNS tier with".into());
        }
        Ok(())
    }

    /// The standard communities as 32-bit values.
    pub fn communities(&self) -> Result<Vec<u32>, BgpInvalid> {
        if self.communities.len() > MAX_COMMUNITIES {
            return Err(invalid(
                &self.communities[MAX_COMMUNITIES],
                "bgp.communities",
                format!("at most {MAX_COMMUNITIES}"),
            ));
        }
        self.communities
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let parts = numbers::<u16>(c.get_ref(), 2).ok_or_else(|| {
                    invalid(
                        c,
                        format!("bgp.communities[{i}]"),
                        format!(
                            "`{}` is not ASN:VALUE (two numbers up to 65535)",
                            c.get_ref()
                        ),
                    )
                })?;
                Ok((u32::from(parts[0]) << 16) | u32::from(parts[1]))
            })
            .collect()
    }

    pub fn large_communities(&self) -> Result<Vec<[u32; 3]>, BgpInvalid> {
        if self.large_communities.len() > MAX_LARGE_COMMUNITIES {
            return Err(invalid(
                &self.large_communities[MAX_LARGE_COMMUNITIES],
                "bgp.large_communities",
                format!("at most {MAX_LARGE_COMMUNITIES}"),
            ));
        }
        self.large_communities
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let p = numbers::<u32>(c.get_ref(), 3).ok_or_else(|| {
                    invalid(
                        c,
                        format!("bgp.large_communities[{i}]"),
                        format!(
                            "`{}` is not GLOBAL:LOCAL1:LOCAL2 (three 32-bit numbers)",
                            c.get_ref()
                        ),
                    )
                })?;
                Ok([p[0], p[1], p[2]])
            })
            .collect()
    }
}

fn hold(h: &Spanned<u16>, key: &str) -> Result<(), BgpInvalid> {
    if matches!(h.get_ref(), 1 | 2) {
        return Err(invalid(
            h,
            key,
            "hold time must be 0 (none) or at least 3 seconds (RFC 4271 §4.2)",
        ));
    }
    Ok(())
}

fn numbers<T: std::str::FromStr>(s: &str, n: usize) -> Option<Vec<T>> {
    let v: Vec<T> = s
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (v.len() == n).then_some(v)
}

fn default_hold() -> Spanned<u16> {
    Spanned::new(0..0, 90)
}

fn default_retry() -> Duration {
    Duration::from_secs(5)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}

fn default_linger() -> Duration {
    Duration::from_secs(2)
}

fn default_dns_check() -> Duration {
    Duration::from_secs(1)
}

fn default_bfd_interval() -> Duration {
    Duration::from_millis(300)
}

fn default_bfd_multiplier() -> Spanned<u8> {
    Spanned::new(0..0, 3)
}

fn default_port() -> u16 {
    179
}

fn yes() -> bool {
    true
}

fn no() -> Spanned<bool> {
    Spanned::new(0..0, false)
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const GOOD: &str = r#"
[bgp]
router_id = "10.88.11.2"
local_as = 65001
hold_time = 3
connect_retry = "1s"
communities = ["65001:100"]
large_communities = ["65001:1:2"]

[[bgp.neighbor]]
address = "10.88.11.1"
remote_as = 65000
"#;

    #[test]
    fn parses_with_defaults() {
        let c = Config::parse(GOOD, "t.toml").unwrap();
        let b = c.bgp.unwrap();
        assert_eq!(*b.hold_time.get_ref(), 3);
        assert_eq!(b.communities().unwrap(), vec![(65001 << 16) | 100]);
        assert_eq!(b.large_communities().unwrap(), vec![[65001, 1, 2]]);
        assert_eq!(b.neighbor[0].port, 179);
        assert!(b.neighbor[0].ipv4 && b.neighbor[0].ipv6 && !b.neighbor[0].passive);
        assert_eq!(b.linger, std::time::Duration::from_secs(2));
        assert!(!b.neighbor[0].bfd);
        assert_eq!(*b.bfd_multiplier.get_ref(), 3);
    }

    #[test]
    fn errors_name_file_line_column_and_key() {
        let e =
            Config::parse(&GOOD.replace("hold_time = 3", "hold_time = 2"), "t.toml").unwrap_err();
        assert_eq!((e.line, e.column, e.key.as_str()), (5, 13, "bgp.hold_time"));
        assert!(
            e.to_string()
                .starts_with("t.toml:5:13: key `bgp.hold_time`"),
            "{e}"
        );
        let e =
            Config::parse(&GOOD.replace("\"65001:100\"", "\"65001:70000\""), "t.toml").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (7, "bgp.communities[0]"));
        let e = Config::parse(&GOOD.replace("65001:1:2", "1:2"), "t.toml").unwrap_err();
        assert_eq!(e.key, "bgp.large_communities[0]");
        let dup =
            format!("{GOOD}\n[[bgp.neighbor]]\naddress = \"10.88.11.1\"\nremote_as = 65000\n");
        let e = Config::parse(&dup, "t.toml").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (15, "bgp.neighbor[1].address"));
        let e = Config::parse(
            &GOOD.replace("remote_as = 65000", "remote_as = 0"),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!(e.key, "bgp.neighbor[0].remote_as");
        let e = Config::parse(
            &GOOD.replace("hold_time = 3", "hold_time = 3\nbfd_multiplier = 0"),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (6, "bgp.bfd_multiplier"));
        let fam = GOOD.replace(
            "remote_as = 65000",
            "remote_as = 65000\nlocal_address = \"fd00::1\"",
        );
        assert_eq!(
            Config::parse(&fam, "t.toml").unwrap_err().key,
            "bgp.neighbor[0].local_address"
        );
    }

    #[test]
    fn announce_dns_needs_a_dns_tier_on_specific_addresses_with_a_zone() {
        let on = GOOD.replace("hold_time = 3", "hold_time = 3\nannounce_dns = true");
        let e = Config::parse(&on, "t.toml").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.key.as_str()),
            (6, 16, "bgp.announce_dns")
        );
        assert!(e.message.contains("no [dns] section"), "{e}");
        let zone = "[[dns.zones]]\norigin = \"example.com\"\n\
                    soa = { mname = \"ns1.example.com\", rname = \"h.example.com\" }\n";
        let dns = |listen: &str, zones: &str| format!("[dns]\nlisten = [{listen}]\n{zones}{on}");
        let e = Config::parse(&dns("\"0.0.0.0:53\"", zone), "t.toml").unwrap_err();
        assert!(e.message.contains("wildcard"), "{e}");
        let e = Config::parse(&dns("\"10.53.0.1:53\"", ""), "t.toml").unwrap_err();
        assert!(e.message.contains("dns.zones"), "{e}");
        let c = Config::parse(&dns("\"10.53.0.1:53\"", zone), "t.toml").unwrap();
        let b = c.bgp.unwrap();
        assert!(*b.announce_dns.get_ref());
        assert_eq!(b.dns_check_interval, std::time::Duration::from_secs(1));
        let fast = on.replace("announce_dns = true", "dns_check_interval = \"10ms\"");
        assert_eq!(
            Config::parse(&fast, "t.toml").unwrap_err().key,
            "bgp.dns_check_interval"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let e = Config::parse(
            &GOOD.replace("remote_as = 65000", "remote_as = 65000\nmd5 = \"x\""),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, 13, "{e}");
        assert!(e.message.contains("md5"), "{e}");
    }
}
