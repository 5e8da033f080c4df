//! DNS check: an authoritative server answers a query for its own zone.
//!
//! The query is built and the reply read on raw bytes (RFC 1035 §4.1), so the check does not
//! share a parser with the server it checks. A reply passes when it carries the query's id
//! and question count, has QR and AA set, is not truncated into uselessness and has RCODE 0
//! (NOERROR): an authoritative server that answers SERVFAIL or REFUSED is not serving.

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::left;
use crate::outcome::ProbeError;

/// QTYPE SOA: every zone has one at its apex, so the question is always answerable.
const SOA: u16 = 6;
const CLASS_IN: u16 = 1;
/// Longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// Builds a query for `zone`'s SOA with `id`; `None` for a name that cannot be sent
/// (an empty label, a label over 63 bytes, a name over 255 bytes).
pub fn soa_query(zone: &str, id: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(12 + zone.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    // RD off: an authoritative server must answer from its own data.
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let name = zone.trim_end_matches('.');
    if !name.is_empty() {
        for label in name.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=63).contains(l))?;
            q.push(len);
            q.extend_from_slice(label.as_bytes());
        }
    }
    q.push(0);
    if q.len() - 12 > MAX_NAME {
        return None;
    }
    q.extend_from_slice(&SOA.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Some(q)
}

/// Whether `reply` answers query `id` authoritatively and without error.
pub fn check_reply(reply: &[u8], id: u16) -> Result<(), ProbeError> {
    let header = reply
        .get(..12)
        .ok_or(ProbeError::Malformed("dns reply shorter than its header"))?;
    if u16::from_be_bytes([header[0], header[1]]) != id {
        return Err(ProbeError::Malformed("dns reply to another query"));
    }
    let (flags, rcode) = (header[2], header[3] & 0x0f);
    if flags & 0x80 == 0 {
        return Err(ProbeError::Malformed("dns message is not a reply"));
    }
    if u16::from_be_bytes([header[4], header[5]]) != 1 {
        return Err(ProbeError::Malformed(
            "dns reply does not echo the question",
        ));
    }
    if rcode != 0 {
        return Err(ProbeError::DnsRcode(rcode));
    }
    if flags & 0x04 == 0 {
        return Err(ProbeError::Malformed("dns reply is not authoritative"));
    }
    Ok(())
}

/// Sends `zone`'s SOA query to `addr` over UDP and waits for a passing reply before
/// `deadline`; replies to other ids or from other addresses are skipped.
pub async fn query(
    addr: SocketAddr,
    zone: &str,
    id: u16,
    deadline: Instant,
) -> Result<(), ProbeError> {
    let q = soa_query(zone, id).ok_or(ProbeError::Malformed("zone name cannot be queried"))?;
    let local: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await.map_err(ProbeError::Io)?;
    sock.connect(addr).await.map_err(ProbeError::from_connect)?;
    sock.send(&q).await.map_err(ProbeError::Io)?;
    let budget = left(deadline);
    let mut buf = [0u8; 512];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => return Err(ProbeError::ResponseTimeout(budget)),
            // An ICMP port unreachable surfaces here on a connected socket.
            Ok(Err(e)) => return Err(ProbeError::from_connect(e)),
            Ok(Ok(n)) => n,
        };
        match check_reply(&buf[..n], id) {
            Err(ProbeError::Malformed("dns reply to another query")) => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_rfc_1035_bytes() {
        let q = soa_query("example.com.", 0xbeef).unwrap();
        assert_eq!(
            q,
            b"\xbe\xef\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x06\x00\x01"
        );
        assert_eq!(soa_query(".", 1).unwrap()[12..], [0, 0, 6, 0, 1]);
        assert!(soa_query("a..b", 1).is_none());
        assert!(soa_query(&"x".repeat(64), 1).is_none());
        assert!(soa_query(&["a"; 130].join("."), 1).is_none());
    }

    fn reply(id: u16, flags: u8, rcode: u8, qd: u16) -> Vec<u8> {
        let mut r = id.to_be_bytes().to_vec();
        r.extend_from_slice(&[flags, rcode]);
        r.extend_from_slice(&qd.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
        r
    }

    #[test]
    fn only_an_authoritative_noerror_reply_to_our_id_passes() {
        assert!(check_reply(&reply(7, 0x84, 0, 1), 7).is_ok());
        // A resolver's answer (no AA), REFUSED, SERVFAIL, another id, a query, no header.
        assert!(check_reply(&reply(7, 0x80, 0, 1), 7).is_err());
        assert!(matches!(
            check_reply(&reply(7, 0x84, 5, 1), 7),
            Err(ProbeError::DnsRcode(5))
        ));
        assert!(matches!(
            check_reply(&reply(7, 0x84, 2, 1), 7),
            Err(ProbeError::DnsRcode(2))
        ));
        assert!(check_reply(&reply(8, 0x84, 0, 1), 7).is_err());
        assert!(check_reply(&reply(7, 0x04, 0, 1), 7).is_err());
        assert!(check_reply(&reply(7, 0x84, 0, 0), 7).is_err());
        assert!(check_reply(&[0, 7, 0x84], 7).is_err());
    }

    #[tokio::test]
    async fn a_silent_port_times_out_and_a_closed_one_is_refused() {
        // Bound but never read: the query is swallowed.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let deadline = Instant::now() + std::time::Duration::from_millis(200);
        assert!(matches!(
            query(addr, "example.com", 1, deadline).await,
            Err(ProbeError::ResponseTimeout(_))
        ));
        drop(silent);
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        assert!(query(addr, "example.com", 1, deadline).await.is_err());
    }
}
