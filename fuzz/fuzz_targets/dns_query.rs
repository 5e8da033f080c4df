//! Fuzz the whole DNS query path: any bytes, over UDP and TCP, from two kinds of peer.
//! Invariants: no panic; an answer echoes the query id and sets QR; a UDP answer to a query
//! without EDNS fits 512 bytes; the raw ECS checker agrees with itself on the same bytes.
#![no_main]

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use rand::rngs::mock::StepRng;
use std::sync::OnceLock;
use tenbin_dns::{Engine, Transport};

const CONFIG: &str = r#"
max_answers = 40
[[datacenters]]
name = "fra"
[[datacenters]]
name = "nrt"
[[regions]]
name = "eu"
prefer = ["fra", "nrt"]
[[networks]]
cidr = "10.0.0.0/8"
region = "eu"
[[zones]]
origin = "example.test."
soa = { mname = "ns1", rname = "hostmaster" }
records = [
  { name = "@", type = "NS", data = "ns1" },
  { name = "ns1", type = "A", data = "192.0.2.53" },
  { name = "alias", type = "CNAME", data = "ns1" },
  { name = "loop", type = "CNAME", data = "loop" },
  { name = "t", type = "TXT", data = "some text" },
]
[[gslb]]
name = "www.example.test."
pools = [
  { datacenter = "fra", addresses = ["198.51.100.1", "2001:db8::1", "198.51.100.2", "198.51.100.3"] },
  { datacenter = "nrt", addresses = ["203.0.113.1"] },
]
"#;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(&toml::from_str(CONFIG).expect("config")).expect("engine"))
}

fuzz_target!(|data: &[u8]| {
    let e = engine();
    let mut rng = StepRng::new(data.len() as u64, 0x9e37_79b9_7f4a_7c15);
    for (peer, t) in [("10.1.1.1", Transport::Udp), ("192.0.2.9", Transport::Tcp)] {
        if let Some(r) = e.respond(data, peer.parse().unwrap(), t, &mut rng) {
            assert!(r.len() >= 12);
            assert_eq!(&r[..2], &data[..2], "id echoed");
            assert!(r[2] & 0x80 != 0, "QR set");
            let no_edns = Message::from_vec(data).is_ok_and(|m| m.edns.is_none());
            if t == Transport::Udp && no_edns {
                assert!(r.len() <= 512, "{} bytes without EDNS", r.len());
            }
        }
    }
    // Differential: where the fast path answers, the full path answers the same bytes.
    for t in [Transport::Udp, Transport::Tcp] {
        let peer = "10.1.1.1".parse().unwrap();
        let seed = || StepRng::new(data.len() as u64, 0x9e37_79b9_7f4a_7c15);
        if let Some(fast) = e.respond_fast(data, peer, t, &mut seed()) {
            assert_eq!(
                Some(fast),
                e.respond_full(data, peer, t, &mut seed()),
                "fast != full"
            );
        }
    }
    let a = tenbin_dns::ecs::find(data);
    assert_eq!(a, tenbin_dns::ecs::find(data));
    if data.len() >= 4 {
        let _ = tenbin_dns::ecs::parse_option(data);
    }
});
