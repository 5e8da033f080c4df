//! UPDATE messages (RFC 4271 §4.3, §5, §6.3) with MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760),
//! 4-octet AS paths (RFC 6793), communities (RFC 1997) and large communities (RFC 8092).
//!
//! [`Update::parse`] checks everything §6.3 asks for and names the subcode of the first
//! problem; attributes it does not know are kept if optional and refused if well-known.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::codec::{Context, Reader, AFI_IPV4, AFI_IPV6, AS_TRANS, SAFI_UNICAST};
use super::error::{code, update as sub, Notification};

const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const PARTIAL: u8 = 0x20;
const EXTENDED: u8 = 0x10;

/// Path attribute type codes.
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH: u8 = 14;
    pub const MP_UNREACH: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Origin {
    #[default]
    Igp,
    Egp,
    Incomplete,
}

/// An AS_PATH segment: 1 AS_SET, 2 AS_SEQUENCE, 3/4 confederation sequence/set (RFC 5065).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub kind: u8,
    pub asns: Vec<u32>,
}

pub const AS_SEQUENCE: u8 = 2;

/// MP_REACH_NLRI. `nlri` is parsed for IPv4/IPv6 unicast only; other families are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub afi: u16,
    pub safi: u8,
    /// Raw next hop: 4 bytes (IPv4), 16 or 32 (IPv6 global [+ link-local]).
    pub next_hop: Vec<u8>,
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub afi: u16,
    pub safi: u8,
    pub withdrawn: Vec<IpNet>,
}

/// An attribute this speaker does not interpret (optional ones only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute {
    pub flags: u8,
    pub kind: u8,
    pub value: Vec<u8>,
}

/// Path attributes by meaning. Empty community lists are not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub origin: Option<Origin>,
    pub as_path: Option<Vec<Segment>>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub other: Vec<RawAttribute>,
}

/// An UPDATE: IPv4 withdrawals and NLRI in the classic fields, other families in MP_*.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    pub attrs: Attributes,
    pub nlri: Vec<Ipv4Net>,
}

fn err(subcode: u8, data: &[u8]) -> Notification {
    Notification::with_data(code::UPDATE, subcode, data)
}

impl Update {
    /// Whether this UPDATE announces anything (classic or MP).
    pub fn announces(&self) -> bool {
        !self.nlri.is_empty()
            || self
                .attrs
                .mp_reach
                .as_ref()
                .is_some_and(|m| !m.nlri.is_empty())
    }

    /// Checks an UPDATE body (§6.3).
    pub fn parse(body: &[u8], ctx: Context) -> Result<Update, Notification> {
        let list = || err(sub::MALFORMED_ATTRIBUTE_LIST, &[]);
        let mut r = Reader::new(body);
        let wlen = r.u16().ok_or_else(list)?;
        let wbytes = r.take(usize::from(wlen)).ok_or_else(list)?;
        let alen = r.u16().ok_or_else(list)?;
        let abytes = r.take(usize::from(alen)).ok_or_else(list)?;
        let nbytes = r.rest();
        let net = |b| prefixes(b, 32).map_err(|()| err(sub::INVALID_NETWORK_FIELD, &[]));
        let withdrawn = v4(net(wbytes)?);
        let nlri = v4(net(nbytes)?);
        let attrs = Attributes::parse(abytes, ctx)?;
        let u = Update {
            withdrawn,
            attrs,
            nlri,
        };
        if u.announces() {
            let a = &u.attrs;
            let missing = |t: u8| err(sub::MISSING_WELL_KNOWN, &[t]);
            if a.origin.is_none() {
                return Err(missing(attr::ORIGIN));
            }
            if a.as_path.is_none() {
                return Err(missing(attr::AS_PATH));
            }
            if !u.nlri.is_empty() && a.next_hop.is_none() {
                return Err(missing(attr::NEXT_HOP));
            }
        }
        Ok(u)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>, ctx: Context) {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        for p in &self.withdrawn {
            push_prefix(out, IpNet::V4(*p));
        }
        let wlen = out.len() - start - 2;
        out[start..start + 2].copy_from_slice(&len16(wlen));
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.attrs.emit(out, ctx);
        let alen = out.len() - at - 2;
        out[at..at + 2].copy_from_slice(&len16(alen));
        for p in &self.nlri {
            push_prefix(out, IpNet::V4(*p));
        }
    }
}

fn len16(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes()
}

fn v4(nets: Vec<IpNet>) -> Vec<Ipv4Net> {
    nets.into_iter()
        .filter_map(|n| match n {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        })
        .collect()
}

