//! `[mux]` → the data plane's desired state ([`MuxSpec`]), and what a Mux reports as its
//! readiness for the tiers that follow it (BGP announces, the node's health).

use std::net::IpAddr;

use tenbin_config::mux::{parse_mac, BackendState, Forward, MuxSection};
use tenbin_core::ServerState;

use crate::abi::Mode;
use crate::control::{BackendSpec, MuxSpec, VipSpec};
use crate::tier::TierError;

/// The desired state of `[mux]` (validated). Reads the egress interface's index and MAC
/// from sysfs.
pub fn spec(m: &MuxSection) -> Result<MuxSpec, TierError> {
    let vips = m
        .vip
        .iter()
        .map(|v| {
            let backends = v
                .backend
                .iter()
                .map(|b| {
                    Ok(BackendSpec {
                        addr: b.address,
                        mac: parse_mac(&b.mac).ok_or_else(|| TierError::Invalid {
                            key: "mux.vip.backend.mac",
                            message: format!("`{}` is not a MAC address", b.mac),
                        })?,
                        weight: b.weight,
                        state: match b.state {
                            BackendState::Active => ServerState::Active,
                            BackendState::Draining => ServerState::Draining,
                            BackendState::Down => ServerState::Down,
                            BackendState::Maintenance => ServerState::Maintenance,
                        },
                    })
                })
                .collect::<Result<Vec<_>, TierError>>()?;
            Ok(VipSpec {
                addr: v.address,
                port: v.port,
                proto: v.protocol.number(),
                mode: match v.forward {
                    Forward::Ipip => Mode::Ipip,
                    Forward::Gre => Mode::Gre,
                    Forward::Dsr => Mode::Dsr,
                },
                backends,
            })
        })
        .collect::<Result<Vec<_>, TierError>>()?;
    Ok(MuxSpec {
        seed: m.seed,
        mtu: m.mtu,
        udp_idle: m.udp_idle,
        flow_cap: m.flow_cap,
        src4: (m.source_v4.addr(), m.source_v4.prefix_len()),
        src6: (m.source_v6.addr(), m.source_v6.prefix_len()),
        egress: match &m.egress_interface {
            Some(name) => Some(interface(name)?),
            None => None,
        },
        vips,
    })
}

/// Index and MAC address of a local interface, from sysfs.
fn interface(name: &str) -> Result<(u32, [u8; 6]), TierError> {
    let bad = |message: String| TierError::Invalid {
        key: "mux.egress_interface",
        message,
    };
    let read = |what: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{what}"))
            .map_err(|e| bad(format!("interface {name}: no {what} ({e})")))
    };
    let index = read("ifindex")?
        .trim()
        .parse()
        .map_err(|_| bad(format!("interface {name}: unreadable ifindex")))?;
    let mac = parse_mac(read("address")?.trim())
        .ok_or_else(|| bad(format!("interface {name}: unreadable MAC address")))?;
    Ok((index, mac))
}

/// What a Mux offers right now, published on every change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MuxReadiness {
    /// The program is attached and the last desired state was written without error.
    pub attached: bool,
    /// One entry per configured VIP, in config order.
    pub vips: Vec<VipReadiness>,
}

/// One VIP's readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipReadiness {
    pub addr: IpAddr,
    /// 0: every port.
    pub port: u16,
    pub proto: u8,
    /// A backend takes new flows (state accepts new flows, weight above 0) once agent
    /// reports are overlaid.
    pub healthy: bool,
}

impl MuxReadiness {
    /// The readiness of `desired` (after the agents' overlay), written or not.
    pub fn of(desired: &MuxSpec, attached: bool) -> MuxReadiness {
        MuxReadiness {
            attached,
            vips: desired
                .vips
                .iter()
                .map(|v| VipReadiness {
                    addr: v.addr,
                    port: v.port,
                    proto: v.proto,
                    healthy: v
                        .backends
                        .iter()
                        .any(|b| b.state.accepts_new() && b.weight > 0),
                })
                .collect(),
        }
    }

    /// The VIP addresses worth announcing: attached, with a healthy port.
    pub fn announceable(&self) -> std::collections::BTreeSet<IpAddr> {
        self.vips
            .iter()
            .filter(|v| self.attached && v.healthy)
            .map(|v| v.addr)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_section_becomes_a_spec_and_readiness() {
        let c = tenbin_config::Config::parse(
            r#"
[mux]
interface = "eth0"
seed = 9
source_v6 = "fd00::1:0/112"
[[mux.vip]]
address = "10.0.0.1"
protocol = "udp"
forward = "dsr"
[[mux.vip.backend]]
address = "10.1.0.1"
mac = "02:be:00:00:00:01"
state = "draining"
[[mux.vip]]
address = "10.0.0.2"
protocol = "tcp"
forward = "ipip"
[[mux.vip.backend]]
address = "10.1.0.1"
mac = "02:be:00:00:00:01"
"#,
            "test.toml",
        )
        .unwrap();
        let s = spec(&c.mux.unwrap()).unwrap();
        assert_eq!(
            (s.seed, s.src6.1, s.vips[0].port, s.vips[0].proto),
            (9, 112, 0, 17)
        );
        assert_eq!(s.vips[0].mode, Mode::Dsr);
        assert_eq!(s.vips[0].backends[0].state, ServerState::Draining);
        assert_eq!(s.vips[0].backends[0].mac, [2, 0xbe, 0, 0, 0, 1]);
        let r = MuxReadiness::of(&s, true);
        assert_eq!(
            r.vips.iter().map(|v| v.healthy).collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(
            r.announceable().into_iter().collect::<Vec<_>>(),
            ["10.0.0.2".parse::<IpAddr>().unwrap()]
        );
        assert!(MuxReadiness::of(&s, false).announceable().is_empty());
    }
}
