//! PROXY protocol headers (HAProxy's spec, versions 1 and 2) that tell a server who the client
//! really was when tenbin terminates the connection.
//!
//! [`Header`] is the meaning; [`Header::encode_v1`] / [`Header::encode_v2`] write it and
//! [`Header::parse`] reads either version back (backends in tests, and a future listener that
//! sits behind another balancer). The parser never panics: short input is
//! [`ParseError::Incomplete`], anything else malformed is a specific error. Byte-vector tests
//! live in `tests/l4_proxy_protocol.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte signature that opens every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest v1 line, CRLF included (spec section 2.1).
const V1_MAX: usize = 107;

/// Which header version a frontend sends to its servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The transport the proxied connection uses (v2 carries it; v1 knows only TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// What a PROXY header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A proxied connection from `source` (the client) to `destination` (the address the
    /// client connected to on the proxy).
    Proxy {
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// The proxy's own connection (health checks) or an unknown origin: use the real peer.
    Local,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("PROXY header incomplete: need more bytes")]
    Incomplete,
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("malformed PROXY v1 line")]
    BadV1,
    #[error("unsupported PROXY v2 version/command byte {0:#04x}")]
    BadV2Command(u8),
    #[error("unsupported PROXY v2 family/protocol byte {0:#04x}")]
    BadV2Family(u8),
    #[error("PROXY v2 address block too short for its family")]
    ShortV2Addresses,
}

impl Header {
    /// A TCP connection header; mixed families are expressed as IPv6 (v4-mapped).
    pub fn tcp(source: SocketAddr, destination: SocketAddr) -> Self {
        let (source, destination) = same_family(source, destination);
        Header::Proxy {
            transport: Transport::Tcp,
            source,
            destination,
        }
    }

    pub fn encode(&self, version: Version) -> Vec<u8> {
        match version {
            Version::V1 => self.encode_v1(),
            Version::V2 => self.encode_v2(),
        }
    }

    /// The human-readable v1 line, e.g. `PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n`.
    /// v1 cannot express UDP; such a header is sent as `UNKNOWN`.
    pub fn encode_v1(&self) -> Vec<u8> {
        let line = match *self {
            Header::Proxy {
                transport: Transport::Tcp,
                source,
                destination,
            } => {
                let fam = if source.is_ipv4() { "TCP4" } else { "TCP6" };
                format!(
                    "PROXY {fam} {} {} {} {}\r\n",
                    source.ip(),
                    destination.ip(),
                    source.port(),
                    destination.port()
                )
            }
            _ => "PROXY UNKNOWN\r\n".to_string(),
        };
        line.into_bytes()
    }

    /// The binary v2 header: signature, version/command, family/protocol, length, addresses.
    pub fn encode_v2(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 36);
        out.extend_from_slice(&V2_SIGNATURE);
        match *self {
            Header::Local => {
                out.extend_from_slice(&[0x20, 0x00, 0, 0]);
            }
            Header::Proxy {
                transport,
                source,
                destination,
            } => {
                out.push(0x21);
                let proto = match transport {
                    Transport::Tcp => 0x1,
                    Transport::Udp => 0x2,
                };
                match (source.ip(), destination.ip()) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        out.push(0x10 | proto);
                        out.extend_from_slice(&12u16.to_be_bytes());
                        out.extend_from_slice(&s.octets());
                        out.extend_from_slice(&d.octets());
                    }
                    (s, d) => {
                        out.push(0x20 | proto);
                        out.extend_from_slice(&36u16.to_be_bytes());
                        out.extend_from_slice(&v6(s).octets());
                        out.extend_from_slice(&v6(d).octets());
                    }
                }
                out.extend_from_slice(&source.port().to_be_bytes());
                out.extend_from_slice(&destination.port().to_be_bytes());
            }
        }
        out
    }

    /// Reads a v1 or v2 header at the start of `buf`; returns it and the bytes it used.
    pub fn parse(buf: &[u8]) -> Result<(Header, usize), ParseError> {
        let n = buf.len().min(V2_SIGNATURE.len());
        if buf[..n] == V2_SIGNATURE[..n] {
            return if n < V2_SIGNATURE.len() {
                Err(ParseError::Incomplete)
            } else {
                parse_v2(buf)
            };
        }
        let n = buf.len().min(6);
        if buf[..n] == b"PROXY "[..n] {
            return if n < 6 {
                Err(ParseError::Incomplete)
            } else {
                parse_v1(buf)
            };
        }
        Err(ParseError::NotProxy)
    }
}

fn parse_v1(buf: &[u8]) -> Result<(Header, usize), ParseError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return Err(if buf.len() >= V1_MAX {
            ParseError::BadV1
        } else {
            ParseError::Incomplete
        });
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::BadV1)?;
    let parts: Vec<&str> = line.split(' ').collect();
    let header = match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Header::Local,
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let sip: IpAddr = src.parse().map_err(|_| ParseError::BadV1)?;
            let dip: IpAddr = dst.parse().map_err(|_| ParseError::BadV1)?;
            let want_v4 = *fam == "TCP4";
            if sip.is_ipv4() != want_v4 || dip.is_ipv4() != want_v4 {
                return Err(ParseError::BadV1);
            }
            let sport: u16 = port(sport)?;
            let dport: u16 = port(dport)?;
            Header::Proxy {
                transport: Transport::Tcp,
                source: SocketAddr::new(sip, sport),
                destination: SocketAddr::new(dip, dport),
            }
        }
        _ => return Err(ParseError::BadV1),
    };
    Ok((header, end + 2))
}

/// A decimal port without sign or leading zeros (the spec forbids them).
fn port(s: &str) -> Result<u16, ParseError> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ParseError::BadV1);
    }
    s.parse().map_err(|_| ParseError::BadV1)
}

fn parse_v2(buf: &[u8]) -> Result<(Header, usize), ParseError> {
    let Some(fixed) = buf.get(..16) else {
        return Err(ParseError::Incomplete);
    };
    let (ver_cmd, fam) = (fixed[12], fixed[13]);
    let len = u16::from_be_bytes([fixed[14], fixed[15]]) as usize;
    let total = 16 + len;
    let Some(body) = buf.get(16..total) else {
        return Err(ParseError::Incomplete);
    };
    match ver_cmd {
        0x20 => return Ok((Header::Local, total)),
        0x21 => {}
        other => return Err(ParseError::BadV2Command(other)),
    }
    let transport = match fam & 0x0f {
        0x1 => Transport::Tcp,
        0x2 => Transport::Udp,
        _ => return Err(ParseError::BadV2Family(fam)),
    };
    let (source, destination) = match fam >> 4 {
        0x1 => {
            let a = body.get(..12).ok_or(ParseError::ShortV2Addresses)?;
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            let p = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            (SocketAddr::new(ip(0), p(8)), SocketAddr::new(ip(4), p(10)))
        }
        0x2 => {
            let a = body.get(..36).ok_or(ParseError::ShortV2Addresses)?;
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let p = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            (
                SocketAddr::new(ip(0), p(32)),
                SocketAddr::new(ip(16), p(34)),
            )
        }
        // AF_UNSPEC with the PROXY command: the spec says to treat it as LOCAL.
        0x0 => return Ok((Header::Local, total)),
        _ => return Err(ParseError::BadV2Family(fam)),
    };
    Ok((
        Header::Proxy {
            transport,
            source,
            destination,
        },
        total,
    ))
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (
            SocketAddr::new(IpAddr::V6(v6(a.ip())), a.port()),
            SocketAddr::new(IpAddr::V6(v6(b.ip())), b.port()),
        )
    }
}
