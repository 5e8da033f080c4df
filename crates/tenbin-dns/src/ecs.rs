//! EDNS Client Subnet (RFC 7871): the checks a query's option must pass, done on the raw bytes
//! because a decoded option no longer shows a wrong address length or stray bits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// EDNS option code of ECS.
pub const OPTION_CODE: u16 = 8;

/// Why an ECS option (or the message around it) is refused with FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("ECS family {0} is neither 1 (IPv4) nor 2 (IPv6)")]
    UnknownFamily(u16),
    #[error("ECS source prefix {0} is longer than the family allows")]
    PrefixTooLong(u8),
    #[error("ECS address has {got} bytes where the prefix needs {want}")]
    AddressLength { got: usize, want: usize },
    #[error("ECS address has bits set beyond the source prefix")]
    HostBits,
    #[error("ECS scope prefix {0} is not zero in a query")]
    ScopeInQuery(u8),
    #[error("ECS option shorter than its fixed fields")]
    Short,
    #[error("more than one ECS option")]
    Duplicate,
    #[error("message ends inside a record")]
    Malformed,
}

/// A validated client subnet from a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// The address with every bit past `source` zero.
    pub addr: IpAddr,
    pub source: u8,
}

/// Parses and checks one option payload (RFC 7871 §6 and §7.1.1).
pub fn parse_option(data: &[u8]) -> Result<ClientSubnet, EcsError> {
    let [f0, f1, source, scope, addr @ ..] = data else {
        return Err(EcsError::Short);
    };
    let family = u16::from_be_bytes([*f0, *f1]);
    let max = match family {
        1 => 32,
        2 => 128,
        f => return Err(EcsError::UnknownFamily(f)),
    };
    if *source > max {
        return Err(EcsError::PrefixTooLong(*source));
    }
    let want = usize::from(source.div_ceil(8));
    if addr.len() != want {
        return Err(EcsError::AddressLength {
            got: addr.len(),
            want,
        });
    }
    if source % 8 != 0 {
        let last = addr[want - 1];
        if last & (0xffu8 >> (source % 8)) != 0 {
            return Err(EcsError::HostBits);
        }
    }
    if *scope != 0 {
        return Err(EcsError::ScopeInQuery(*scope));
    }
    let addr = if family == 1 {
        let mut o = [0u8; 4];
        o[..want].copy_from_slice(addr);
        IpAddr::V4(Ipv4Addr::from(o))
    } else {
        let mut o = [0u8; 16];
        o[..want].copy_from_slice(addr);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Ok(ClientSubnet {
        addr,
        source: *source,
    })
}

fn u16_at(m: &[u8], i: usize) -> Result<u16, EcsError> {
    match m.get(i..i + 2) {
        Some([a, b]) => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(EcsError::Malformed),
    }
}

/// Index just past the (possibly compressed) name starting at `i`.
fn skip_name(m: &[u8], mut i: usize) -> Result<usize, EcsError> {
    for _ in 0..128 {
        let len = *m.get(i).ok_or(EcsError::Malformed)?;
        match len {
            0 => return Ok(i + 1),
            l if l & 0xc0 == 0xc0 => return Ok(i + 2),
            l if l & 0xc0 != 0 => return Err(EcsError::Malformed),
            l => i += 1 + usize::from(l),
        }
    }
    Err(EcsError::Malformed)
}

/// Finds and checks the ECS option of a raw query, if any.
pub fn find(m: &[u8]) -> Result<Option<ClientSubnet>, EcsError> {
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let ns = u16_at(m, 8)?;
    let ar = u16_at(m, 10)?;
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(m, i)? + 4;
    }
    let mut found = None;
    for n in 0..(u32::from(an) + u32::from(ns) + u32::from(ar)) {
        i = skip_name(m, i)?;
        let rtype = u16_at(m, i)?;
        let rdlen = usize::from(u16_at(m, i + 8)?);
        let start = i + 10;
        let rdata = m.get(start..start + rdlen).ok_or(EcsError::Malformed)?;
        if rtype == 41 && n >= u32::from(an) + u32::from(ns) {
            let mut j = 0;
            while j < rdata.len() {
                let code = u16_at(rdata, j)?;
                let len = usize::from(u16_at(rdata, j + 2)?);
                let data = rdata.get(j + 4..j + 4 + len).ok_or(EcsError::Malformed)?;
                if code == OPTION_CODE {
                    if found.is_some() {
                        return Err(EcsError::Duplicate);
                    }
                    found = Some(parse_option(data)?);
                }
                j += 4 + len;
            }
        }
        i = start + rdlen;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    //! Named by RFC 7871 section.
    use super::*;

    #[test]
    fn rfc7871_s6_valid_v4_and_v6_options() {
        let c = parse_option(&[0, 1, 24, 0, 10, 1, 2]).unwrap();
        assert_eq!((c.addr, c.source), ("10.1.2.0".parse().unwrap(), 24));
        let c = parse_option(&[0, 2, 48, 0, 0x20, 1, 0x0d, 0xb8, 0, 1]).unwrap();
        assert_eq!(c.addr, "2001:db8:1::".parse::<IpAddr>().unwrap());
        let c = parse_option(&[0, 1, 0, 0]).unwrap();
        assert_eq!((c.addr, c.source), ("0.0.0.0".parse().unwrap(), 0));
    }

    #[test]
    fn rfc7871_s6_unknown_family_is_formerr() {
        assert_eq!(
            parse_option(&[0, 3, 8, 0, 10]),
            Err(EcsError::UnknownFamily(3))
        );
    }

    #[test]
    fn rfc7871_s6_source_prefix_longer_than_family_is_formerr() {
        assert_eq!(
            parse_option(&[0, 1, 33, 0, 1, 2, 3, 4, 5]),
            Err(EcsError::PrefixTooLong(33))
        );
        assert!(parse_option(&[0, 2, 129, 0]).is_err());
    }

    #[test]
    fn rfc7871_s6_address_must_be_exactly_the_prefix_bytes() {
        assert_eq!(
            parse_option(&[0, 1, 24, 0, 10, 1, 2, 0]),
            Err(EcsError::AddressLength { got: 4, want: 3 })
        );
        assert_eq!(
            parse_option(&[0, 1, 24, 0, 10, 1]),
            Err(EcsError::AddressLength { got: 2, want: 3 })
        );
    }

    #[test]
    fn rfc7871_s6_bits_beyond_the_prefix_must_be_zero() {
        assert_eq!(
            parse_option(&[0, 1, 23, 0, 10, 1, 3]),
            Err(EcsError::HostBits)
        );
        assert!(parse_option(&[0, 1, 23, 0, 10, 1, 2]).is_ok());
    }

    #[test]
    fn rfc7871_s6_scope_in_a_query_must_be_zero() {
        assert_eq!(
            parse_option(&[0, 1, 24, 16, 10, 1, 2]),
            Err(EcsError::ScopeInQuery(16))
        );
    }

    #[test]
    fn finds_the_option_in_a_raw_query() {
        // id, flags, qd=1, an=0, ns=0, ar=1; "a." A IN; OPT with ECS 10.1.2.0/24.
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 11]);
        m.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, 10, 1, 2]);
        let c = find(&m).unwrap().unwrap();
        assert_eq!(c.source, 24);
        assert_eq!(find(&m[..m.len() - 1]), Err(EcsError::Malformed));
        m.truncate(m.len() - 11);
        let last = m.len() - 1;
        m[last] = 0;
        assert_eq!(find(&m), Ok(None));
    }
}
