//! The BGP message codec: a byte view of the header ([`Frame`]) and checked meanings
//! ([`Message`], [`Open`]) with `parse`/`emit` (RFC 4271 §4, capabilities RFC 5492, route
//! refresh RFC 2918). Decoding never panics: every malformed input is the [`Notification`]
//! RFC 4271 §6 says to send back. UPDATE bodies live in [`super::update`].

use std::net::Ipv4Addr;

use super::error::{code, header, open, Notification};
use super::update::Update;

pub(crate) use super::codec::Reader;
pub use super::codec::{Context, AFI_IPV4, AFI_IPV6, AS_TRANS, SAFI_UNICAST};

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended message capability (RFC 8654), which we never offer.
pub const MAX_LEN: usize = 4096;
/// Message types (§4.1; 5 from RFC 2918).
pub mod kind {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// A view over one whole message: the header is checked, the body is not parsed yet.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The first message in `buf`: `Ok(None)` when more bytes are needed, an error for a bad
    /// marker, length (§6.1) or type.
    pub fn split(buf: &'a [u8]) -> Result<Option<Frame<'a>>, Notification> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        if buf[..16] != MARKER {
            return Err(Notification::new(
                code::HEADER,
                header::CONNECTION_NOT_SYNCHRONIZED,
            ));
        }
        let len = u16::from_be_bytes([buf[16], buf[17]]);
        let kind = buf[18];
        let bad_len = || {
            Err(Notification::with_data(
                code::HEADER,
                header::BAD_MESSAGE_LENGTH,
                len.to_be_bytes(),
            ))
        };
        let n = usize::from(len);
        if !(HEADER_LEN..=MAX_LEN).contains(&n) {
            return bad_len();
        }
        let fits = match kind {
            kind::OPEN => n >= 29,
            kind::UPDATE => n >= 23,
            kind::NOTIFICATION => n >= 21,
            kind::KEEPALIVE => n == HEADER_LEN,
            kind::ROUTE_REFRESH => n == 23,
            _ => {
                return Err(Notification::with_data(
                    code::HEADER,
                    header::BAD_MESSAGE_TYPE,
                    [kind],
                ))
            }
        };
        if !fits {
            return bad_len();
        }
        Ok(buf.get(..n).map(|bytes| Frame { bytes }))
    }

    pub fn kind(&self) -> u8 {
        self.bytes[18]
    }

    /// Length of the whole message, header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn body(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// A checked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Box<Update>),
    Notification(Notification),
    Keepalive,
    RouteRefresh { afi: u16, safi: u8 },
}

impl Message {
    /// Checks a framed message's body.
    pub fn parse(frame: Frame<'_>, ctx: Context) -> Result<Message, Notification> {
        let body = frame.body();
        match frame.kind() {
            kind::OPEN => Open::parse(body).map(Message::Open),
            kind::UPDATE => Update::parse(body, ctx).map(|u| Message::Update(Box::new(u))),
            kind::NOTIFICATION => Ok(Message::Notification(Notification::with_data(
                body[0],
                body[1],
                &body[2..],
            ))),
            kind::KEEPALIVE => Ok(Message::Keepalive),
            _ => Ok(Message::RouteRefresh {
                afi: u16::from_be_bytes([body[0], body[1]]),
                safi: body[3],
            }),
        }
    }

    /// Splits and parses the first message of `buf`: its meaning and its length in bytes.
    pub fn decode(buf: &[u8], ctx: Context) -> Result<Option<(Message, usize)>, Notification> {
        let Some(frame) = Frame::split(buf)? else {
            return Ok(None);
        };
        Ok(Some((Message::parse(frame, ctx)?, frame.len())))
    }

    /// The message on the wire.
    pub fn emit(&self, ctx: Context) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MARKER);
        out.extend_from_slice(&[0, 0, 0]);
        let t = match self {
            Message::Open(o) => {
                o.emit(&mut out);
                kind::OPEN
            }
            Message::Update(u) => {
                u.emit(&mut out, ctx);
                kind::UPDATE
            }
            Message::Notification(n) => {
                out.extend_from_slice(&[n.code, n.subcode]);
                out.extend_from_slice(&n.data);
                kind::NOTIFICATION
            }
            Message::Keepalive => kind::KEEPALIVE,
            Message::RouteRefresh { afi, safi } => {
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[0, *safi]);
                kind::ROUTE_REFRESH
            }
        };
        let len = u16::try_from(out.len()).unwrap_or(u16::MAX);
        out[16..18].copy_from_slice(&len.to_be_bytes());
        out[18] = t;
        out
    }
}

/// Capabilities (RFC 5492) this speaker knows; others are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol { afi: u16, safi: u8 },
    RouteRefresh,
    FourOctetAs(u32),
    Other { code: u8, value: Vec<u8> },
}

