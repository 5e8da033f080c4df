//! The fast path for the common GSLB query: one question, A or AAAA, class IN, for a GSLB name,
//! with at most an OPT record (version 0) carrying at most an ECS option. The header, question
//! and OPT are read by hand and the answer is written straight into bytes, skipping hickory's
//! decode and encode; the GSLB pipeline, counters and ECS checks are the same as the full path.
//!
//! Anything else (other types or names, extra records or options, compression, a malformed or
//! FORMERR-worthy ECS, an empty or SERVFAIL answer, an answer that does not fit) returns `None`
//! before any counter moves, and the caller takes the full path. The unit tests compare both
//! paths byte for byte.

use crate::counters::Counters;
use crate::ecs::{self, ClientSubnet};
use crate::state::{State, Transport, CLASSIC_UDP};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rand_core::RngCore;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

/// What the hand parser found.
struct Parsed {
    /// End of the question section.
    qend: usize,
    id: usize,
    v6: bool,
    /// (client payload) when an OPT was present.
    edns: Option<u16>,
    subnet: Option<ClientSubnet>,
}

fn u16_at(q: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]))
}

/// Reads a query the fast path can answer, or `None`.
fn parse(state: &State, q: &[u8]) -> Option<Parsed> {
    // QR=0, opcode 0, TC=0 (AA ignored as hickory does); Z and rcode bits clear; counts 1/0/0/≤1.
    if q.len() < 12 || q[2] & 0xfa != 0 || q[3] & 0x4f != 0 {
        return None;
    }
    let (qd, an, ns, ar) = (u16_at(q, 4)?, u16_at(q, 6)?, u16_at(q, 8)?, u16_at(q, 10)?);
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let mut name = [0u8; 255];
    let mut i = 12;
    loop {
        let len = usize::from(*q.get(i)?);
        if len > 63 || i - 12 + len + 1 > 255 {
            return None; // compression, extended labels or too long: full path
        }
        name[i - 12] = len as u8;
        for k in 1..=len {
            name[i - 12 + k] = q.get(i + k)?.to_ascii_lowercase();
        }
        i += len + 1;
        if len == 0 {
            break;
        }
    }
    let id = *state.fast.get(&name[..i - 12])?;
    let v6 = match (u16_at(q, i)?, u16_at(q, i + 2)?) {
        (1, 1) => false,
        (28, 1) => true,
        _ => return None,
    };
    let qend = i + 4;
    let (edns, subnet) = if ar == 1 {
        // OPT: root owner, type 41, class = payload, TTL = ext-rcode, version, flags.
        if q.get(qend) != Some(&0) || u16_at(q, qend + 1)? != 41 || *q.get(qend + 6)? != 0 {
            return None;
        }
        let payload = u16_at(q, qend + 3)?;
        let rdlen = usize::from(u16_at(q, qend + 9)?);
        let rdata = q.get(qend + 11..)?;
        if rdata.len() != rdlen {
            return None;
        }
        let subnet = match rdata {
            [] => None,
            [c0, c1, l0, l1, opt @ ..]
                if u16::from_be_bytes([*c0, *c1]) == ecs::OPTION_CODE
                    && usize::from(u16::from_be_bytes([*l0, *l1])) == opt.len() =>
            {
                Some(ecs::parse_option(opt).ok()?)
            }
            _ => return None,
        };
        (Some(payload.max(512)), subnet)
    } else {
        if q.len() != qend {
            return None;
        }
        (None, None)
    };
    Some(Parsed {
        qend,
        id,
        v6,
        edns,
        subnet,
    })
}

/// Answers `q` if it is the common shape and the answer is a plain address list that fits.
pub fn respond(
    state: &State,
    counters: &Counters,
    q: &[u8],
    peer: IpAddr,
    transport: Transport,
    rng: &mut dyn RngCore,
) -> Option<Vec<u8>> {
    let p = parse(state, q)?;
    let client = match p.subnet {
        Some(s) if s.source > 0 => s.addr,
        _ => peer,
    };
    let a = state
        .gslb
        .answer(&state.views[p.id], p.id, p.v6, client, peer, rng);
    if a.addrs.is_empty() {
        return None; // NODATA with the SOA, or SERVFAIL: the full path words those
    }
    let budget = match (transport, p.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, Some(payload)) => {
            usize::from(payload.min(state.edns_udp_max)).max(CLASSIC_UDP)
        }
        (Transport::Udp, None) => CLASSIC_UDP,
    };
    let rr_len = if p.v6 { 28 } else { 16 };
    let opt_len = match (p.edns, p.subnet) {
        (None, _) => 0,
        (Some(_), None) => 11,
        (Some(_), Some(s)) => 11 + 8 + usize::from(s.source.div_ceil(8)),
    };
    let fixed = p.qend + opt_len;
    let fit = budget.saturating_sub(fixed) / rr_len;
    if fit == 0 {
        return None; // truncation: the full path sets TC
    }
    let n = a.addrs.len().min(fit);

    let mut r = Vec::with_capacity(fixed + n * rr_len);
    r.extend_from_slice(&q[..2]);
    r.push(0x84 | (q[2] & 0x01)); // QR, AA, RD as asked
    r.push(q[3] & 0x10); // CD as asked, RA clear, NOERROR
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&(n as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, u8::from(p.edns.is_some())]);
    r.extend_from_slice(&q[12..p.qend]); // the question, in the query's case
    for ip in &a.addrs[..n] {
        r.extend_from_slice(&[0xc0, 12]);
        match ip {
            IpAddr::V4(v) => {
                r.extend_from_slice(&[0, 1, 0, 1]);
                r.extend_from_slice(&a.ttl.to_be_bytes());
                r.extend_from_slice(&[0, 4]);
                r.extend_from_slice(&v.octets());
            }
            IpAddr::V6(v) => {
                r.extend_from_slice(&[0, 28, 0, 1]);
                r.extend_from_slice(&a.ttl.to_be_bytes());
                r.extend_from_slice(&[0, 16]);
                r.extend_from_slice(&v.octets());
            }
        }
    }
    if p.edns.is_some() {
        r.extend_from_slice(&[0, 0, 41]);
        r.extend_from_slice(&state.edns_udp_max.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
        r.extend_from_slice(&((opt_len - 11) as u16).to_be_bytes());
        if let Some(s) = p.subnet {
            let bytes = usize::from(s.source.div_ceil(8));
            let (family, octets) = match s.addr {
                IpAddr::V4(v) => (1u8, v.octets().to_vec()),
                IpAddr::V6(v) => (2u8, v.octets().to_vec()),
            };
            // RFC 7871 §7.2.1: family, source and address as asked; our scope.
            let scope = if s.source == 0 { 0 } else { a.scope };
            r.extend_from_slice(&ecs::OPTION_CODE.to_be_bytes());
            r.extend_from_slice(&((4 + bytes) as u16).to_be_bytes());
            r.extend_from_slice(&[0, family, s.source, scope]);
            r.extend_from_slice(&octets[..bytes]);
        }
    }

    counters.query(if p.v6 {
        RecordType::AAAA
    } else {
        RecordType::A
    });
    let ecs_counter = if p.subnet.is_some() {
        &counters.ecs_present
    } else {
        &counters.ecs_absent
    };
    ecs_counter.fetch_add(1, Relaxed);
    counters.outcome(a.outcome);
    counters.rcode(ResponseCode::NoError);
    if let Some(c) = a.dc.and_then(|d| state.dc_answers.get(d)) {
        c.fetch_add(1, Relaxed);
    }
    Some(r)
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
