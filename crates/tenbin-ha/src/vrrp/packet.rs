//! The VRRPv3 advertisement on the wire (RFC 5798 §5): a byte view ([`Packet`]) and its
//! checked meaning ([`Repr`]).
//!
//! ```text
//!  0                   1                   2                   3
//! |Version| Type  |   Virtual Rtr ID  |   Priority    |Count IPvX Addr|
//! |(rsvd) |     Max Adver Int         |          Checksum             |
//! |                       IPvX Address(es)                            |
//! ```
//!
//! The checksum covers the VRRP message and, for IPv6 always, a pseudo-header of the IP
//! addresses. For IPv4 implementations disagree: keepalived (through 2.2.7, Debian's) and the
//! RFC's errata include the IPv4 pseudo-header, other stacks (FRR's
//! `no checksum-with-ipv4-pseudoheader`, older routers) leave it out, and keepalived's
//! `old_unicast_checksum` puts the multicast group in it even for unicast adverts.
//! [`ChecksumMode`] chooses; parsing never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// IPv4 multicast group of VRRP.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP.
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit every advertisement is sent with and must arrive with (§5.1.1.3).
pub const TTL: u8 = 255;
const HEADER_LEN: usize = 8;
const VERSION: u8 = 3;
const TYPE_ADVERTISEMENT: u8 = 1;

/// Which bytes the IPv4 checksum covers (IPv6 always includes its pseudo-header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// With the IPv4 pseudo-header: keepalived ≤ 2.2.7 (Debian's) and RFC 5798 erratum 4024.
    #[default]
    PseudoHeader,
    /// The VRRP message alone, as RFC 5798's IPv4 text is read by older implementations.
    VrrpOnly,
    /// The IPv4 pseudo-header with 224.0.0.18 as destination whatever the real one:
    /// keepalived before 1.3.8 for unicast, and its `old_unicast_checksum` since.
    PseudoHeaderGroup,
}

/// Why bytes are not a valid advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("shorter than the 8-byte header")]
    Truncated,
    #[error("version {0}, not 3")]
    Version(u8),
    #[error("type {0}, not 1 (advertisement)")]
    Type(u8),
    #[error("no addresses")]
    NoAddresses,
    #[error("length does not match the address count")]
    Length,
    #[error("zero advertisement interval")]
    ZeroInterval,
    #[error("bad checksum")]
    Checksum,
}

/// A read-only (or writable, for emit) view over an advertisement's bytes.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buf` after checking it holds at least the fixed header.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    pub fn kind(&self) -> u8 {
        self.b()[0] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.b()[1]
    }

    pub fn priority(&self) -> u8 {
        self.b()[2]
    }

    pub fn addr_count(&self) -> u8 {
        self.b()[3]
    }

    /// Max Adver Int in centiseconds (12 bits).
    pub fn max_adver_int(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]]) & 0x0fff
    }

    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b()[6], self.b()[7]])
    }

    pub fn addresses(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }
}

/// The meaning of an advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds, 1..=4095.
    pub max_adver_int: u16,
    /// All of one family: the family of the IP packet carrying it.
    pub addrs: Vec<IpAddr>,
}

