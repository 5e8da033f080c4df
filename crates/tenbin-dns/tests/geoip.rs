//! `[dns.geoip]` end to end through `Engine::respond`, over the committed synthetic database
//! tests/data/geoip-test.mmdb (written by tests/data/make_geoip.py; its networks are listed
//! there). The network map is consulted first, the database next, the default region last;
//! the ECS scope covers the database network the client is in.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use rand::rngs::mock::StepRng;
use tenbin_config::dns::DnsSection;
use tenbin_dns::{Engine, Transport};

const FRA: &str = "198.51.100.1";
const NRT: &str = "203.0.113.1";

fn section(db: &str) -> DnsSection {
    let text = format!(
        r#"
        default_region = "eu"
        geoip = {{ db = "{db}", regions = {{ JP = "asia", EU = "eu", SA = "asia" }} }}
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
        [[zones]]
        origin = "example.test."
        soa = {{ mname = "ns1", rname = "hostmaster" }}
        [[gslb]]
        name = "www.example.test."
        pools = [
          {{ datacenter = "fra", addresses = ["{FRA}", "2001:db8:f::1"] }},
          {{ datacenter = "nrt", addresses = ["{NRT}", "2001:db8:e::1"] }},
        ]
        "#
    );
    toml::from_str(&text).unwrap()
}

fn db() -> String {
    format!("{}/tests/data/geoip-test.mmdb", env!("CARGO_MANIFEST_DIR"))
}

/// Asks for www's A records as `peer`, with ECS `subnet` (`addr/len`) if given; returns the
/// addresses and the scope echoed.
fn www(e: &Engine, peer: &str, subnet: Option<&str>) -> (Vec<String>, Option<u8>) {
    let mut q = Message::new(7, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(
        Name::from_ascii("www.example.test.").unwrap(),
        RecordType::A,
    ));
    let mut edns = Edns::new();
    if let Some((addr, len)) = subnet.and_then(|s| s.split_once('/')) {
        let ecs = ClientSubnet::new(addr.parse().unwrap(), len.parse().unwrap(), 0);
        edns.options_mut().insert(EdnsOption::Subnet(ecs));
    }
    q.set_edns(edns);
    let mut rng = StepRng::new(1, 1);
    let raw = e
        .respond(
            &q.to_vec().unwrap(),
            peer.parse().unwrap(),
            Transport::Udp,
            &mut rng,
        )
        .expect("an answer");
    let r = Message::from_vec(&raw).unwrap();
    let addrs = r
        .answers
        .iter()
        .filter_map(|rr| match &rr.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    let scope = match r.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
        Some(EdnsOption::Subnet(c)) => Some(c.scope_prefix()),
        _ => None,
    };
    (addrs, scope)
}

#[test]
fn ecs_subnets_are_placed_by_the_database_after_the_network_map() {
    let e = Engine::new(&section(&db())).unwrap();
    let resolver = "192.0.2.53";
    // JP → asia → nrt, scope = the database's /24.
    assert_eq!(
        www(&e, resolver, Some("127.0.4.0/24")),
        (vec![NRT.into()], Some(24))
    );
    // DE: the country names no region, its continent (EU) does.
    assert_eq!(
        www(&e, resolver, Some("127.0.5.0/24")),
        (vec![FRA.into()], Some(24))
    );
    // 10.9/16 is JP in the database, but the network map's 10/8 (eu) wins, with its scope.
    assert_eq!(
        www(&e, resolver, Some("10.9.1.0/24")),
        (vec![FRA.into()], Some(8))
    );
    // A /25 in the database: the scope is longer than the source prefix.
    assert_eq!(
        www(&e, resolver, Some("203.0.113.0/24")),
        (vec![FRA.into()], Some(25))
    );
    // Mapped by nothing (AQ/AN): the default region, still scoped to the database network.
    assert_eq!(
        www(&e, resolver, Some("127.0.7.0/24")),
        (vec![FRA.into()], Some(24))
    );
}

#[test]
fn without_ecs_the_resolver_address_is_placed_and_ipv6_works_too() {
    let e = Engine::new(&section(&db())).unwrap();
    assert_eq!(www(&e, "198.51.100.77", None), (vec![NRT.into()], None));
    assert_eq!(www(&e, "127.0.5.5", None).0, vec![FRA.to_string()]);
    assert_eq!(
        www(&e, "::1", Some("2001:db8:1:ab00::/56")),
        (vec![NRT.into()], Some(48))
    );
    assert_eq!(
        www(&e, "::1", Some("2001:db8:2::/48")).0,
        vec![FRA.to_string()]
    );
}

#[test]
fn a_missing_database_fails_the_load_and_a_reload_keeps_the_old_one() {
    let err = Engine::new(&section("/nonexistent/geo.mmdb")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/geo.mmdb"), "{err}");
    let e = Engine::new(&section(&db())).unwrap();
    assert!(e.reload(&section("/nonexistent/geo.mmdb")).is_err());
    assert_eq!(
        www(&e, "127.0.0.1", Some("127.0.4.0/24")).0,
        vec![NRT.to_string()]
    );
}
