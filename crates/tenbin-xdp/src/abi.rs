//! The Rust twins of the structs in `bpf/common.h`, byte for byte (`#[repr(C)]`, host-order
//! values), plus the names of the counters. Sizes are checked by tests against the C layout.

use std::net::IpAddr;

use tenbin_core::flow::{FlowAddrs, FlowKey, FLOW_WORDS};

/// Maglev ring size compiled into the BPF program (a prime).
pub const RING_SIZE: u32 = 65_537;
/// Capacity of the VIP id space (rings, per-VIP counters).
pub const MAX_VIPS: u32 = 512;
/// Capacity of the backend id space.
pub const MAX_BACKENDS: u32 = 4_096;
/// XDP_REDIRECT.
pub const XDP_REDIRECT: u32 = 4;
/// Ring slot value meaning "no backend".
pub const NO_BACKEND: u32 = u32::MAX;

/// Forwarding mode of a VIP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum Mode {
    /// IP-in-IP (protocol 4 or 41, by the inner family).
    Ipip = 1,
    /// GRE without options: 4 bytes more than IPIP.
    Gre = 2,
    /// L2 direct server return: only the destination MAC changes.
    Dsr = 3,
}

/// The flow-table key: the ten words of [`FlowKey::words`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[repr(C)]
pub struct FlowKeyAbi {
    pub words: [u32; FLOW_WORDS],
}

impl From<&FlowKey> for FlowKeyAbi {
    fn from(k: &FlowKey) -> Self {
        FlowKeyAbi { words: k.words() }
    }
}

/// Value of the flow table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct FlowVal {
    pub backend: u32,
    pub _pad: u32,
    pub seen_ns: u64,
}

/// Key of the `vips` map: (address, port or 0 for all ports, protocol).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
#[repr(C)]
pub struct VipKey {
    pub addr: [u32; 4],
    pub port: u16,
    pub proto: u8,
    pub family: u8,
}

impl VipKey {
    pub fn new(addr: IpAddr, port: u16, proto: u8) -> Self {
        let (addr, family) = addr_words(addr);
        VipKey {
            addr,
            port,
            proto,
            family,
        }
    }

    /// The exact key a flow's destination would look up.
    pub fn of_flow(key: &FlowKey) -> Self {
        let dst = match key.addrs {
            FlowAddrs::V4 { dst, .. } => IpAddr::V4(dst),
            FlowAddrs::V6 { dst, .. } => IpAddr::V6(dst),
        };
        VipKey::new(dst, key.dst_port, key.proto)
    }
}

/// Value of the `vips` map.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct VipInfo {
    pub vip_id: u32,
    pub mode: u8,
    pub flags: u8,
    pub _pad: u16,
}

/// Element of the `backends` array (family 0: unused slot).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct BackendRec {
    pub addr: [u32; 4],
    pub family: u8,
    pub flags: u8,
    pub mac: [u8; 6],
}

impl BackendRec {
    pub fn new(addr: IpAddr, mac: [u8; 6]) -> Self {
        let (addr, family) = addr_words(addr);
        BackendRec {
            addr,
            family,
            flags: 0,
            mac,
        }
    }
}

/// The single element of the `config` array.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct MuxConfigAbi {
    pub seed: u32,
    pub mtu: u32,
    pub udp_idle_ns: u64,
    pub flow_cap: u64,
    pub src4: u32,
    pub src4_mask: u32,
    pub src6: [u32; 4],
    pub src6_mask: u32,
    /// Two arms: forwarded frames are redirected to the `tx_port` device map.
    pub egress: u32,
    pub egress_mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Per-VIP and per-backend traffic counters (summed over CPUs when read).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.new_flows += o.new_flows;
    }
}

/// Key of the host agent's `locals` map.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct LocalKey {
    pub addr: [u32; 4],
    pub family: u32,
}

impl LocalKey {
    pub fn new(addr: IpAddr) -> Self {
        let (addr, family) = addr_words(addr);
        LocalKey {
            addr,
            family: u32::from(family),
        }
    }
}

/// Names of the Mux's `stats` counters, in index order (`enum stat` in common.h).
pub const STAT_NAMES: &[&str] = &[
    "rx",
    "tx",
    "pass_not_ip",
    "pass_not_vip",
    "pass_fragment",
    "pass_other_proto",
    "pass_icmp",
    "drop_malformed",
    "drop_no_ring",
    "drop_no_backend",
    "drop_adjust",
    "drop_too_big_nodf",
    "icmp_too_big",
    "lru_hit",
    "lru_miss_syn",
    "lru_miss_other",
    "flow_cap",
    "icmp_err_routed",
    "decap",
    "redirect",
];

/// Index of a named counter in [`STAT_NAMES`].
pub fn stat_index(name: &str) -> Option<usize> {
    STAT_NAMES.iter().position(|n| *n == name)
}

/// The address back from host-order words and a family (4 or 6).
pub fn key_addr(words: [u32; 4], family: u8) -> IpAddr {
    if family == 4 {
        IpAddr::from(words[0].to_be_bytes())
    } else {
        let mut o = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        IpAddr::from(o)
    }
}

/// Host-order words of an address, as the BPF side stores them, and its family (4 or 6).
pub fn addr_words(addr: IpAddr) -> ([u32; 4], u8) {
    match addr {
        IpAddr::V4(a) => ([u32::from(a), 0, 0, 0], 4),
        IpAddr::V6(a) => {
            let o = a.octets();
            let mut w = [0u32; 4];
            for (i, c) in o.chunks_exact(4).enumerate() {
                w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            }
            (w, 6)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_c_structs() {
        // The C sizes follow from common.h's field lists (checked against BTF in the loader
        // tests, which fail to create maps on any mismatch).
        assert_eq!(size_of::<FlowKeyAbi>(), 40);
        assert_eq!(size_of::<FlowVal>(), 16);
        assert_eq!(size_of::<VipKey>(), 20);
        assert_eq!(size_of::<VipInfo>(), 8);
        assert_eq!(size_of::<BackendRec>(), 24);
        assert_eq!(size_of::<MuxConfigAbi>(), 64);
        assert_eq!(size_of::<Counters>(), 24);
        assert_eq!(size_of::<LocalKey>(), 20);
    }

    #[test]
    fn v6_words_are_big_endian_groups() {
        let (w, f) = addr_words("2001:db8::a:b".parse().unwrap());
        assert_eq!(f, 6);
        assert_eq!(w, [0x2001_0db8, 0, 0, 0x000a_000b]);
    }

    #[test]
    fn stat_names_cover_the_enum() {
        assert_eq!(STAT_NAMES.len(), 20);
        assert_eq!(stat_index("lru_hit"), Some(13));
    }
}
