//! The query path: bytes in, bytes out. Parsing and emitting through hickory-proto; the
//! answer logic, EDNS0 (RFC 6891), ECS (RFC 7871) and the size budget are ours.

use crate::counters::Counters;
use crate::ecs::{self, ClientSubnet};
use crate::gslb::Outcome;
use crate::state::{State, Transport, CLASSIC_UDP};
use crate::zone::{Lookup, Node, Zone};
use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet as HickoryEcs, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use rand_core::RngCore;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

/// Longest CNAME chain followed inside our zones.
const MAX_CHAIN: usize = 8;

/// A header-only error response built from the raw query header, for queries hickory cannot
/// (or must not) decode: echo id, opcode and RD.
fn raw_error(q: &[u8], rcode: u8) -> Vec<u8> {
    let mut r = vec![0u8; 12];
    r[..2].copy_from_slice(&q[..2]);
    r[2] = 0x80 | (q[2] & 0x79); // QR, opcode, RD
    r[3] = rcode & 0x0f;
    r
}

/// Answers one query; `None` means send nothing (not a query, or too short to answer).
pub fn respond(
    state: &State,
    counters: &Counters,
    q: &[u8],
    peer: IpAddr,
    transport: Transport,
    rng: &mut dyn RngCore,
) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 {
        counters.dropped.fetch_add(1, Relaxed);
        return None;
    }
    let opcode = (q[2] >> 3) & 0x0f;
    if opcode != 0 {
        counters.rcode(ResponseCode::NotImp);
        return Some(raw_error(q, 4));
    }
    let Ok(req) = Message::from_vec(q) else {
        counters.rcode(ResponseCode::FormErr);
        return Some(raw_error(q, 1));
    };
    let mut resp = Builder::new(&req);
    if req.queries.len() != 1 || !req.answers.is_empty() || !req.authorities.is_empty() {
        return Some(resp.finish(state, counters, ResponseCode::FormErr, transport));
    }
    let query = &req.queries[0];
    counters.query(query.query_type());
    resp.msg.add_query(query.clone());
    if let Some(e) = &req.edns {
        if e.version() > 0 {
            // RFC 6891 §6.1.3: BADVERS, with an OPT of the version we do speak.
            return Some(resp.finish(state, counters, ResponseCode::BADVERS, transport));
        }
    }
    let subnet = if req
        .edns
        .as_ref()
        .is_some_and(|e| e.option(EdnsCode::Subnet).is_some())
    {
        match ecs::find(q) {
            Ok(s) => s,
            Err(_) => return Some(resp.finish(state, counters, ResponseCode::FormErr, transport)),
        }
    } else {
        None
    };
    if subnet.is_some() {
        counters.ecs_present.fetch_add(1, Relaxed);
    } else {
        counters.ecs_absent.fetch_add(1, Relaxed);
    }
    resp.subnet = subnet;
    if query.query_class() != DNSClass::IN
        || matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR)
    {
        return Some(resp.finish(state, counters, ResponseCode::Refused, transport));
    }
    // RFC 7871 §7.1.2: SOURCE PREFIX-LENGTH 0 asks us to use no client information.
    let client = match subnet {
        Some(s) if s.source > 0 => s.addr,
        _ => peer,
    };
    let rcode = resp.answer(state, counters, query, client, peer, rng);
    Some(resp.finish(state, counters, rcode, transport))
}

/// A response under construction.
struct Builder {
    msg: Message,
    edns: bool,
    client_payload: u16,
    subnet: Option<ClientSubnet>,
    scope: u8,
    /// Answer records that come from the GSLB and may be trimmed to fit.
    trimmable: usize,
}

impl Builder {
    fn new(req: &Message) -> Builder {
        let mut meta = Metadata::new(req.id, MessageType::Response, OpCode::Query);
        meta.recursion_desired = req.recursion_desired;
        meta.checking_disabled = req.checking_disabled;
        let mut msg = Message::response(req.id, OpCode::Query);
        msg.metadata = meta;
        Builder {
            msg,
            edns: req.edns.is_some(),
            client_payload: req.edns.as_ref().map_or(0, Edns::max_payload),
            subnet: None,
            scope: 0,
            trimmable: 0,
        }
    }

