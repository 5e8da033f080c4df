//! Frame builders and a small checked view of what the Mux emits, for fixture tests, the
//! `explain` command and benchmarks. Builders compute real checksums; the view never panics on
//! input (short frames give `None`).

use std::net::{IpAddr, Ipv6Addr};

use tenbin_core::flow::{FlowAddrs, FlowKey};

mod view;
pub use view::{outer, Outer};

pub const MUX_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// A TCP or UDP frame to build.
#[derive(Clone, Debug)]
pub struct Frame {
    pub key: FlowKey,
    /// TCP flags (ignored for UDP).
    pub tcp_flags: u8,
    pub payload_len: usize,
    pub vlan: Option<u16>,
    /// IPv4: set the don't-fragment bit.
    pub df: bool,
    /// IPv4: add this many 4-byte words of NOP options.
    pub ip_options: u8,
    /// IPv4: set more-fragments.
    pub fragment: bool,
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const RST: u8 = 0x04;

impl Frame {
    pub fn new(key: FlowKey) -> Self {
        Frame {
            key,
            tcp_flags: ACK,
            payload_len: 0,
            vlan: None,
            df: true,
            ip_options: 0,
            fragment: false,
        }
    }

    pub fn flags(mut self, f: u8) -> Self {
        self.tcp_flags = f;
        self
    }

    pub fn payload(mut self, n: usize) -> Self {
        self.payload_len = n;
        self
    }

    pub fn vlan(mut self, id: u16) -> Self {
        self.vlan = Some(id);
        self
    }

    /// The frame's bytes, Ethernet first.
    pub fn build(&self) -> Vec<u8> {
        let k = &self.key;
        let mut l4 = Vec::new();
        l4.extend_from_slice(&k.src_port.to_be_bytes());
        l4.extend_from_slice(&k.dst_port.to_be_bytes());
        if k.proto == 6 {
            l4.extend_from_slice(&1u32.to_be_bytes()); // seq
            l4.extend_from_slice(&0u32.to_be_bytes()); // ack
            l4.push(5 << 4);
            l4.push(self.tcp_flags);
            l4.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
        } else {
            l4.extend_from_slice(&((8 + self.payload_len) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
        }
        l4.extend((0..self.payload_len).map(|i| i as u8));
        let csum_at = if k.proto == 6 { 16 } else { 6 };
        let mut f = eth_header(
            self.vlan,
            if matches!(k.addrs, FlowAddrs::V4 { .. }) {
                0x0800
            } else {
                0x86dd
            },
        );
        match k.addrs {
            FlowAddrs::V4 { src, dst } => {
                let opt = usize::from(self.ip_options) * 4;
                let mut ip = vec![0u8; 20 + opt];
                ip[0] = 0x40 | (5 + self.ip_options);
                ip[2..4].copy_from_slice(&((20 + opt + l4.len()) as u16).to_be_bytes());
                let mut frag = 0u16;
                if self.df {
                    frag |= 0x4000;
                }
                if self.fragment {
                    frag |= 0x2000;
                }
                ip[6..8].copy_from_slice(&frag.to_be_bytes());
                ip[8] = 64;
                ip[9] = k.proto;
                ip[12..16].copy_from_slice(&src.octets());
                ip[16..20].copy_from_slice(&dst.octets());
                for b in &mut ip[20..] {
                    *b = 1; // NOP
                }
                let c = checksum(&[&ip]);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                let pseudo = [
                    &src.octets()[..],
                    &dst.octets()[..],
                    &[0, k.proto],
                    &(l4.len() as u16).to_be_bytes(),
                ]
                .concat();
                let c = checksum(&[&pseudo, &l4]);
                l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            FlowAddrs::V6 { src, dst } => {
                let mut ip = vec![0u8; 40];
                ip[0] = 0x60;
                ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
                ip[6] = k.proto;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&src.octets());
                ip[24..40].copy_from_slice(&dst.octets());
                let c = checksum_v6(src, dst, k.proto, &l4);
                l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
        }
        f.extend_from_slice(&l4);
        f
    }
}

fn eth_header(vlan: Option<u16>, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(18);
    f.extend_from_slice(&MUX_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    if let Some(id) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An ICMP error from a router (`from`) to the VIP about a reply of `flow` (client → VIP),
/// quoting the reply's IP header and first 8 bytes: ICMP type 3/4 or ICMPv6 type 2.
pub fn icmp_error_about(flow: &FlowKey, from: IpAddr) -> Vec<u8> {
    let reply = FlowKey {
        addrs: match flow.addrs {
            FlowAddrs::V4 { src, dst } => FlowAddrs::V4 { src: dst, dst: src },
            FlowAddrs::V6 { src, dst } => FlowAddrs::V6 { src: dst, dst: src },
        },
        src_port: flow.dst_port,
        dst_port: flow.src_port,
        proto: flow.proto,
    };
    let quoted = Frame::new(reply).payload(64).build();
    let l2 = 14;
    let (q, vip_is_v4) = match flow.addrs {
        FlowAddrs::V4 { .. } => (&quoted[l2..l2 + 28], true),
        FlowAddrs::V6 { .. } => (&quoted[l2..l2 + 48], false),
    };
    let mut icmp = if vip_is_v4 {
        vec![3, 4, 0, 0, 0, 0, 0x05, 0x00]
    } else {
        vec![2, 0, 0, 0, 0, 0, 0x05, 0x00]
    };
    icmp.extend_from_slice(q);
    let vip = match flow.addrs {
        FlowAddrs::V4 { dst, .. } => IpAddr::V4(dst),
        FlowAddrs::V6 { dst, .. } => IpAddr::V6(dst),
    };
    let mut f = eth_header(None, if vip_is_v4 { 0x0800 } else { 0x86dd });
    match (from, vip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let c = checksum(&[&icmp]);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let c = checksum_v6(s, d, 58, &icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
            ip.extend_from_slice(&[58, 64]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            f.extend_from_slice(&ip);
        }
        _ => {}
    }
    f.extend_from_slice(&icmp);
    f
}

/// The transport checksum over `data` with the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn checksum_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, data: &[u8]) -> u16 {
    let len = (data.len() as u32).to_be_bytes();
    checksum(&[
        &src.octets(),
        &dst.octets(),
        &len,
        &[0, 0, 0, next_header],
        data,
    ])
}

/// The Internet checksum over the concatenation of `parts` (each of even length but the last).
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for p in parts {
        let mut chunks = p.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn built_v4_frame_has_valid_checksums() {
        let k = FlowKey::v4(
            Ipv4Addr::new(192, 0, 2, 1),
            1000,
            Ipv4Addr::new(10, 0, 0, 1),
            80,
            6,
        );
        let f = Frame::new(k).payload(11).build();
        let o = outer(&f).unwrap();
        assert!(o.header_ok && o.length_ok);
        assert_eq!(o.proto, 6);
        let pseudo = [
            &[192, 0, 2, 1][..],
            &[10, 0, 0, 1],
            &[0, 6],
            &((f.len() - 34) as u16).to_be_bytes(),
        ]
        .concat();
        assert_eq!(checksum(&[&pseudo, &f[34..]]), 0);
    }

    #[test]
    fn outer_refuses_short_frames() {
        let k = FlowKey::v6(
            "2001:db8::1".parse().unwrap(),
            1,
            "2001:db8::2".parse().unwrap(),
            2,
            17,
        );
        let f = Frame::new(k).build();
        for n in 0..54 {
            assert!(outer(&f[..n]).is_none(), "{n}");
        }
        assert!(outer(&f).unwrap().length_ok);
    }
}
