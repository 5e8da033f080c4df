//! The keyed 5-tuple hash the XDP Mux computes in BPF (`crates/tenbin-xdp/bpf/mux.bpf.c`).
//!
//! Rust and C must agree bit for bit: the control plane uses this to explain and test where a
//! flow goes, the data plane uses it to index Maglev rings (`flow_hash % M`). Every Mux of a
//! pool runs with the same seed, so a flow that ECMP moves to another Mux lands on the same
//! backend.
//!
//! # Layout: ten 32-bit words
//!
//! A [`FlowKey`] is turned into ten `u32` words ([`FlowKey::words`]); an address word is four
//! wire bytes read big-endian (C: `bpf_ntohl`).
//!
//! | word | IPv4                       | IPv6                         |
//! |------|----------------------------|------------------------------|
//! | 0..4 | source address, then 0,0,0 | source address (4 words)     |
//! | 4..8 | dest. address, then 0,0,0  | destination address          |
//! | 8    | `src_port << 16 \| dst_port` (host order values)          ||
//! | 9    | `4 << 8 \| proto`          | `6 << 8 \| proto`            |
//!
//! The family in word 9 keeps `10.0.0.1` apart from `a00:1::`. Protocols without ports (ICMP)
//! use port 0.
//!
//! # Hash
//!
//! A MurmurHash3-style 32-bit mix over the words, seeded with a 32-bit key: for each word `k`,
//! `k *= C1; k = rotl(k, 15); k *= C2; h ^= k; h = rotl(h, 13); h = h * 5 + 0xe654_6b64`;
//! then `h ^= 40` (the byte length) and the `fmix32` finaliser. Ten multiplications and shifts
//! per word are cheap in BPF and need no lookup tables; the finaliser gives full avalanche so
//! `hash % M` is uniform for any table size.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Source and destination addresses of one flow, both of the same family.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FlowAddrs {
    V4 { src: Ipv4Addr, dst: Ipv4Addr },
    V6 { src: Ipv6Addr, dst: Ipv6Addr },
}

/// A transport 5-tuple as the Mux sees it on the way in (client → VIP).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey {
    pub addrs: FlowAddrs,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub proto: u8,
}

/// Number of words in the hashed layout.
pub const FLOW_WORDS: usize = 10;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

impl FlowKey {
    pub fn v4(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16, proto: u8) -> Self {
        FlowKey {
            addrs: FlowAddrs::V4 { src, dst },
            src_port,
            dst_port,
            proto,
        }
    }

    pub fn v6(src: Ipv6Addr, src_port: u16, dst: Ipv6Addr, dst_port: u16, proto: u8) -> Self {
        FlowKey {
            addrs: FlowAddrs::V6 { src, dst },
            src_port,
            dst_port,
            proto,
        }
    }

    /// The ten words hashed, as documented in the module docs.
    pub fn words(&self) -> [u32; FLOW_WORDS] {
        let mut w = [0u32; FLOW_WORDS];
        let family = match self.addrs {
            FlowAddrs::V4 { src, dst } => {
                w[0] = u32::from(src);
                w[4] = u32::from(dst);
                4u32
            }
            FlowAddrs::V6 { src, dst } => {
                for (i, (s, d)) in src
                    .octets()
                    .chunks_exact(4)
                    .zip(dst.octets().chunks_exact(4))
                    .enumerate()
                {
                    w[i] = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
                    w[4 + i] = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                }
                6u32
            }
        };
        w[8] = (u32::from(self.src_port) << 16) | u32::from(self.dst_port);
        w[9] = (family << 8) | u32::from(self.proto);
        w
    }
}

/// The keyed flow hash shared with the BPF Mux. See the module docs for the exact algorithm.
pub fn flow_hash(key: &FlowKey, seed: u32) -> u32 {
    hash_words(&key.words(), seed)
}

