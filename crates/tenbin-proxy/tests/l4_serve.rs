//! The L4 tier started from a config file's text, as `tenbin run` does.

mod l4_common;

use l4_common::*;
use tenbin_proxy::l4::{pools, serve};
use tenbin_testkit::backend;
use tokio::net::UdpSocket;

#[tokio::test]
async fn tcp_and_udp_frontends_start_from_config_and_stop() {
    let t1 = backend::tcp_echo().name("t1").greet().spawn().await;
    let t2 = backend::tcp_echo().name("t2").greet().spawn().await;
    let u = backend::udp_echo().name("u").spawn().await;
    let text = format!(
        r#"
[[frontend]]
name = "l4"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "tcp"

[[frontend]]
name = "dgram"
bind = ["127.0.0.1:0"]
mode = "udp"
default_pool = "udp"

[[pool]]
name = "tcp"
algorithm = "wrr"
[[pool.server]]
name = "t1"
address = "{}"
weight = 1
[[pool.server]]
name = "t2"
address = "{}"
weight = 3

[[pool]]
name = "udp"
[[pool.server]]
name = "u"
address = "{}"
"#,
        t1.addr(),
        t2.addr(),
        u.addr()
    );
    let config = tenbin_config::Config::parse(&text, "l4.toml").unwrap();
    let pools = pools(&config);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let listeners = serve(&config, &pools, rx).await.unwrap();
    assert_eq!(listeners.len(), 2);
    let tcp = listeners.iter().find(|l| l.frontend == "l4").unwrap().addr;
    let udp = listeners
        .iter()
        .find(|l| l.frontend == "dgram")
        .unwrap()
        .addr;

    let mut t = tenbin_testkit::tally::Tally::new();
    for _ in 0..8 {
        t.add(who([127, 0, 0, 1], tcp).await.unwrap());
    }
    assert_eq!((t.count("t1"), t.count("t2")), (2, 6), "{t}");

    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"q", udp).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = tokio::time::timeout(GUARD, c.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"u:q");

    tx.send(true).unwrap();
    for l in listeners {
        tokio::time::timeout(GUARD, l.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    assert!(tokio::net::TcpStream::connect(tcp).await.is_err());
}

#[tokio::test]
async fn an_empty_config_starts_nothing() {
    let config = tenbin_config::Config::default();
    let pools = pools(&config);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    assert!(serve(&config, &pools, rx).await.unwrap().is_empty());
}
