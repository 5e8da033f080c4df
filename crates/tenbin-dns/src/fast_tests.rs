//! The fast path against the full path: byte for byte where it answers, and declining (with
//! no counter moved) where it must.

use super::*;
use crate::engine::Engine;
use crate::query;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet as HickoryEcs, EdnsOption};
use hickory_proto::rr::Name;
use rand::rngs::mock::StepRng;

fn engine() -> Engine {
    let many: Vec<String> = (1..=60).map(|i| format!("\"192.0.2.{i}\"")).collect();
    let text = format!(
        r#"
        max_answers = 60
        [[datacenters]]
        name = "fra"
        [[datacenters]]
        name = "nrt"
        [[regions]]
        name = "eu"
        prefer = ["fra", "nrt"]
        [[regions]]
        name = "asia"
        prefer = ["nrt", "fra"]
        [[networks]]
        cidr = "10.0.0.0/8"
        region = "eu"
        [[networks]]
        cidr = "2001:db8:aa::/48"
        region = "asia"
        [[zones]]
        origin = "example.test."
        soa = {{ mname = "ns1", rname = "hostmaster" }}
        records = [ {{ name = "static", type = "A", data = "192.0.2.200" }} ]
        [[gslb]]
        name = "www.example.test."
        pools = [
          {{ datacenter = "fra", addresses = ["198.51.100.1", "198.51.100.2", "2001:db8::1"] }},
          {{ datacenter = "nrt", addresses = ["203.0.113.1", "2001:db8::2"] }},
        ]
        [[gslb]]
        name = "many.example.test."
        pools = [ {{ datacenter = "fra", addresses = [{many}] }} ]
        "#,
        many = many.join(",")
    );
    Engine::new(&toml::from_str(&text).unwrap()).unwrap()
}

fn msg(name: &str, t: RecordType, edns: Option<(u16, Option<HickoryEcs>)>) -> Message {
    let mut m = Message::new(0xbeef, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some((payload, ecs)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        if let Some(c) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(c));
        }
        m.set_edns(e);
    }
    m
}

fn ecs(addr: &str, source: u8) -> Option<HickoryEcs> {
    Some(HickoryEcs::new(addr.parse().unwrap(), source, 0))
}

/// (fast, full) answers to `q` from `peer`, each with a fresh rng of the same seed and fresh
/// counters; also whether the fast path left its counters untouched.
fn both(
    e: &Engine,
    q: &[u8],
    peer: &str,
    t: Transport,
) -> (Option<Vec<u8>>, Option<Vec<u8>>, bool) {
    let st = e.state();
    let peer: IpAddr = peer.parse().unwrap();
    let (cf, cs) = (Counters::default(), Counters::default());
    let fast = respond(&st, &cf, q, peer, t, &mut StepRng::new(3, 0x9e37_79b9));
    let full = query::respond(&st, &cs, q, peer, t, &mut StepRng::new(3, 0x9e37_79b9));
    let untouched = cf.stats(Vec::new()) == Counters::default().stats(Vec::new());
    if fast.is_some() {
        assert_eq!(cf.stats(Vec::new()), cs.stats(Vec::new()), "same counters");
    }
    (fast, full, untouched)
}

#[test]
fn common_queries_get_the_full_paths_bytes() {
    let e = engine();
    let cases = [
        (msg("www.example.test.", RecordType::A, None), "10.0.0.1"),
        (msg("WwW.Example.TEST.", RecordType::A, None), "10.0.0.1"),
        (
            msg("www.example.test.", RecordType::A, Some((4096, None))),
            "192.0.2.1",
        ),
        (
            msg(
                "www.example.test.",
                RecordType::A,
                Some((1232, ecs("10.1.2.0", 24))),
            ),
            "192.0.2.1",
        ),
        (
            msg(
                "www.example.test.",
                RecordType::A,
                Some((1232, ecs("10.1.2.128", 25))),
            ),
            "::1",
        ),
        (
            msg(
                "www.example.test.",
                RecordType::A,
                Some((1232, ecs("0.0.0.0", 0))),
            ),
            "10.9.9.9",
        ),
        (
            msg(
                "www.example.test.",
                RecordType::AAAA,
                Some((1232, ecs("2001:db8:aa:100::", 56))),
            ),
            "::1",
        ),
        (msg("www.example.test.", RecordType::AAAA, None), "10.0.0.1"),
        (msg("many.example.test.", RecordType::A, None), "10.0.0.1"),
        (
            msg(
                "many.example.test.",
                RecordType::A,
                Some((600, ecs("10.0.0.0", 8))),
            ),
            "10.0.0.1",
        ),
        (
            msg("many.example.test.", RecordType::A, Some((100, None))),
            "10.0.0.1",
        ),
    ];
    for (m, peer) in &cases {
        let mut q = m.to_vec().unwrap();
        for cd in [false, true] {
            q[3] = if cd { 0x10 } else { 0 };
            for t in [Transport::Udp, Transport::Tcp] {
                let (fast, full, _) = both(&e, &q, peer, t);
                let fast = fast.unwrap_or_else(|| panic!("fast path declined {m:?}"));
                assert_eq!(Some(fast), full, "{m:?} from {peer} over {t:?}");
            }
        }
    }
}

#[test]
fn everything_else_is_left_to_the_full_path_untouched() {
    let e = engine();
    let www = |edns| msg("www.example.test.", RecordType::A, edns);
    let mut cases: Vec<Vec<u8>> = [
        msg("static.example.test.", RecordType::A, None),
        msg("nowhere.example.test.", RecordType::A, None),
        msg("www.example.test.", RecordType::MX, None),
        msg("www.example.test.", RecordType::ANY, None),
        msg("www.other.test.", RecordType::A, None),
    ]
    .iter()
    .map(|m| m.to_vec().unwrap())
    .collect();
    let plain = www(None).to_vec().unwrap();
    let with_ecs = www(Some((1232, ecs("10.1.2.0", 24)))).to_vec().unwrap();
    // Trailing junk, a second question count, an answer record, opcode NOTIFY, a response.
    let mut junk = plain.clone();
    junk.push(0);
    cases.push(junk);
    for (byte, value) in [(5, 2), (7, 1), (2, 0x21), (2, 0x81)] {
        let mut q = plain.clone();
        q[byte] = value;
        cases.push(q);
    }
    // EDNS version 1 (BADVERS), host bits beyond the ECS prefix (FORMERR), scope in a query.
    let opt = plain.len();
    let mut v1 = with_ecs.clone();
    v1[opt + 6] = 1;
    cases.push(v1);
    let last = with_ecs.len() - 1;
    let mut host_bits = www(Some((1232, ecs("10.1.2.0", 23)))).to_vec().unwrap();
    host_bits[last] |= 1;
    cases.push(host_bits);
    let mut scoped = with_ecs.clone();
    scoped[last - 3] = 8;
    cases.push(scoped);
    // A compressed question name (legal, rare).
    let mut compressed = plain[..12].to_vec();
    compressed.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 12, 0, 1, 0, 1]);
    cases.push(compressed);
    for q in &cases {
        let (fast, _, untouched) = both(&e, q, "10.0.0.1", Transport::Udp);
        assert!(fast.is_none(), "fast path answered {q:02x?}");
        assert!(untouched, "counters moved for {q:02x?}");
    }
}
