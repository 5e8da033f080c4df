//! Source-address hashing keys, stable across instances and restarts.

use std::net::IpAddr;

/// Hashes the first `v4_prefix` / `v6_prefix` bits of `ip` (clients behind one proxy farm
/// share a prefix, so they stay together). FNV-1a: tiny, stable everywhere, and good enough
/// because placement (Maglev) mixes the key again.
pub fn source_key(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> u64 {
    let (bytes, prefix): (Vec<u8>, u8) = match ip {
        IpAddr::V4(v4) => (v4.octets().to_vec(), v4_prefix.min(32)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (v4.octets().to_vec(), v4_prefix.min(32)),
            None => (v6.octets().to_vec(), v6_prefix.min(128)),
        },
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut left = u32::from(prefix);
    for &b in &bytes {
        let keep = left.min(8);
        left -= keep;
        let masked = if keep == 0 {
            0
        } else {
            b & (0xffu8 << (8 - keep))
        };
        h ^= u64::from(masked);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= u64::from(prefix);
    h.wrapping_mul(0x0000_0100_0000_01b3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_groups_neighbours_and_separates_others() {
        assert_eq!(
            source_key(ip("192.0.2.1"), 24, 128),
            source_key(ip("192.0.2.200"), 24, 128)
        );
        assert_ne!(
            source_key(ip("192.0.2.1"), 32, 128),
            source_key(ip("192.0.2.2"), 32, 128)
        );
        assert_ne!(
            source_key(ip("192.0.2.1"), 24, 128),
            source_key(ip("192.0.3.1"), 24, 128)
        );
        assert_eq!(
            source_key(ip("2001:db8::1"), 32, 64),
            source_key(ip("2001:db8::ffff"), 32, 64)
        );
    }

    #[test]
    fn v4_mapped_clients_hash_like_v4() {
        assert_eq!(
            source_key(ip("::ffff:192.0.2.7"), 32, 128),
            source_key(ip("192.0.2.7"), 32, 128)
        );
    }
}
