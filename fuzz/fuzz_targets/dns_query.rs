//! Fuzz the whole DNS query path: any bytes, over UDP and TCP, from two kinds of peer.
//! Invariants: no panic; an answer echoes the query id and sets QR; a UDP answer to a query
//! without EDNS fits 512 bytes; the fast path answers as the full path does; and the raw ECS
//! checker (`ecs::find`) agrees with hickory-proto's independent EDNS decoding wherever
//! hickory decodes the whole message.
#![no_main]

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
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
    ecs_agrees_with_hickory(data);
    if data.len() >= 4 {
        let _ = tenbin_dns::ecs::parse_option(data);
    }
});

/// hickory checks none of RFC 7871's rules, and keeps every option of an OPT record unless the
/// option list overruns the record, when it drops the whole list. So, where it decodes the
/// message: tenbin finds an ECS option exactly when hickory does, with the same address and
/// prefix, and refuses one only for a reason the raw bytes show, or when hickory kept no
/// option at all (it dropped a list that tenbin, reading in order, refuses).
fn ecs_agrees_with_hickory(data: &[u8]) {
    use tenbin_dns::ecs::{self, EcsError};
    let ours = ecs::find(data);
    let Ok(msg) = Message::from_vec(data) else {
        return;
    };
    let theirs: Vec<_> = msg
        .edns
        .iter()
        .flat_map(|e| e.options().get_all(EdnsCode::Subnet))
        .filter_map(|o| match o {
            EdnsOption::Subnet(s) => Some(*s),
            _ => None,
        })
        .collect();
    let dropped = msg
        .edns
        .as_ref()
        .is_some_and(|e| e.options().as_ref().is_empty());
    match ours {
        Err(_) if dropped => {}
        Ok(None) => assert!(theirs.is_empty(), "hickory saw ECS {theirs:?}, tenbin none"),
        Ok(Some(cs)) => {
            assert_eq!(
                theirs.len(),
                1,
                "tenbin saw one ECS option, hickory {theirs:?}"
            );
            let h = theirs[0];
            assert_eq!(
                (h.addr(), h.source_prefix()),
                (cs.addr, cs.source),
                "ECS differs"
            );
            assert_eq!(h.scope_prefix(), 0, "tenbin accepted a scope in a query");
        }
        Err(EcsError::Malformed) => panic!("hickory decoded a message tenbin calls malformed"),
        Err(EcsError::Duplicate) => assert!(theirs.len() >= 2, "duplicate of {theirs:?}"),
        Err(EcsError::ScopeInQuery(s)) => assert!(theirs.iter().any(|h| h.scope_prefix() == s)),
        Err(e) => assert!(!theirs.is_empty(), "{e} without an ECS option per hickory"),
    }
}