impl Repr {
    /// Checks and reads `packet`, which arrived from `src` to `dst` (their family decides the
    /// address size and the pseudo-header).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Repr, ParseError> {
        if packet.version() != VERSION {
            return Err(ParseError::Version(packet.version()));
        }
        if packet.kind() != TYPE_ADVERTISEMENT {
            return Err(ParseError::Type(packet.kind()));
        }
        let count = usize::from(packet.addr_count());
        if count == 0 {
            return Err(ParseError::NoAddresses);
        }
        let size = if src.is_ipv4() { 4 } else { 16 };
        if packet.addresses().len() != count * size {
            return Err(ParseError::Length);
        }
        if packet.max_adver_int() == 0 {
            return Err(ParseError::ZeroInterval);
        }
        if checksum(packet.b(), src, dst, mode) != 0 {
            return Err(ParseError::Checksum);
        }
        let addrs = packet
            .addresses()
            .chunks_exact(size)
            .map(|c| match <[u8; 4]>::try_from(c) {
                Ok(v4) => IpAddr::from(v4),
                Err(_) => {
                    let mut v6 = [0u8; 16];
                    v6.copy_from_slice(c);
                    IpAddr::from(v6)
                }
            })
            .collect();
        Ok(Repr {
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_adver_int: packet.max_adver_int(),
            addrs,
        })
    }

    /// Bytes on the wire for `src` → `dst`. Addresses of the other family than `src` are left
    /// out (one advertisement carries one family).
    pub fn emit(&self, src: IpAddr, dst: IpAddr, mode: ChecksumMode) -> Vec<u8> {
        let addrs: Vec<&IpAddr> = self
            .addrs
            .iter()
            .filter(|a| a.is_ipv4() == src.is_ipv4())
            .take(255)
            .collect();
        let mut out = Vec::with_capacity(HEADER_LEN + addrs.len() * 16);
        out.push((VERSION << 4) | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(addrs.len() as u8);
        out.extend_from_slice(&(self.max_adver_int & 0x0fff).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        for a in addrs {
            match a {
                IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
            }
        }
        let sum = checksum(&out, src, dst, mode);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        out
    }
}

/// The one's complement checksum of `msg` (with its checksum field as it is) and the
/// pseudo-header the mode asks for; 0 when a received message verifies.
fn checksum(msg: &[u8], src: IpAddr, dst: IpAddr, mode: ChecksumMode) -> u16 {
    let mut sum = Sum::default();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if mode != ChecksumMode::VrrpOnly => {
            let d = if mode == ChecksumMode::PseudoHeaderGroup {
                GROUP_V4
            } else {
                d
            };
            sum.add(&s.octets());
            sum.add(&d.octets());
            sum.add(&[0, PROTOCOL]);
            sum.add(&(msg.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum.add(&s.octets());
            sum.add(&d.octets());
            sum.add(&(msg.len() as u32).to_be_bytes());
            sum.add(&[0, 0, 0, PROTOCOL]);
        }
        _ => {}
    }
    sum.add(msg);
    sum.finish()
}

/// RFC 1071 sum over 16-bit big-endian words; every part added here has even length except
/// possibly the last (the message).
#[derive(Default)]
struct Sum(u32);

impl Sum {
    fn add(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(2);
        for w in &mut words {
            self.0 += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.0 += u32::from(*last) << 8;
        }
    }

    fn finish(mut self) -> u16 {
        while self.0 > 0xffff {
            self.0 = (self.0 & 0xffff) + (self.0 >> 16);
        }
        !(self.0 as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    const DST: IpAddr = IpAddr::V4(GROUP_V4);

    /// An advertisement Debian's keepalived 2.2.7 sent (vrid 51, prio 150, 1 s, VIP
    /// 10.77.0.100, from 10.77.0.1), captured on a raw socket in a netns.
    const KEEPALIVED: [u8; 12] = [
        0x31, 0x33, 0x96, 0x01, 0x00, 0x64, 0x42, 0xd9, 10, 77, 0, 100,
    ];

    #[test]
    fn parses_keepalived_bytes_with_pseudo_header_and_rejects_them_without() {
        let p = Packet::new_checked(&KEEPALIVED[..]).unwrap();
        let r = Repr::parse(&p, SRC, DST, ChecksumMode::PseudoHeader).unwrap();
        assert_eq!(r.vrid, 51);
        assert_eq!(r.priority, 150);
        assert_eq!(r.max_adver_int, 100);
        assert_eq!(r.addrs, vec!["10.77.0.100".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            Repr::parse(&p, SRC, DST, ChecksumMode::VrrpOnly),
            Err(ParseError::Checksum)
        );
        assert_eq!(r.emit(SRC, DST, ChecksumMode::PseudoHeader), KEEPALIVED);
    }

    #[test]
    fn parses_keepalived_old_unicast_checksum_bytes() {
        // keepalived 2.2.7 with `old_unicast_checksum`, 10.77.0.1 → 10.77.0.2 (unicast),
        // priority 200, 10 cs: the pseudo-header names 224.0.0.18, not 10.77.0.2.
        let ka = [
            0x31, 0x33, 0xc8, 0x01, 0x00, 0x0a, 0x11, 0x33, 10, 77, 0, 100,
        ];
        let dst = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
        let p = Packet::new_checked(&ka[..]).unwrap();
        let r = Repr::parse(&p, SRC, dst, ChecksumMode::PseudoHeaderGroup).unwrap();
        assert_eq!((r.priority, r.max_adver_int), (200, 10));
        for other in [ChecksumMode::PseudoHeader, ChecksumMode::VrrpOnly] {
            assert_eq!(Repr::parse(&p, SRC, dst, other), Err(ParseError::Checksum));
        }
        assert_eq!(r.emit(SRC, dst, ChecksumMode::PseudoHeaderGroup), ka);
    }

    #[test]
    fn emit_then_parse_round_trips_in_both_modes_and_families() {
        let v6src: IpAddr = "fe80::1".parse().unwrap();
        let v6dst = IpAddr::V6(GROUP_V6);
        for mode in [
            ChecksumMode::PseudoHeader,
            ChecksumMode::VrrpOnly,
            ChecksumMode::PseudoHeaderGroup,
        ] {
            for (src, dst, addr) in [(SRC, DST, "10.0.0.9"), (v6src, v6dst, "2001:db8::9")] {
                let r = Repr {
                    vrid: 7,
                    priority: 254,
                    max_adver_int: 4095,
                    addrs: vec![addr.parse().unwrap()],
                };
                let bytes = r.emit(src, dst, mode);
                let p = Packet::new_checked(&bytes[..]).unwrap();
                assert_eq!(Repr::parse(&p, src, dst, mode).unwrap(), r);
            }
        }
    }

    #[test]
    fn rejects_each_malformation() {
        let parse = |b: &[u8]| {
            Packet::new_checked(b)
                .and_then(|p| Repr::parse(&p, SRC, DST, ChecksumMode::PseudoHeader))
        };
        assert_eq!(parse(&KEEPALIVED[..7]), Err(ParseError::Truncated));
        assert_eq!(parse(&KEEPALIVED[..11]), Err(ParseError::Length));
        let mut v2 = KEEPALIVED;
        v2[0] = 0x21;
        assert_eq!(parse(&v2), Err(ParseError::Version(2)));
        let mut t = KEEPALIVED;
        t[0] = 0x32;
        assert_eq!(parse(&t), Err(ParseError::Type(2)));
        let mut none = KEEPALIVED;
        none[3] = 0;
        assert_eq!(parse(&none), Err(ParseError::NoAddresses));
        let mut zero = KEEPALIVED;
        zero[4] = 0xf0;
        zero[5] = 0;
        assert_eq!(parse(&zero), Err(ParseError::ZeroInterval));
        let mut bad = KEEPALIVED;
        bad[11] = 101;
        assert_eq!(parse(&bad), Err(ParseError::Checksum));
    }
}