/// An OPEN message (§4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet My Autonomous System field (AS_TRANS for 4-octet ASNs).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The peer's AS: the 4-octet capability's if present (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn has(&self, cap: &Capability) -> bool {
        self.capabilities.contains(cap)
    }

    /// Whether the peer offered no Multiprotocol capability (then IPv4 unicast is implied).
    pub fn no_multiprotocol(&self) -> bool {
        !self
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }))
    }

    /// Checks the syntax of an OPEN body (§6.2); the session checks AS, hold time and id.
    pub fn parse(body: &[u8]) -> Result<Open, Notification> {
        let unspecific = || Notification::new(code::OPEN, open::UNSPECIFIC);
        let mut r = Reader::new(body);
        let version = r.u8().ok_or_else(unspecific)?;
        if version != 4 {
            return Err(Notification::with_data(
                code::OPEN,
                open::UNSUPPORTED_VERSION,
                [0, 4],
            ));
        }
        let my_as = r.u16().ok_or_else(unspecific)?;
        let hold_time = r.u16().ok_or_else(unspecific)?;
        let bgp_id = Ipv4Addr::from(r.u32().ok_or_else(unspecific)?);
        let opt_len = r.u8().ok_or_else(unspecific)?;
        let params = r.take(usize::from(opt_len)).ok_or_else(unspecific)?;
        if !r.is_empty() {
            return Err(unspecific());
        }
        let mut capabilities = Vec::new();
        let mut p = Reader::new(params);
        while !p.is_empty() {
            let ptype = p.u8().ok_or_else(unspecific)?;
            let plen = p.u8().ok_or_else(unspecific)?;
            let value = p.take(usize::from(plen)).ok_or_else(unspecific)?;
            if ptype != 2 {
                return Err(Notification::new(
                    code::OPEN,
                    open::UNSUPPORTED_OPTIONAL_PARAMETER,
                ));
            }
            let mut c = Reader::new(value);
            while !c.is_empty() {
                let ccode = c.u8().ok_or_else(unspecific)?;
                let clen = c.u8().ok_or_else(unspecific)?;
                let v = c.take(usize::from(clen)).ok_or_else(unspecific)?;
                capabilities.push(match (ccode, v.len()) {
                    (1, 4) => Capability::Multiprotocol {
                        afi: u16::from_be_bytes([v[0], v[1]]),
                        safi: v[3],
                    },
                    (2, 0) => Capability::RouteRefresh,
                    (65, 4) => {
                        Capability::FourOctetAs(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
                    }
                    (1 | 2 | 65, _) => return Err(unspecific()),
                    _ => Capability::Other {
                        code: ccode,
                        value: v.to_vec(),
                    },
                });
            }
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let mut caps = Vec::new();
        for c in &self.capabilities {
            let (ccode, value): (u8, Vec<u8>) = match c {
                Capability::Multiprotocol { afi, safi } => {
                    let a = afi.to_be_bytes();
                    (1, vec![a[0], a[1], 0, *safi])
                }
                Capability::RouteRefresh => (2, Vec::new()),
                Capability::FourOctetAs(a) => (65, a.to_be_bytes().to_vec()),
                Capability::Other { code, value } => (*code, value.clone()),
            };
            caps.push(ccode);
            caps.push(u8::try_from(value.len()).unwrap_or(0));
            caps.extend_from_slice(&value);
        }
        // One Capabilities parameter holding them all (RFC 5492 §4).
        if caps.is_empty() {
            out.push(0);
        } else {
            out.push(u8::try_from(caps.len() + 2).unwrap_or(0));
            out.push(2);
            out.push(u8::try_from(caps.len()).unwrap_or(0));
            out.extend_from_slice(&caps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OPEN BIRD 2.0.12 sent (AS 65000, hold 3, id 10.88.1.1, ipv4 and ipv6 channels),
    /// read off the socket: MP IPv4 and IPv6 unicast, route refresh, graceful restart (64),
    /// 4-octet AS, enhanced route refresh (70) and long-lived GR (71).
    pub(crate) const BIRD_OPEN: &str = "ffffffffffffffffffffffffffffffff003b0104fde800030a58010\
        11e021c01040001000101040002000102004002007841040000fde846004700";

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn bird_open_parses() {
        let bytes = hex(BIRD_OPEN);
        let (m, n) = Message::decode(&bytes, Context::default())
            .unwrap()
            .unwrap();
        assert_eq!(n, bytes.len());
        let Message::Open(o) = m else { panic!("{m:?}") };
        assert_eq!(o.asn(), 65000);
        assert_eq!(o.hold_time, 3);
        assert_eq!(o.bgp_id, Ipv4Addr::new(10, 88, 1, 1));
        assert!(o.has(&Capability::RouteRefresh));
        assert!(o.has(&Capability::Multiprotocol {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST
        }));
    }

    #[test]
    fn open_round_trips() {
        let o = Open {
            version: 4,
            my_as: AS_TRANS,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            capabilities: vec![
                Capability::Multiprotocol {
                    afi: AFI_IPV6,
                    safi: SAFI_UNICAST,
                },
                Capability::RouteRefresh,
                Capability::FourOctetAs(4_200_000_000),
            ],
        };
        let bytes = Message::Open(o.clone()).emit(Context::default());
        let (m, _) = Message::decode(&bytes, Context::default())
            .unwrap()
            .unwrap();
        assert_eq!(m, Message::Open(o.clone()));
        assert_eq!(o.asn(), 4_200_000_000);
    }

    #[test]
    fn partial_input_waits_for_more() {
        let bytes = Message::Keepalive.emit(Context::default());
        for cut in 0..bytes.len() {
            assert_eq!(Message::decode(&bytes[..cut], Context::default()), Ok(None));
        }
    }
}