/// Prefixes in the (length, bytes) encoding, at most `max` bits each.
fn prefixes(mut b: &[u8], max: u8) -> Result<Vec<IpNet>, ()> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = b.split_first() {
        if len > max {
            return Err(());
        }
        let n = usize::from(len).div_ceil(8);
        if rest.len() < n {
            return Err(());
        }
        let mut bytes = [0u8; 16];
        bytes[..n].copy_from_slice(&rest[..n]);
        let net = if max == 32 {
            let a = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            IpNet::V4(Ipv4Net::new(a, len).map_err(|_| ())?.trunc())
        } else {
            IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(bytes), len)
                    .map_err(|_| ())?
                    .trunc(),
            )
        };
        out.push(net);
        b = &rest[n..];
    }
    Ok(out)
}

fn push_prefix(out: &mut Vec<u8>, p: IpNet) {
    let len = p.prefix_len();
    out.push(len);
    let n = usize::from(len).div_ceil(8);
    match p.addr() {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n]),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n]),
    }
}

/// Flags a known attribute must carry: (optional, transitive).
fn expected_flags(kind: u8) -> Option<(bool, bool)> {
    Some(match kind {
        attr::ORIGIN
        | attr::AS_PATH
        | attr::NEXT_HOP
        | attr::LOCAL_PREF
        | attr::ATOMIC_AGGREGATE => (false, true),
        attr::MED | attr::MP_REACH | attr::MP_UNREACH => (true, false),
        attr::AGGREGATOR
        | attr::COMMUNITIES
        | attr::AS4_PATH
        | attr::AS4_AGGREGATOR
        | attr::LARGE_COMMUNITIES => (true, true),
        _ => return None,
    })
}

impl Attributes {
    fn parse(b: &[u8], ctx: Context) -> Result<Attributes, Notification> {
        let mut a = Attributes::default();
        let mut seen = [false; 256];
        let mut r = Reader::new(b);
        while !r.is_empty() {
            let whole = r.clone().rest();
            let list = || err(sub::MALFORMED_ATTRIBUTE_LIST, &[]);
            let flags = r.u8().ok_or_else(list)?;
            let kind = r.u8().ok_or_else(list)?;
            let len = if flags & EXTENDED != 0 {
                r.u16().map(usize::from)
            } else {
                r.u8().map(usize::from)
            };
            let hdr = if flags & EXTENDED != 0 { 4 } else { 3 };
            // An attribute running past the list makes the list itself unreadable (§6.3).
            let len = len.ok_or_else(list)?;
            let value = r.take(len).ok_or_else(list)?;
            let data = &whole[..hdr + len];
            if std::mem::replace(&mut seen[usize::from(kind)], true) {
                return Err(list());
            }
            let optional = flags & OPTIONAL != 0;
            let transitive = flags & TRANSITIVE != 0;
            match expected_flags(kind) {
                Some((o, t)) => {
                    let partial_ok = o && t || flags & PARTIAL == 0;
                    if (o, t) != (optional, transitive) || !partial_ok {
                        return Err(err(sub::ATTRIBUTE_FLAGS, data));
                    }
                }
                None if !optional => return Err(err(sub::UNRECOGNIZED_WELL_KNOWN, data)),
                None => {
                    a.other.push(RawAttribute {
                        flags: flags & !EXTENDED,
                        kind,
                        value: value.to_vec(),
                    });
                    continue;
                }
            }
            a.parse_known(kind, value, data, ctx)?;
        }
        Ok(a)
    }

    fn parse_known(
        &mut self,
        kind: u8,
        v: &[u8],
        data: &[u8],
        ctx: Context,
    ) -> Result<(), Notification> {
        let length = || err(sub::ATTRIBUTE_LENGTH, data);
        let optional = || err(sub::OPTIONAL_ATTRIBUTE, data);
        let fixed = |n: usize| if v.len() == n { Ok(()) } else { Err(length()) };
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        match kind {
            attr::ORIGIN => {
                fixed(1)?;
                self.origin = Some(match v[0] {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => return Err(err(sub::INVALID_ORIGIN, data)),
                });
            }
            attr::AS_PATH => {
                let width = if ctx.four_octet_as { 4 } else { 2 };
                let path = as_path(v, width).ok_or_else(|| err(sub::MALFORMED_AS_PATH, data))?;
                self.as_path = Some(path);
            }
            attr::NEXT_HOP => {
                fixed(4)?;
                let nh = Ipv4Addr::new(v[0], v[1], v[2], v[3]);
                if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() {
                    return Err(err(sub::INVALID_NEXT_HOP, data));
                }
                self.next_hop = Some(nh);
            }
            attr::MED => {
                fixed(4)?;
                self.med = Some(be32(v));
            }
            attr::LOCAL_PREF => {
                fixed(4)?;
                self.local_pref = Some(be32(v));
            }
            attr::ATOMIC_AGGREGATE => {
                fixed(0)?;
                self.atomic_aggregate = true;
            }
            attr::AGGREGATOR => {
                let w = if ctx.four_octet_as { 4 } else { 2 };
                fixed(w + 4)?;
                let asn = if w == 4 {
                    be32(v)
                } else {
                    u32::from(u16::from_be_bytes([v[0], v[1]]))
                };
                self.aggregator = Some((asn, Ipv4Addr::new(v[w], v[w + 1], v[w + 2], v[w + 3])));
            }
            attr::COMMUNITIES => {
                if !v.len().is_multiple_of(4) {
                    return Err(optional());
                }
                self.communities = v.chunks_exact(4).map(be32).collect();
            }
            attr::LARGE_COMMUNITIES => {
                if !v.len().is_multiple_of(12) {
                    return Err(optional());
                }
                self.large_communities = v
                    .chunks_exact(12)
                    .map(|c| [be32(&c[0..4]), be32(&c[4..8]), be32(&c[8..12])])
                    .collect();
            }
            attr::MP_REACH => self.mp_reach = Some(mp_reach(v).ok_or_else(optional)?),
            attr::MP_UNREACH => self.mp_unreach = Some(mp_unreach(v).ok_or_else(optional)?),
            // RFC 6793 §6: a malformed AS4_PATH / AS4_AGGREGATOR is ignored, not fatal; we
            // never use them (announce only), so they are kept raw.
            _ => self.other.push(RawAttribute {
                flags: data[0] & !EXTENDED,
                kind,
                value: v.to_vec(),
            }),
        }
        Ok(())
    }

