//! Longest-prefix map from client networks to a value (a region, a user count), and the ECS
//! scope: the shortest prefix around a client over which the looked-up value cannot change.

use crate::fasthash::FastMap;
use std::net::IpAddr;
use tenbin_config::dns::Cidr;

/// An address as left-aligned bits plus its family, so v4 and v6 share the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bits {
    pub v6: bool,
    pub bits: u128,
}

impl Bits {
    pub fn of(addr: IpAddr) -> Bits {
        match addr {
            IpAddr::V4(a) => Bits {
                v6: false,
                bits: u128::from(u32::from(a)) << 96,
            },
            IpAddr::V6(a) => Bits {
                v6: true,
                bits: u128::from(a),
            },
        }
    }

    pub fn max_len(self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    /// The address with everything past `len` bits cleared.
    pub fn masked(self, len: u8) -> Bits {
        Bits {
            v6: self.v6,
            bits: self.bits & mask(len),
        }
    }

    /// Number of leading bits `self` and `other` share.
    pub fn common_prefix(self, other: Bits) -> u8 {
        ((self.bits ^ other.bits).leading_zeros() as u8).min(self.max_len())
    }
}

/// Network mask of `len` leading ones.
pub fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

#[derive(Debug, Clone)]
struct Entry<T> {
    net: Bits,
    len: u8,
    value: T,
}

/// CIDR → value, longest prefix first.
#[derive(Debug, Clone)]
pub struct PrefixMap<T> {
    entries: Vec<Entry<T>>,
    index: FastMap<(Bits, u8), usize>,
    /// Prefix lengths present, longest first, per family.
    lens: [Vec<u8>; 2],
}

impl<T> Default for PrefixMap<T> {
    fn default() -> Self {
        PrefixMap {
            entries: Vec::new(),
            index: FastMap::default(),
            lens: [Vec::new(), Vec::new()],
        }
    }
}

impl<T: PartialEq> PrefixMap<T> {
    /// Builds the map; a later duplicate CIDR replaces an earlier one.
    pub fn new(items: impl IntoIterator<Item = (Cidr, T)>) -> Self {
        let mut m = PrefixMap::default();
        for (cidr, value) in items {
            let net = Bits::of(cidr.addr).masked(cidr.len);
            if let Some(&i) = m.index.get(&(net, cidr.len)) {
                m.entries[i].value = value;
                continue;
            }
            m.index.insert((net, cidr.len), m.entries.len());
            m.entries.push(Entry {
                net,
                len: cidr.len,
                value,
            });
            let lens = &mut m.lens[usize::from(net.v6)];
            if !lens.contains(&cidr.len) {
                lens.push(cidr.len);
                lens.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Longest matching prefix: its value and length.
    pub fn lookup(&self, addr: IpAddr) -> Option<(&T, u8)> {
        let b = Bits::of(addr);
        self.lens[usize::from(b.v6)].iter().find_map(|&len| {
            self.index
                .get(&(b.masked(len), len))
                .map(|&i| (&self.entries[i].value, len))
        })
    }

    /// Shortest prefix length around `addr` over which [`lookup`](Self::lookup) gives the same
    /// value: the matched length, lengthened past every more specific entry with another value
    /// that shares the client's network.
    pub fn scope(&self, addr: IpAddr) -> u8 {
        let b = Bits::of(addr);
        let hit = self.lookup(addr);
        let (value, len) = match hit {
            Some((v, l)) => (Some(v), l),
            None => (None, 0),
        };
        let mut scope = len;
        for e in &self.entries {
            if e.net.v6 != b.v6 || e.len <= len || Some(&e.value) == value {
                continue;
            }
            if e.net.masked(len) != b.masked(len) {
                continue;
            }
            let cp = b.common_prefix(e.net);
            if cp < e.len {
                scope = scope.max(cp + 1);
            }
        }
        scope.min(b.max_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PrefixMap<&'static str> {
        PrefixMap::new([
            ("10.0.0.0/8".parse().unwrap(), "eu"),
            ("10.1.0.0/16".parse().unwrap(), "asia"),
            ("10.1.2.0/24".parse().unwrap(), "eu"),
            ("10.2.0.0/16".parse().unwrap(), "eu"),
            ("2001:db8::/32".parse().unwrap(), "us"),
        ])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let m = map();
        assert_eq!(m.lookup(ip("10.1.2.3")), Some((&"eu", 24)));
        assert_eq!(m.lookup(ip("10.1.3.3")), Some((&"asia", 16)));
        assert_eq!(m.lookup(ip("10.9.0.1")), Some((&"eu", 8)));
        assert_eq!(m.lookup(ip("11.0.0.1")), None);
        assert_eq!(m.lookup(ip("2001:db8::1")), Some((&"us", 32)));
        assert_eq!(m.lookup(ip("::ffff:10.1.2.3")), None, "families never mix");
    }

    #[test]
    fn scope_covers_only_networks_with_the_same_answer() {
        let m = map();
        // Inside 10.1/16 but 10.1.2/24 differs: the client at 10.1.3.x differs from it from bit 24 on.
        assert_eq!(m.scope(ip("10.1.3.3")), 24);
        assert_eq!(m.scope(ip("10.1.200.1")), 17);
        // 10.2/16 has the same value as 10/8, so it does not narrow the scope.
        assert_eq!(m.scope(ip("10.3.0.1")), 15);
        assert_eq!(m.scope(ip("10.1.2.3")), 24);
        // Unmatched: must stay clear of every entry.
        assert_eq!(m.scope(ip("11.0.0.1")), 8);
        assert_eq!(m.scope(ip("192.0.2.1")), 1);
        assert_eq!(PrefixMap::<u8>::default().scope(ip("192.0.2.1")), 0);
    }
}
