//! Select stage: draw a datacenter by its share and order its addresses, from a random or a
//! client-subnet key. Pure: the key comes from the caller.

use crate::netmap::Bits;
use std::net::IpAddr;

/// Index whose cumulative share first exceeds `u` in `[0, 1)`; the last positive share absorbs
/// rounding. `shares` must not be empty.
pub fn draw(shares: &[f64], u: f64) -> usize {
    let total: f64 = shares.iter().sum();
    let target = u.clamp(0.0, 1.0) * total;
    let mut acc = 0.0;
    let mut last = 0;
    for (i, s) in shares.iter().enumerate() {
        if *s <= 0.0 {
            continue;
        }
        acc += s;
        last = i;
        if target < acc {
            return i;
        }
    }
    last
}

/// A key in `[0, 1)` from 64 random bits.
pub fn unit(key: u64) -> f64 {
    (key >> 11) as f64 / (1u64 << 53) as f64
}

/// SplitMix64 step: a cheap, well-mixed sequence from one seed.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Stable key of a client's subnet (`len` leading bits).
pub fn subnet_key(client: IpAddr, len: u8) -> u64 {
    let b = Bits::of(client).masked(len);
    mix((b.bits >> 64) as u64 ^ mix(b.bits as u64 ^ u64::from(b.v6)))
}

/// `addrs` shuffled by `key` (Fisher-Yates), at most `max` of them.
pub fn shuffled(addrs: &[IpAddr], max: usize, key: u64) -> Vec<IpAddr> {
    let mut v = addrs.to_vec();
    let mut k = key;
    for i in (1..v.len()).rev() {
        k = mix(k);
        let j = (k % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v.truncate(max);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_follows_cumulative_shares() {
        let s = [0.25, 0.0, 0.75];
        assert_eq!(draw(&s, 0.0), 0);
        assert_eq!(draw(&s, 0.2499), 0);
        assert_eq!(draw(&s, 0.25), 2);
        assert_eq!(draw(&s, 0.999_999), 2);
        assert_eq!(
            draw(&s, 1.0),
            2,
            "upper edge goes to the last positive share"
        );
        assert_eq!(draw(&[1.0, 0.0], 0.9), 0);
    }

    #[test]
    fn draws_over_many_keys_match_shares() {
        let s = [0.2, 0.8];
        let n = 10_000u64;
        let first = (0..n).filter(|i| draw(&s, unit(mix(*i))) == 0).count() as f64;
        assert!((first / n as f64 - 0.2).abs() < 0.02, "{first}");
    }

    #[test]
    fn shuffle_is_a_capped_permutation_and_keyed() {
        let addrs: Vec<IpAddr> = (1..=10)
            .map(|i| IpAddr::from([192, 0, 2, i as u8]))
            .collect();
        let a = shuffled(&addrs, 8, 7);
        assert_eq!(a.len(), 8);
        let mut dedup = a.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 8);
        assert_eq!(a, shuffled(&addrs, 8, 7));
        let orders: std::collections::HashSet<Vec<IpAddr>> =
            (0..20).map(|k| shuffled(&addrs, 10, k)).collect();
        assert!(orders.len() > 15, "different keys give different orders");
    }

    #[test]
    fn subnet_key_ignores_host_bits() {
        let a = subnet_key("10.1.2.3".parse().unwrap(), 24);
        assert_eq!(a, subnet_key("10.1.2.200".parse().unwrap(), 24));
        assert_ne!(a, subnet_key("10.1.3.3".parse().unwrap(), 24));
    }
}
