//! Config reload while queries flow: every query is answered, from the old or the new config,
//! never dropped.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::HashSet;
use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tenbin_config::dns::DnsSection;
use tenbin_dns::{Engine, HealthSnapshot, Sockets};

fn config(addr: &str) -> DnsSection {
    toml::from_str(&format!(
        r#"
        listen = ["127.0.0.1:0"]
        [[datacenters]]
        name = "fra"
        [[zones]]
        origin = "example.test."
        soa = {{ mname = "ns1", rname = "hostmaster" }}
        [[gslb]]
        name = "www.example.test."
        pools = [ {{ datacenter = "fra", addresses = ["{addr}"] }} ]
        "#
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_queries_drops_nothing() {
    let (a, b) = (config("198.51.100.1"), config("198.51.100.2"));
    let engine = Arc::new(Engine::new(&a).unwrap());
    let sockets = Sockets::bind(&a.listen, 2).unwrap();
    let addr = sockets.udp[0].local_addr().unwrap();
    let (_health, rx) = tokio::sync::watch::channel(Arc::new(HealthSnapshot::default()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tenbin_dns::serve(engine.clone(), rx, sockets, async {
        let _ = stop_rx.await;
    }));

    let done = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (engine, done) = (engine.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !done.load(Ordering::Relaxed) && n < 100_000 {
                engine
                    .reload(if n.is_multiple_of(2) { &b } else { &a })
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let client = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut seen = HashSet::new();
        let mut buf = [0u8; 512];
        for id in 0..2000u16 {
            let mut m = Message::new(id, MessageType::Query, OpCode::Query);
            m.add_query(Query::query(
                Name::from_ascii("www.example.test.").unwrap(),
                RecordType::A,
            ));
            sock.send_to(&m.to_vec().unwrap(), addr).unwrap();
            let n = sock.recv(&mut buf).expect("every query is answered");
            let r = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!((r.id, r.response_code), (id, ResponseCode::NoError));
            match &r.answers[0].data {
                RData::A(a) => seen.insert(IpAddr::V4(a.0)),
                other => panic!("{other:?}"),
            };
        }
        seen
    });
    let seen = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    done.store(true, Ordering::Relaxed);
    let reloads = reloader.join().unwrap();
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    assert!(reloads > 10, "{reloads} reloads happened");
    assert_eq!(seen.len(), 2, "answers came from both configs: {seen:?}");
    assert_eq!(engine.stats().rcode_count(0), 2000);
}
