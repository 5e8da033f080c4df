//! A shared topology for the tests: a few VIPs of each mode and family.
#![allow(dead_code)]

pub mod bpf;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tenbin_core::ServerState;
use tenbin_xdp::abi::Mode;
use tenbin_xdp::control::{BackendSpec, MuxSpec, VipSpec};

pub const SEED: u32 = 0x5eed_1234;

pub fn mac(i: u8) -> [u8; 6] {
    [0x02, 0xbe, 0, 0, 0, i]
}

pub fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, d))
}

pub fn v6(d: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, d))
}

pub fn backends(addrs: &[IpAddr], first_mac: u8) -> Vec<BackendSpec> {
    addrs
        .iter()
        .zip(first_mac..)
        .map(|(a, m)| BackendSpec {
            addr: *a,
            mac: mac(m),
            weight: 1,
            state: ServerState::Active,
        })
        .collect()
}

pub fn vip(addr: &str, port: u16, proto: u8, mode: Mode, backends: Vec<BackendSpec>) -> VipSpec {
    VipSpec {
        addr: addr.parse().unwrap(),
        port,
        proto,
        mode,
        backends,
    }
}

/// VIP 10.0.0.1:80/tcp IPIP, 10.0.0.2:53/udp GRE, [2001:db8:ffff::1]:443/tcp IPIP,
/// [2001:db8:ffff::2]:53/udp GRE, 10.0.0.3:*/tcp DSR, [2001:db8:ffff::3]:*/udp DSR,
/// 10.0.0.9:80/tcp with no backend.
pub fn spec() -> MuxSpec {
    let b4 = backends(&[v4(1), v4(2), v4(3)], 1);
    let b6 = backends(&[v6(1), v6(2), v6(3)], 11);
    MuxSpec {
        seed: SEED,
        mtu: 1500,
        udp_idle: Duration::from_secs(30),
        flow_cap: 0,
        src4: (Ipv4Addr::new(172, 16, 0, 0), 16),
        src6: ("fd00::".parse().unwrap(), 96),
        egress: None,
        vips: vec![
            vip("10.0.0.1", 80, 6, Mode::Ipip, b4.clone()),
            vip("10.0.0.2", 53, 17, Mode::Gre, b4.clone()),
            vip("2001:db8:ffff::1", 443, 6, Mode::Ipip, b6.clone()),
            vip("2001:db8:ffff::2", 53, 17, Mode::Gre, b6.clone()),
            vip("10.0.0.3", 0, 6, Mode::Dsr, b4),
            vip("2001:db8:ffff::3", 0, 17, Mode::Dsr, b6),
            vip("10.0.0.9", 80, 6, Mode::Ipip, Vec::new()),
        ],
    }
}

/// A deterministic stream of pseudo-random numbers (xorshift64*), so tests need no RNG crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
