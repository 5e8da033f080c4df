//! The query path end to end through `Engine::respond`: RFC 1035 / 2308 / 6891 / 7871 behaviour
//! and the size budget, with hickory building queries and reading answers.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use rand::rngs::mock::StepRng;
use std::net::IpAddr;
use std::sync::Arc;
use tenbin_config::dns::DnsSection;
use tenbin_core::ServerState;
use tenbin_dns::{Engine, HealthSnapshot, Transport};

fn config(extra: &str) -> DnsSection {
    let many: Vec<String> = (1..=60).map(|i| format!("\"192.0.2.{i}\"")).collect();
    let topology = include_str!("data/two_datacenters.toml");
    let text = format!(
        r#"
        max_answers = 60
        {extra}
        {topology}
        [[zones]]
        origin = "example.test."
        soa = {{ mname = "ns1", rname = "hostmaster", minimum = 30 }}
        records = [
          {{ name = "@", type = "NS", data = "ns1" }},
          {{ name = "ns1", type = "A", data = "192.0.2.53" }},
          {{ name = "alias", type = "CNAME", data = "ns1" }},
          {{ name = "out", type = "CNAME", data = "elsewhere.invalid." }},
          {{ name = "big", type = "TXT", data = "{big}" }},
          {{ name = "@", type = "MX", data = "10 mail" }},
        ]
        [[gslb]]
        name = "www.example.test."
        ttl = 20
        pools = [
          {{ datacenter = "fra", addresses = ["198.51.100.1", "2001:db8::1"] }},
          {{ datacenter = "nrt", addresses = ["203.0.113.1"] }},
        ]
        [[gslb]]
        name = "many.example.test."
        pools = [ {{ datacenter = "fra", addresses = [{many}] }} ]
        "#,
        big = "x".repeat(1000),
        many = many.join(","),
    );
    toml::from_str(&text).unwrap()
}

fn engine() -> Engine {
    Engine::new(&config("")).unwrap()
}

fn query(name: &str, t: RecordType) -> Message {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m
}

fn with_edns(mut m: Message, payload: u16, ecs: Option<ClientSubnet>) -> Message {
    let mut e = Edns::new();
    e.set_max_payload(payload);
    if let Some(c) = ecs {
        e.options_mut().insert(EdnsOption::Subnet(c));
    }
    m.set_edns(e);
    m
}

fn ask_raw(e: &Engine, bytes: &[u8], peer: &str, t: Transport) -> Option<Vec<u8>> {
    let mut rng = StepRng::new(7, 0x9e37_79b9_7f4a_7c15);
    e.respond(bytes, peer.parse().unwrap(), t, &mut rng)
}

fn ask(e: &Engine, m: &Message) -> (Message, usize) {
    ask_via(e, m, "10.1.1.1", Transport::Udp)
}

fn ask_via(e: &Engine, m: &Message, peer: &str, t: Transport) -> (Message, usize) {
    let raw = ask_raw(e, &m.to_vec().unwrap(), peer, t).expect("an answer");
    (Message::from_vec(&raw).unwrap(), raw.len())
}

fn ips(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn ecs_of(m: &Message) -> Option<ClientSubnet> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(c) => Some(*c),
        _ => None,
    }
}

#[test]
fn rfc1035_static_answer_is_authoritative_and_echoes_case() {
    let (r, _) = ask(&engine(), &query("NS1.Example.TEST.", RecordType::A));
    assert_eq!(r.response_code, ResponseCode::NoError);
    assert!(r.authoritative && r.recursion_desired && !r.recursion_available);
    assert_eq!(r.id, 0x1234);
    assert_eq!(r.queries[0].name().to_ascii(), "NS1.Example.TEST.");
    assert_eq!(r.answers[0].name.to_ascii(), "NS1.Example.TEST.");
    assert_eq!(ips(&r), vec!["192.0.2.53".parse::<IpAddr>().unwrap()]);
    assert!(r.edns.is_none(), "no OPT unless the query had one");
}

