//! In-process cost of one query through `Engine::respond`, without sockets, for the query
//! shapes `bench/dns.sh` sends. `cargo run --release -p tenbin-dns --example respond_cost`

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use rand::rngs::mock::StepRng;
use std::time::Instant;
use tenbin_config::dns::DnsSection;
use tenbin_dns::{Engine, Transport};

const CONFIG: &str = concat!(
    include_str!("../tests/data/two_datacenters.toml"),
    r#"
[[zones]]
origin = "example.test."
soa = { mname = "ns1", rname = "hostmaster" }
records = [ { name = "static", type = "A", data = "192.0.2.10" } ]
[[gslb]]
name = "www.example.test."
pools = [
  { datacenter = "fra", addresses = ["198.51.100.1"] },
  { datacenter = "nrt", addresses = ["203.0.113.1"] },
]
"#
);

fn query(name: &str, ecs: bool) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    if ecs {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            "10.1.2.0".parse().unwrap(),
            24,
            0,
        )));
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn main() {
    let cfg: DnsSection = toml::from_str(CONFIG).unwrap();
    let engine = Engine::new(&cfg).unwrap();
    let peer = "127.0.0.1".parse().unwrap();
    let mut rng = StepRng::new(1, 0x9e37_79b9_7f4a_7c15);
    const N: u32 = 300_000;
    for (label, q) in [
        ("static A", query("static.example.test.", false)),
        ("static A + ECS", query("static.example.test.", true)),
        ("geo A", query("www.example.test.", false)),
        ("geo A + ECS", query("www.example.test.", true)),
    ] {
        let start = Instant::now();
        let mut bytes = 0;
        for _ in 0..N {
            bytes += engine
                .respond(&q, peer, Transport::Udp, &mut rng)
                .map_or(0, |r| r.len());
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(N);
        println!(
            "{label:<16} {ns:>8.0} ns/query ({} bytes)",
            bytes / N as usize
        );
    }
}
