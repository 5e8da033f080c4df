//! Fuzz the anycast DNS self-check (`tenbin_health::probe::dns`): the reply check with any
//! bytes (the first two are the query id), and the query builder with any zone name.
//! Invariants: no panic; wherever hickory-proto decodes the reply (without EDNS, which the
//! check's query never asks for), the check passes exactly when hickory sees a response to
//! that id, authoritative, with one question and NOERROR; every query built reads back in
//! hickory as one SOA/IN question with the zone's labels, with RD clear.
#![no_main]

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use libfuzzer_sys::fuzz_target;
use tenbin_health::probe::dns::{check_reply, soa_query};

fuzz_target!(|data: &[u8]| {
    if let [a, b, reply @ ..] = data {
        let id = u16::from_be_bytes([*a, *b]);
        reply_agrees_with_hickory(reply, id);
    }
    if let Ok(zone) = std::str::from_utf8(data) {
        query_reads_back(zone);
    }
});

fn reply_agrees_with_hickory(reply: &[u8], id: u16) {
    let ours = check_reply(reply, id);
    let Ok(m) = Message::from_vec(reply) else {
        return;
    };
    if m.edns.is_some() {
        return;
    }
    let theirs = m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && m.metadata.authoritative
        && m.queries.len() == 1
        && m.metadata.response_code == ResponseCode::NoError;
    assert_eq!(ours.is_ok(), theirs, "{ours:?} vs {:?}", m.metadata);
}

fn query_reads_back(zone: &str) {
    let Some(q) = soa_query(zone, 0x1234) else {
        return;
    };
    let m = Message::from_vec(&q).expect("a query we built decodes");
    assert_eq!(m.metadata.id, 0x1234);
    assert_eq!(m.metadata.message_type, MessageType::Query);
    assert!(!m.metadata.recursion_desired);
    assert_eq!(m.queries.len(), 1);
    let question = &m.queries[0];
    assert_eq!(question.query_type(), RecordType::SOA);
    assert_eq!(question.query_class(), DNSClass::IN);
    let name = zone.trim_end_matches('.');
    let want: Vec<&[u8]> = if name.is_empty() {
        Vec::new()
    } else {
        name.split('.').map(str::as_bytes).collect()
    };
    let got: Vec<&[u8]> = question.name().iter().collect();
    assert_eq!(
        got.len(),
        want.len(),
        "{zone:?} read as {}",
        question.name()
    );
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g.eq_ignore_ascii_case(w),
            "{zone:?} read as {}",
            question.name()
        );
    }
}