#[test]
fn rfc2308_nxdomain_and_nodata_carry_the_soa() {
    let e = engine();
    let (r, _) = ask(&e, &query("nope.example.test.", RecordType::A));
    assert_eq!(r.response_code, ResponseCode::NXDomain);
    assert!(r.authoritative && r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(r.authorities[0].ttl, 30);
    let (r, _) = ask(&e, &query("ns1.example.test.", RecordType::MX));
    assert_eq!(r.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    let (r, _) = ask(&e, &query("www.example.test.", RecordType::TXT));
    assert_eq!(
        (r.response_code, r.answers.len()),
        (ResponseCode::NoError, 0)
    );
}

#[test]
fn refused_outside_our_zones_and_for_other_classes() {
    let e = engine();
    let (r, _) = ask(&e, &query("example.org.", RecordType::A));
    assert_eq!(r.response_code, ResponseCode::Refused);
    assert!(!r.authoritative);
    let mut q = query("ns1.example.test.", RecordType::A);
    q.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(ask(&e, &q).0.response_code, ResponseCode::Refused);
}

#[test]
fn notimp_for_other_opcodes_formerr_for_malformed_and_silence_for_junk() {
    let e = engine();
    let mut raw = query("ns1.example.test.", RecordType::A).to_vec().unwrap();
    raw[2] = (raw[2] & 0x87) | (2 << 3); // STATUS
    let r = ask_raw(&e, &raw, "10.1.1.1", Transport::Udp).unwrap();
    assert_eq!(
        (r[0], r[1], r[3] & 0x0f, (r[2] >> 3) & 0x0f),
        (0x12, 0x34, 4, 2)
    );
    let raw = query("ns1.example.test.", RecordType::A).to_vec().unwrap();
    let r = ask_raw(&e, &raw[..raw.len() - 3], "10.1.1.1", Transport::Udp).unwrap();
    assert_eq!((r[2] & 0x80, r[3] & 0x0f), (0x80, 1));
    let mut two = query("ns1.example.test.", RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::NS,
    ));
    assert_eq!(ask(&e, &two).0.response_code, ResponseCode::FormErr);
    assert!(ask_raw(&e, &raw[..11], "10.1.1.1", Transport::Udp).is_none());
    let mut resp = raw.clone();
    resp[2] |= 0x80;
    assert!(
        ask_raw(&e, &resp, "10.1.1.1", Transport::Udp).is_none(),
        "never answer a response"
    );
    assert!(e.stats().dropped >= 2);
}

#[test]
fn cname_is_followed_inside_our_zones_only() {
    let e = engine();
    let (r, _) = ask(&e, &query("alias.example.test.", RecordType::A));
    assert_eq!(r.answers.len(), 2);
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(ips(&r), vec!["192.0.2.53".parse::<IpAddr>().unwrap()]);
    let (r, _) = ask(&e, &query("out.example.test.", RecordType::A));
    assert_eq!(
        (r.response_code, r.answers.len()),
        (ResponseCode::NoError, 1)
    );
    let (r, _) = ask(&e, &query("alias.example.test.", RecordType::CNAME));
    assert_eq!(r.answers.len(), 1);
}

#[test]
fn rfc6891_opt_is_echoed_and_badvers_above_version_zero() {
    let e = engine();
    let (r, _) = ask(
        &e,
        &with_edns(query("ns1.example.test.", RecordType::A), 4096, None),
    );
    let opt = r.edns.as_ref().expect("OPT echoed");
    assert_eq!((opt.max_payload(), opt.version()), (1232, 0));
    let mut q = with_edns(query("ns1.example.test.", RecordType::A), 4096, None);
    q.edns.as_mut().unwrap().set_version(1);
    let (r, _) = ask(&e, &q);
    assert_eq!(
        u16::from(r.response_code),
        16,
        "BADVERS (shares 16 with BADSIG)"
    );
    assert!(r.answers.is_empty());
    assert_eq!(r.edns.as_ref().unwrap().version(), 0);
    assert_eq!(e.stats().rcode_count(16), 1);
}

#[test]
fn gslb_answers_by_client_network_with_ttl_and_both_families() {
    let e = engine();
    let (r, _) = ask_via(
        &e,
        &query("www.example.test.", RecordType::A),
        "10.1.1.1",
        Transport::Udp,
    );
    assert_eq!(ips(&r), vec!["198.51.100.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(r.answers[0].ttl, 20);
    let (r, _) = ask_via(
        &e,
        &query("www.example.test.", RecordType::A),
        "172.16.0.9",
        Transport::Udp,
    );
    assert_eq!(ips(&r), vec!["203.0.113.1".parse::<IpAddr>().unwrap()]);
    let (r, _) = ask(&e, &query("www.example.test.", RecordType::AAAA));
    assert_eq!(ips(&r), vec!["2001:db8::1".parse::<IpAddr>().unwrap()]);
    let s = e.stats();
    assert_eq!(s.answers_per_dc, vec![("fra".into(), 2), ("nrt".into(), 1)]);
}

#[test]
fn rfc7871_s7_1_2_ecs_places_the_client_and_is_echoed_with_scope() {
    let e = engine();
    let ecs = ClientSubnet::new("172.16.5.0".parse().unwrap(), 24, 0);
    let q = with_edns(query("www.example.test.", RecordType::A), 1232, Some(ecs));
    let (r, _) = ask_via(&e, &q, "10.1.1.1", Transport::Udp);
    assert_eq!(ips(&r), vec!["203.0.113.1".parse::<IpAddr>().unwrap()]);
    let back = ecs_of(&r).expect("ECS echoed");
    assert_eq!(
        (back.addr(), back.source_prefix(), back.scope_prefix()),
        (ecs.addr(), 24, 12)
    );
    // A static answer does not depend on the client: scope 0.
    let q = with_edns(query("ns1.example.test.", RecordType::A), 1232, Some(ecs));
    assert_eq!(ecs_of(&ask(&e, &q).0).unwrap().scope_prefix(), 0);
    assert_eq!(e.stats().ecs_present, 2);
}

#[test]
fn rfc7871_s7_1_2_source_prefix_zero_uses_the_resolver_and_scope_zero() {
    let e = engine();
    let ecs = ClientSubnet::new("0.0.0.0".parse().unwrap(), 0, 0);
    let q = with_edns(query("www.example.test.", RecordType::A), 1232, Some(ecs));
    let (r, _) = ask_via(&e, &q, "172.16.0.1", Transport::Udp);
    assert_eq!(ips(&r), vec!["203.0.113.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(ecs_of(&r).unwrap().scope_prefix(), 0);
}

#[test]
fn rfc7871_s7_2_1_no_ecs_in_the_answer_without_ecs_in_the_query() {
    let q = with_edns(query("www.example.test.", RecordType::A), 1232, None);
    let (r, _) = ask(&engine(), &q);
    assert!(r.edns.is_some() && ecs_of(&r).is_none());
}

#[test]
fn rfc7871_s6_malformed_ecs_is_formerr() {
    let e = engine();
    // Host bits set beyond /16 (hickory would mask them silently; we must not).
    let ecs = ClientSubnet::new("10.1.1.0".parse().unwrap(), 24, 0);
    let mut raw = with_edns(query("www.example.test.", RecordType::A), 1232, Some(ecs))
        .to_vec()
        .unwrap();
    let n = raw.len();
    raw[n - 5] = 16; // source prefix 24 → 16 with 3 address bytes: wrong length
    let r = ask_raw(&e, &raw, "10.1.1.1", Transport::Udp).unwrap();
    assert_eq!(r[3] & 0x0f, 1);
    let ecs = ClientSubnet::new("10.1.1.0".parse().unwrap(), 24, 8);
    let q = with_edns(query("www.example.test.", RecordType::A), 1232, Some(ecs));
    assert_eq!(ask(&e, &q).0.response_code, ResponseCode::FormErr);
}

#[test]
fn size_512_without_edns_fits_the_gslb_answer_to_the_budget() {
    let e = engine();
    let (r, len) = ask(&e, &query("many.example.test.", RecordType::A));
    assert!(len <= 512, "{len}");
    assert!(!r.truncation);
    // header 12 + question 22 + n * (2 + 10 + 4) ≤ 512 → n = 29
    assert_eq!(r.answers.len(), 29);
}

#[test]
fn size_edns_budget_is_min_of_client_and_1232() {
    let e = engine();
    let q = with_edns(query("many.example.test.", RecordType::A), 4096, None);
    let (r, len) = ask(&e, &q);
    assert!(len <= 1232 && !r.truncation);
    assert_eq!(r.answers.len(), 60, "all 60 fit in 1232");
    let q = with_edns(query("many.example.test.", RecordType::A), 700, None);
    let (r, len) = ask(&e, &q);
    assert!(
        len <= 700 && r.answers.len() < 60 && r.answers.len() > 29,
        "{len}"
    );
    let (r, _) = ask_via(
        &e,
        &query("many.example.test.", RecordType::A),
        "10.1.1.1",
        Transport::Tcp,
    );
    assert_eq!(r.answers.len(), 60, "TCP has no 512 limit");
}

#[test]
fn size_an_rrset_that_cannot_fit_is_tc_with_an_empty_answer() {
    let e = engine();
    let (r, len) = ask(&e, &query("big.example.test.", RecordType::TXT));
    assert!(r.truncation && r.answers.is_empty() && len <= 512);
    assert_eq!(r.queries.len(), 1);
    let (r, _) = ask_via(
        &e,
        &query("big.example.test.", RecordType::TXT),
        "10.1.1.1",
        Transport::Tcp,
    );
    assert!(!r.truncation);
    assert_eq!(r.answers.len(), 1);
    assert_eq!(e.stats().truncated, 1);
}

#[test]
fn max_answers_caps_a_multi_value_answer() {
    let e = Engine::new(&{
        let mut c = config("");
        c.max_answers = 8;
        c
    })
    .unwrap();
    let q = with_edns(query("many.example.test.", RecordType::A), 1232, None);
    assert_eq!(ask(&e, &q).0.answers.len(), 8);
}

#[test]
fn health_and_reload_swap_answers() {
    let e = engine();
    e.set_health(Arc::new(
        HealthSnapshot::default().with_addr("198.51.100.1".parse().unwrap(), ServerState::Down),
    ));
    let (r, _) = ask(&e, &query("www.example.test.", RecordType::A));
    assert_eq!(ips(&r), vec!["203.0.113.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(r.answers[0].ttl, 10, "degraded TTL");
    let mut c = config("");
    c.gslb[0].pools[1].addresses = vec!["203.0.113.99".parse().unwrap()];
    e.reload(&c).unwrap();
    let (r, _) = ask(&e, &query("www.example.test.", RecordType::A));
    assert_eq!(
        ips(&r),
        vec!["203.0.113.99".parse::<IpAddr>().unwrap()],
        "health kept over reload"
    );
    c.networks[0].region = "nowhere".into();
    assert!(e.reload(&c).is_err());
    let (r, _) = ask(&e, &query("www.example.test.", RecordType::A));
    assert_eq!(ips(&r).len(), 1, "a bad reload keeps the old config");
}