    fn emit(&self, out: &mut Vec<u8>, ctx: Context) {
        let wk = TRANSITIVE;
        let ot = OPTIONAL | TRANSITIVE;
        if let Some(o) = self.origin {
            let v = match o {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            };
            push_attr(out, wk, attr::ORIGIN, &[v]);
        }
        if let Some(path) = &self.as_path {
            let wide = ctx.four_octet_as;
            push_attr(out, wk, attr::AS_PATH, &emit_path(path, wide));
            // A 2-octet peer sees AS_TRANS; the real path rides in AS4_PATH (RFC 6793 §4.2.2).
            if !wide && path.iter().flat_map(|s| &s.asns).any(|&a| a > 0xffff) {
                push_attr(out, ot, attr::AS4_PATH, &emit_path(path, true));
            }
        }
        if let Some(nh) = self.next_hop {
            push_attr(out, wk, attr::NEXT_HOP, &nh.octets());
        }
        if let Some(m) = self.med {
            push_attr(out, OPTIONAL, attr::MED, &m.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            push_attr(out, wk, attr::LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            push_attr(out, wk, attr::ATOMIC_AGGREGATE, &[]);
        }
        if let Some((asn, id)) = self.aggregator {
            let mut v = if ctx.four_octet_as {
                asn.to_be_bytes().to_vec()
            } else {
                u16::try_from(asn)
                    .unwrap_or(AS_TRANS)
                    .to_be_bytes()
                    .to_vec()
            };
            v.extend_from_slice(&id.octets());
            push_attr(out, ot, attr::AGGREGATOR, &v);
        }
        if !self.communities.is_empty() {
            let v: Vec<u8> = self
                .communities
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect();
            push_attr(out, ot, attr::COMMUNITIES, &v);
        }
        if let Some(m) = &self.mp_reach {
            let mut v = m.afi.to_be_bytes().to_vec();
            v.push(m.safi);
            v.push(u8::try_from(m.next_hop.len()).unwrap_or(0));
            v.extend_from_slice(&m.next_hop);
            v.push(0);
            for p in &m.nlri {
                push_prefix(&mut v, *p);
            }
            push_attr(out, OPTIONAL, attr::MP_REACH, &v);
        }
        if let Some(m) = &self.mp_unreach {
            let mut v = m.afi.to_be_bytes().to_vec();
            v.push(m.safi);
            for p in &m.withdrawn {
                push_prefix(&mut v, *p);
            }
            push_attr(out, OPTIONAL, attr::MP_UNREACH, &v);
        }
        if !self.large_communities.is_empty() {
            let v: Vec<u8> = self
                .large_communities
                .iter()
                .flat_map(|c| c.iter().flat_map(|x| x.to_be_bytes()))
                .collect();
            push_attr(out, ot, attr::LARGE_COMMUNITIES, &v);
        }
        for o in &self.other {
            push_attr(out, o.flags & !EXTENDED, o.kind, &o.value);
        }
    }
}

fn push_attr(out: &mut Vec<u8>, flags: u8, kind: u8, v: &[u8]) {
    match u8::try_from(v.len()) {
        Ok(n) => out.extend_from_slice(&[flags, kind, n]),
        Err(_) => {
            out.extend_from_slice(&[flags | EXTENDED, kind]);
            out.extend_from_slice(&len16(v.len()));
        }
    }
    out.extend_from_slice(v);
}

fn as_path(mut v: &[u8], width: usize) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    while let Some((&kind, rest)) = v.split_first() {
        let (&count, rest) = rest.split_first()?;
        if !(1..=4).contains(&kind) || count == 0 {
            return None;
        }
        let n = usize::from(count) * width;
        let body = rest.get(..n)?;
        let asns = body
            .chunks_exact(width)
            .map(|c| match c {
                [a, b] => u32::from(u16::from_be_bytes([*a, *b])),
                _ => u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            })
            .collect();
        out.push(Segment { kind, asns });
        v = &rest[n..];
    }
    Some(out)
}

fn emit_path(path: &[Segment], wide: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for s in path {
        // A segment holds at most 255 ASes; longer ones are split.
        for chunk in s.asns.chunks(255) {
            v.push(s.kind);
            v.push(u8::try_from(chunk.len()).unwrap_or(0));
            for &a in chunk {
                if wide {
                    v.extend_from_slice(&a.to_be_bytes());
                } else {
                    v.extend_from_slice(&u16::try_from(a).unwrap_or(AS_TRANS).to_be_bytes());
                }
            }
        }
    }
    v
}

fn family_bits(afi: u16, safi: u8) -> Option<u8> {
    match (afi, safi) {
        (AFI_IPV4, SAFI_UNICAST) => Some(32),
        (AFI_IPV6, SAFI_UNICAST) => Some(128),
        _ => None,
    }
}

fn mp_reach(v: &[u8]) -> Option<MpReach> {
    let mut r = Reader::new(v);
    let afi = r.u16()?;
    let safi = r.u8()?;
    let nh_len = r.u8()?;
    let next_hop = r.take(usize::from(nh_len))?.to_vec();
    let _reserved = r.u8()?;
    let nlri = match family_bits(afi, safi) {
        Some(bits) => {
            let ok = if bits == 32 {
                nh_len == 4
            } else {
                nh_len == 16 || nh_len == 32
            };
            if !ok {
                return None;
            }
            prefixes(r.rest(), bits).ok()?
        }
        None => Vec::new(),
    };
    Some(MpReach {
        afi,
        safi,
        next_hop,
        nlri,
    })
}

fn mp_unreach(v: &[u8]) -> Option<MpUnreach> {
    let mut r = Reader::new(v);
    let afi = r.u16()?;
    let safi = r.u8()?;
    let withdrawn = match family_bits(afi, safi) {
        Some(bits) => prefixes(r.rest(), bits).ok()?,
        None => Vec::new(),
    };
    Some(MpUnreach {
        afi,
        safi,
        withdrawn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::Message;

    fn round_trip(u: Update, ctx: Context) {
        let bytes = Message::Update(Box::new(u.clone())).emit(ctx);
        let (m, n) = Message::decode(&bytes, ctx).unwrap().unwrap();
        assert_eq!(n, bytes.len());
        assert_eq!(m, Message::Update(Box::new(u)));
    }

    #[test]
    fn every_attribute_round_trips_in_both_as_widths() {
        for four_octet_as in [true, false] {
            let u = Update {
                withdrawn: vec!["192.0.2.0/24".parse().unwrap()],
                attrs: Attributes {
                    origin: Some(Origin::Incomplete),
                    as_path: Some(vec![
                        Segment {
                            kind: AS_SEQUENCE,
                            asns: vec![65001, 65002],
                        },
                        Segment {
                            kind: 1,
                            asns: vec![7],
                        },
                    ]),
                    next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
                    med: Some(9),
                    local_pref: Some(200),
                    atomic_aggregate: true,
                    aggregator: Some((65001, Ipv4Addr::new(10, 0, 0, 9))),
                    communities: vec![1, 2],
                    large_communities: vec![[1, 2, 3]],
                    mp_reach: Some(MpReach {
                        afi: AFI_IPV6,
                        safi: SAFI_UNICAST,
                        next_hop: vec![0xfd; 32],
                        nlri: vec!["2001:db8::/32".parse().unwrap()],
                    }),
                    mp_unreach: Some(MpUnreach {
                        afi: AFI_IPV6,
                        safi: SAFI_UNICAST,
                        withdrawn: vec!["2001:db8:1::/48".parse().unwrap()],
                    }),
                    other: vec![RawAttribute {
                        flags: OPTIONAL | TRANSITIVE,
                        kind: 99,
                        value: vec![0; 300],
                    }],
                },
                nlri: vec![
                    "198.51.100.0/24".parse().unwrap(),
                    "0.0.0.0/0".parse().unwrap(),
                ],
            };
            round_trip(u, Context { four_octet_as });
        }
    }

    #[test]
    fn host_bits_are_cleared() {
        let p = prefixes(&[24, 192, 0, 2], 32).unwrap();
        assert_eq!(p, vec!["192.0.2.0/24".parse::<IpNet>().unwrap()]);
    }
}
