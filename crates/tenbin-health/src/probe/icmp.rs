//! ICMP echo check over a raw socket (needs CAP_NET_RAW; says so clearly without it).
//!
//! The socket is connected to the target, so the kernel only hands us datagrams from it; we
//! still match type, identifier, sequence and a payload cookie, because a raw socket sees every
//! ICMP message from that host (including, on loopback, our own request).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::time::Instant;

use super::left;
use crate::outcome::ProbeError;

static SEQ: AtomicU16 = AtomicU16::new(1);
const COOKIE: &[u8; 8] = b"tenbin\0\x01";

/// Send one echo request to `ip` and wait for its reply until `deadline`; returns the sequence.
pub async fn ping(ip: IpAddr, deadline: Instant) -> Result<u16, ProbeError> {
    let budget = left(deadline);
    let (domain, proto, req_type, reply_type) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, 8u8, 0u8),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, 128u8, 129u8),
    };
    let sock = Socket::new(domain, Type::RAW, Some(proto)).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => ProbeError::Unavailable(
            "ICMP check needs a raw socket: run as root or grant CAP_NET_RAW".into(),
        ),
        _ => ProbeError::Io(e),
    })?;
    sock.set_nonblocking(true).map_err(ProbeError::Io)?;
    sock.connect(&SocketAddr::new(ip, 0).into())
        .map_err(ProbeError::from_connect)?;
    // tokio's UdpSocket is only send(2)/recv(2) on a registered datagram fd: a connected raw
    // socket behaves the same under it, and registering it that way needs no unsafe code
    // (AsyncFd's I/O-safe registration is an unsafe fn).
    let fd =
        tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock)).map_err(ProbeError::Io)?;

    let id = (std::process::id() as u16) ^ 0x7e1b;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let pkt = echo_request(req_type, id, seq, ip.is_ipv4());
    let exchange = async {
        fd.send(&pkt).await.map_err(ProbeError::Io)?;
        let mut buf = [0u8; 1500];
        loop {
            let n = fd.recv(&mut buf).await.map_err(ProbeError::Io)?;
            let icmp = if ip.is_ipv4() {
                strip_ipv4(&buf[..n])
            } else {
                Some(&buf[..n])
            };
            if icmp.is_some_and(|m| is_our_reply(m, reply_type, id, seq)) {
                return Ok(seq);
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => Err(ProbeError::EchoTimeout(budget)),
        Ok(r) => r,
    }
}

/// Type, code, checksum, identifier, sequence, cookie. ICMPv6's checksum covers a pseudo-header
/// the kernel fills in for raw ICMPv6 sockets, so only ICMPv4's is ours to compute.
fn echo_request(typ: u8, id: u16, seq: u16, v4: bool) -> Vec<u8> {
    let mut p = vec![typ, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(COOKIE);
    if v4 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 raw sockets deliver the IP header too.
fn strip_ipv4(pkt: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(*pkt.first()? & 0x0f) * 4;
    (ihl >= 20).then(|| pkt.get(ihl..)).flatten()
}

fn is_our_reply(m: &[u8], reply_type: u8, id: u16, seq: u16) -> bool {
    m.len() >= 8 + COOKIE.len()
        && m[0] == reply_type
        && m[1] == 0
        && m[4..6] == id.to_be_bytes()
        && m[6..8] == seq.to_be_bytes()
        && &m[8..8 + COOKIE.len()] == COOKIE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(8, 0x1234, 7, true);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to 0");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums (ones' complement) to ddf2.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn replies_are_matched_and_requests_ignored() {
        let mut reply = echo_request(0, 9, 3, true);
        assert!(is_our_reply(&reply, 0, 9, 3));
        assert!(!is_our_reply(&reply, 0, 9, 4));
        reply[0] = 8;
        assert!(
            !is_our_reply(&reply, 0, 9, 3),
            "our own request is not a reply"
        );
        assert!(!is_our_reply(&reply[..5], 0, 9, 3));
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&echo_request(0, 1, 1, true));
        assert!(strip_ipv4(&ip).is_some_and(|m| is_our_reply(m, 0, 1, 1)));
        assert_eq!(strip_ipv4(&[0x4f]), None);
        assert_eq!(strip_ipv4(&[]), None);
    }
}