/// The word hash under [`flow_hash`], exposed so other fixed-layout keys can reuse it.
pub fn hash_words(words: &[u32], seed: u32) -> u32 {
    let mut h = seed;
    for &word in words {
        let k = word.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    // Byte length; the slice of a u32 array never exceeds u32::MAX bytes in practice.
    h ^= (words.len() as u32).wrapping_mul(4);
    fmix32(h)
}

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k4() -> FlowKey {
        FlowKey::v4(
            Ipv4Addr::new(192, 0, 2, 1),
            40000,
            Ipv4Addr::new(10, 0, 0, 1),
            80,
            6,
        )
    }

    fn k6() -> FlowKey {
        FlowKey::v6(
            "2001:db8::1".parse().unwrap(),
            40000,
            "2001:db8:ffff::1".parse().unwrap(),
            443,
            17,
        )
    }

    #[test]
    fn word_layout_v4() {
        let w = k4().words();
        assert_eq!(w[0], 0xc000_0201);
        assert_eq!(&w[1..4], &[0, 0, 0]);
        assert_eq!(w[4], 0x0a00_0001);
        assert_eq!(w[8], (40000 << 16) | 80);
        assert_eq!(w[9], 0x0406);
    }

    #[test]
    fn word_layout_v6() {
        let w = k6().words();
        assert_eq!(&w[0..4], &[0x2001_0db8, 0, 0, 1]);
        assert_eq!(&w[4..8], &[0x2001_0db8, 0xffff_0000, 0, 1]);
        assert_eq!(w[9], 0x0611);
    }

    /// Golden vectors computed by an independent Python implementation of the documented
    /// algorithm (`crates/tenbin-xdp/tests/flow_golden.py`); the BPF program is checked against
    /// the same numbers in tenbin-xdp's fixture tests.
    #[test]
    fn golden_vectors() {
        assert_eq!(hash_words(&[], 1), GOLDEN_EMPTY_SEED1);
        assert_eq!(flow_hash(&k4(), 0), GOLDEN_V4_SEED0);
        assert_eq!(flow_hash(&k4(), 0x5eed_1234), GOLDEN_V4_SEED);
        assert_eq!(flow_hash(&k6(), 0x5eed_1234), GOLDEN_V6_SEED);
    }

    const GOLDEN_EMPTY_SEED1: u32 = 0x514e_28b7;
    const GOLDEN_V4_SEED0: u32 = 0xf47c_c93c;
    const GOLDEN_V4_SEED: u32 = 0x98e4_45cd;
    const GOLDEN_V6_SEED: u32 = 0x0e5d_3ec0;

    #[test]
    fn family_is_part_of_the_key() {
        // 10.0.0.1 and a00:1:: share their first word; the family word keeps them apart.
        let v4 = FlowKey::v4(
            Ipv4Addr::new(10, 0, 0, 1),
            1,
            Ipv4Addr::new(10, 0, 0, 2),
            2,
            6,
        );
        let v6 = FlowKey::v6(
            "a00:1::".parse().unwrap(),
            1,
            "a00:2::".parse().unwrap(),
            2,
            6,
        );
        assert_eq!(v4.words()[..8], v6.words()[..8]);
        assert_ne!(flow_hash(&v4, 7), flow_hash(&v6, 7));
    }

    #[test]
    fn every_field_and_the_seed_change_the_hash() {
        let base = k4();
        let h = flow_hash(&base, 1);
        assert_ne!(h, flow_hash(&base, 2));
        let mut k = base;
        k.src_port += 1;
        assert_ne!(h, flow_hash(&k, 1));
        let mut k = base;
        k.dst_port += 1;
        assert_ne!(h, flow_hash(&k, 1));
        let mut k = base;
        k.proto = 17;
        assert_ne!(h, flow_hash(&k, 1));
        let mut k = base;
        k.addrs = FlowAddrs::V4 {
            src: Ipv4Addr::new(192, 0, 2, 2),
            dst: Ipv4Addr::new(10, 0, 0, 1),
        };
        assert_ne!(h, flow_hash(&k, 1));
    }

    #[test]
    fn modulo_spreads_evenly() {
        // 20 000 flows from one client over 7 buckets: each bucket within 15% of the mean.
        let mut buckets = [0u32; 7];
        for port in 0..20_000u16 {
            let k = FlowKey::v4(
                Ipv4Addr::new(198, 51, 100, 7),
                port,
                Ipv4Addr::new(10, 0, 0, 1),
                80,
                6,
            );
            buckets[(flow_hash(&k, 42) % 7) as usize] += 1;
        }
        let mean = 20_000 / 7;
        for b in buckets {
            assert!(b.abs_diff(mean) < mean * 15 / 100, "{buckets:?}");
        }
    }
}