    /// Fills the sections; returns the rcode.
    fn answer(
        &mut self,
        state: &State,
        counters: &Counters,
        query: &Query,
        client: IpAddr,
        peer: IpAddr,
        rng: &mut dyn RngCore,
    ) -> ResponseCode {
        let qtype = query.query_type();
        let mut qname: Name = query.name().clone();
        let mut lower = LowerName::from(&qname);
        for hop in 0..MAX_CHAIN {
            let (zone, node) = match state.zones.lookup(&lower) {
                Lookup::Refused if hop == 0 => return ResponseCode::Refused,
                // A CNAME pointing out of our zones: the resolver follows it.
                Lookup::Refused => return ResponseCode::NoError,
                Lookup::NxDomain(z) => {
                    self.msg.metadata.authoritative = true;
                    self.msg.add_authority(z.negative_soa());
                    return ResponseCode::NXDomain;
                }
                Lookup::Found(z, n) => (z, n),
            };
            self.msg.metadata.authoritative = true;
            if let Some(id) = node.gslb {
                if matches!(qtype, RecordType::A | RecordType::AAAA) {
                    return self.gslb(state, counters, zone, id, &qname, qtype, client, peer, rng);
                }
            }
            if let Some(set) = node.rrset(qtype) {
                self.add_set(set, &qname);
                return ResponseCode::NoError;
            }
            if qtype == RecordType::ANY && !node.rrsets.is_empty() {
                for (_, set) in &node.rrsets {
                    self.add_set(set, &qname);
                }
                return ResponseCode::NoError;
            }
            match cname_target(node) {
                Some(target) if qtype != RecordType::CNAME => {
                    self.add_set(node.rrset(RecordType::CNAME).unwrap_or_default(), &qname);
                    qname = target;
                    lower = LowerName::from(&qname);
                }
                _ => {
                    self.msg.add_authority(zone.negative_soa());
                    return ResponseCode::NoError;
                }
            }
        }
        ResponseCode::NoError
    }

    /// Adds an RRset, owner name in the query's case.
    fn add_set(&mut self, set: &[Record], owner: &Name) {
        for r in set {
            let mut r = r.clone();
            r.name = owner.clone();
            self.msg.add_answer(r);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn gslb(
        &mut self,
        state: &State,
        counters: &Counters,
        zone: &Zone,
        id: usize,
        qname: &Name,
        qtype: RecordType,
        client: IpAddr,
        peer: IpAddr,
        rng: &mut dyn RngCore,
    ) -> ResponseCode {
        let v6 = qtype == RecordType::AAAA;
        let a = state
            .gslb
            .answer(&state.views[id], id, v6, client, peer, rng);
        counters.outcome(a.outcome);
        self.scope = a.scope;
        if a.outcome == Outcome::ServFail {
            return ResponseCode::ServFail;
        }
        if a.addrs.is_empty() {
            self.msg.add_authority(zone.negative_soa());
            return ResponseCode::NoError;
        }
        if let Some(c) = a.dc.and_then(|d| state.dc_answers.get(d)) {
            c.fetch_add(1, Relaxed);
        }
        for ip in &a.addrs {
            let data = match ip {
                IpAddr::V4(v) => RData::A(A(*v)),
                IpAddr::V6(v) => RData::AAAA(AAAA(*v)),
            };
            self.msg
                .add_answer(Record::from_rdata(qname.clone(), a.ttl, data));
        }
        self.trimmable = a.addrs.len();
        ResponseCode::NoError
    }

    /// Sets rcode and OPT, fits the budget and encodes.
    fn finish(
        mut self,
        state: &State,
        counters: &Counters,
        rcode: ResponseCode,
        transport: Transport,
    ) -> Vec<u8> {
        counters.rcode(rcode);
        self.msg.metadata.response_code = rcode;
        if self.edns {
            let mut e = Edns::new();
            e.set_max_payload(state.edns_udp_max);
            e.set_version(0);
            if let Some(s) = self.subnet {
                // RFC 7871 §7.2.1: family, source and address as in the query; our scope.
                let scope = if s.source == 0 { 0 } else { self.scope };
                e.options_mut()
                    .insert(EdnsOption::Subnet(HickoryEcs::new(s.addr, s.source, scope)));
            }
            self.msg.set_edns(e);
        }
        let budget = match transport {
            Transport::Tcp => usize::from(u16::MAX),
            Transport::Udp if self.edns => {
                usize::from(self.client_payload.min(state.edns_udp_max)).max(CLASSIC_UDP)
            }
            Transport::Udp => CLASSIC_UDP,
        };
        let mut bytes = encode(&self.msg);
        // Fit the GSLB answer first: fewer addresses is still a whole, valid answer.
        while bytes.len() > budget && self.trimmable > 1 {
            self.msg.answers.pop();
            self.trimmable -= 1;
            bytes = encode(&self.msg);
        }
        if bytes.len() > budget {
            // Never a partial RRset (RFC 2181 §9): empty answer, TC set, retry over TCP.
            counters.truncated.fetch_add(1, Relaxed);
            self.msg.answers.clear();
            self.msg.authorities.clear();
            self.msg.additionals.clear();
            self.msg.metadata.truncation = true;
            bytes = encode(&self.msg);
        }
        bytes
    }
}

fn cname_target(node: &Node) -> Option<Name> {
    match &node.rrset(RecordType::CNAME)?.first()?.data {
        RData::CNAME(c) => Some(c.0.clone()),
        _ => None,
    }
}

fn encode(m: &Message) -> Vec<u8> {
    // Our own messages always encode; an error would be a bug, answered as SERVFAIL.
    m.to_vec().unwrap_or_else(|_| {
        let mut h = vec![0u8; 12];
        h[..2].copy_from_slice(&m.id.to_be_bytes());
        h[2] = 0x80;
        h[3] = 2;
        h
    })
}
