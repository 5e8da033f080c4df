//! The Mux role's event loop over the in-memory writer (no root): agent reports arriving on
//! a real UDP socket take a VIP's only backend out and put it back, a reporting host falling
//! silent is noticed by the loop's own timer, new sections apply, and every change shows on
//! the readiness channel.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use tenbin_config::mux::MuxSection;
use tenbin_xdp::control::{Controller, MaglevRings};
use tenbin_xdp::mux::{start_on, MuxHandle, MuxReadiness};
use tenbin_xdp::report::{key, Report, ServiceHealth};
use tenbin_xdp::writer::MemWriter;
use tenbin_xdp::{TierContext, TierError};
use tokio::sync::watch;

const SECRET: &str = "mux loop test shared secret";

fn section(listen: SocketAddr, extra_vip: bool) -> MuxSection {
    let mut text = format!(
        r#"
[mux]
interface = "eth0"
report_listen = "{listen}"
report_key = "{SECRET}"
report_timeout = "300ms"
[[mux.vip]]
address = "10.0.0.1"
port = 80
protocol = "tcp"
forward = "ipip"
[[mux.vip.backend]]
address = "10.1.0.1"
mac = "02:be:00:00:00:01"
"#
    );
    if extra_vip {
        text.push_str(
            r#"
[[mux.vip]]
address = "10.0.0.2"
protocol = "udp"
forward = "gre"
[[mux.vip.backend]]
address = "10.1.0.2"
mac = "02:be:00:00:00:02"
"#,
        );
    }
    tenbin_config::Config::parse(&text, "test.toml")
        .unwrap()
        .mux
        .unwrap()
}

fn free_udp_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits (bounded) until the readiness satisfies `ok`.
async fn until(
    rx: &mut watch::Receiver<MuxReadiness>,
    what: &str,
    ok: impl Fn(&MuxReadiness) -> bool,
) {
    let waited = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|r| ok(r)))
        .await
        .map(|r| r.map(|_| ()));
    match waited {
        Ok(r) => r.expect("loop alive"),
        Err(_) => panic!("timed out waiting for: {what}; last {:?}", *rx.borrow()),
    }
}

fn healthy(r: &MuxReadiness, vip: &str) -> Option<bool> {
    let vip: IpAddr = vip.parse().unwrap();
    r.vips.iter().find(|v| v.addr == vip).map(|v| v.healthy)
}

fn send(to: SocketAddr, seq: u64, ok: bool) {
    let d = Report {
        seq,
        backend: "10.1.0.1".parse().unwrap(),
        services: vec![ServiceHealth {
            vip: "10.0.0.1".parse().unwrap(),
            port: 80,
            proto: 6,
            healthy: ok,
        }],
    }
    .encode(&key(SECRET.as_bytes()).unwrap())
    .unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&d, to)
        .unwrap();
}

fn start(listen: SocketAddr) -> MuxHandle<MemWriter> {
    start_on(
        Controller::new(MemWriter::new(), MaglevRings),
        section(listen, true),
        TierContext::default(),
        |_| {},
    )
    .expect("start")
}

#[tokio::test]
async fn reports_and_silence_move_readiness_and_sections_apply() {
    let listen = free_udp_port();
    let mux = start(listen);
    let mut ready = mux.readiness();
    until(&mut ready, "both VIPs healthy at start", |r| {
        r.attached && healthy(r, "10.0.0.1") == Some(true) && healthy(r, "10.0.0.2") == Some(true)
    })
    .await;

    send(listen, 1, false);
    until(&mut ready, "10.0.0.1 down on a failing report", |r| {
        healthy(r, "10.0.0.1") == Some(false)
    })
    .await;
    assert_eq!(healthy(&ready.borrow(), "10.0.0.2"), Some(true));
    // A replay of an older report is ignored, a garbage datagram refused: both counted.
    send(listen, 1, true);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"not a report", listen)
        .unwrap();

    send(listen, 2, true);
    until(&mut ready, "10.0.0.1 back on a passing report", |r| {
        healthy(r, "10.0.0.1") == Some(true)
    })
    .await;
    // No more reports: the loop's own timer marks the host stale after report_timeout.
    until(
        &mut ready,
        "10.0.0.1 down once its host falls silent",
        |r| healthy(r, "10.0.0.1") == Some(false),
    )
    .await;
    let counts = mux.loop_counts();
    assert_eq!(
        (
            counts.reports_accepted,
            counts.reports_ignored,
            counts.reports_refused
        ),
        (2, 1, 1)
    );

    mux.apply(section(listen, false)).expect("apply");
    until(&mut ready, "the removed VIP leaves the readiness", |r| {
        r.vips.len() == 1
    })
    .await;

    let mut moved = section(listen, false);
    moved.interface = "eth1".into();
    assert!(matches!(
        mux.apply(moved),
        Err(TierError::NeedsRestart("mux.interface"))
    ));
    let mut bad = section(listen, false);
    bad.vip[0].backend[0].mac = "nope".into();
    assert!(matches!(mux.apply(bad), Err(TierError::Config(_))));

    mux.shutdown().await;
    assert!(!ready.borrow().attached, "shutdown publishes detached");
}

#[tokio::test]
async fn a_new_report_address_is_bound_and_the_old_one_closed() {
    let (a, b) = (free_udp_port(), free_udp_port());
    let mux = start(a);
    let mut ready = mux.readiness();
    mux.apply(section(b, true)).expect("apply");
    send(b, 1, false);
    until(&mut ready, "a report on the new address counts", |r| {
        healthy(r, "10.0.0.1") == Some(false)
    })
    .await;
    // The old address is free again.
    UdpSocket::bind(a).expect("old report address released");
    mux.shutdown().await;
}

#[tokio::test]
async fn cancelling_the_context_stops_the_loop() {
    let ctx = TierContext::default();
    let mux = start_on(
        Controller::new(MemWriter::new(), MaglevRings),
        section(free_udp_port(), false),
        ctx.clone(),
        |_| {},
    )
    .unwrap();
    let mut ready = mux.readiness();
    ctx.cancel.cancel();
    until(
        &mut ready,
        "detached after the node's token is cancelled",
        |r| !r.attached,
    )
    .await;
}
