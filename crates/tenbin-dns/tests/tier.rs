//! The DNS tier's façade (`tenbin_dns::tier`): started from a section, it answers on its
//! sockets, checks its VIPs (a TCP check of a loopback listener this test opens and closes)
//! and publishes them and its readiness on the health bus, takes a new `listen` by moving
//! its sockets, refuses zones that do not compile (the old ones keep answering), and leaves
//! the bus on shutdown.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tenbin_config::dns::DnsSection;
use tenbin_core::ServerState;
use tenbin_dns::tier::{self, DnsContext, TierError};
use tenbin_health::bus::{HealthKey, Tier};

fn section(listen: &str, check_port: u16, zone: &str) -> DnsSection {
    toml::from_str(&format!(
        r#"
        listen = ["{listen}"]
        [[datacenters]]
        name = "fra"
        [[zones]]
        origin = "{zone}"
        soa = {{ mname = "ns1", rname = "hostmaster" }}
        [[gslb]]
        name = "www.example.test."
        check = {{ kind = "tcp", port = {check_port}, interval = "50ms", jitter = 0.0, rise = 1, fall = 1 }}
        pools = [ {{ datacenter = "fra", addresses = ["127.0.0.1"] }} ]
        "#
    ))
    .unwrap()
}

/// The rcode of an A query for www sent to `server`, or None without an answer.
fn ask(server: SocketAddr) -> Option<u16> {
    let sock = UdpSocket::bind((server.ip(), 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("www.example.test.").unwrap(),
        RecordType::A,
    ));
    sock.send_to(&m.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).ok()?;
    Some(u16::from(Message::from_vec(&buf[..n]).ok()?.response_code))
}

async fn ask_async(server: SocketAddr) -> Option<u16> {
    tokio::task::spawn_blocking(move || ask(server))
        .await
        .unwrap()
}

/// Waits (bounded) until the bus holds `state` for the checked VIP.
async fn vip_state(ctx: &DnsContext, state: ServerState) {
    let key = HealthKey::Vip {
        datacenter: Arc::from("fra"),
        addr: IpAddr::from([127, 0, 0, 1]),
    };
    let mut rx = ctx.bus.subscribe();
    tokio::time::timeout(Duration::from_secs(10), async {
        while rx.borrow_and_update().entries.get(&key).map(|e| e.state) != Some(state) {
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the VIP never turned {state:?}: {:?}", rx.borrow()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facade_answers_checks_its_vips_moves_sockets_and_leaves_the_bus() {
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    let ctx = DnsContext::default();
    let mut dns = tier::start(&section("127.0.0.1:0", port, "example.test."), &ctx).unwrap();
    let node = ctx.bus.node();
    assert!(node.borrow().tier(Tier::Dns).unwrap().ready, "answering");
    let first = dns.stats().bound[0];
    assert_eq!(ask_async(first).await, Some(0), "NOERROR");

    vip_state(&ctx, ServerState::Active).await;
    drop(service);
    vip_state(&ctx, ServerState::Down).await;
    let ip = IpAddr::from([127, 0, 0, 1]);
    // The snapshot follows the bus on the tier's own task.
    tokio::time::timeout(Duration::from_secs(10), async {
        while dns.stats().health.state("fra", ip) != ServerState::Down {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the answered snapshot has the VIP down");

    // A new listen moves the sockets: the old address stops answering, the new one answers.
    dns.apply(&section("127.0.0.2:0", port, "example.test."))
        .unwrap();
    let moved = dns.stats().bound[0];
    assert_eq!(moved.ip(), IpAddr::from([127, 0, 0, 2]));
    assert_eq!(ask_async(moved).await, Some(0));
    assert_eq!(ask_async(first).await, None, "the old socket is closed");

    // Zones that do not compile change nothing.
    let bad = section("127.0.0.2:0", port, "not a name..");
    assert!(matches!(dns.apply(&bad), Err(TierError::Reload(_))));
    assert_eq!(ask_async(moved).await, Some(0));

    dns.shutdown();
    assert!(
        node.borrow().tier(Tier::Dns).is_none(),
        "the tier left the bus"
    );
    assert!(ctx.bus.snapshot().tier(Tier::Dns).next().is_none());
}
