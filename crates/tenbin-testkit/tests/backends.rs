//! The harness's own peers behave as documented: answers, records, stop and start.

use tenbin_testkit::backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nX-Probe: 1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn http_backend_answers_with_its_name_and_records() {
    let b = backend::http()
        .name("alpha")
        .route("/health", 503, "sick")
        .spawn()
        .await;
    let resp = http_get(b.addr(), "/x?y=1").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("alpha"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("x-backend: alpha"),
        "{resp}"
    );
    let resp = http_get(b.addr(), "/health").await;
    assert!(
        resp.starts_with("HTTP/1.1 503") && resp.ends_with("sick"),
        "{resp}"
    );
    assert_eq!(b.hits(), 2);
    let first = &b.requests()[0];
    assert_eq!(first.uri, "/x?y=1");
    assert_eq!(first.header("X-PROBE"), Some("1"));
    b.set_status(500);
    assert!(http_get(b.addr(), "/").await.starts_with("HTTP/1.1 500"));
}

#[tokio::test]
async fn http_backend_stops_and_starts_on_the_same_port() {
    let b = backend::http().name("a").spawn().await;
    let addr = b.addr();
    b.stop().await;
    assert!(!b.is_running());
    assert!(TcpStream::connect(addr).await.is_err());
    b.start().await;
    assert_eq!(b.addr(), addr);
    assert!(http_get(addr, "/").await.ends_with('a'));
}

#[tokio::test]
async fn http_backend_tunnels_upgrades_as_echo() {
    let b = backend::http().name("ws").spawn().await;
    let mut s = TcpStream::connect(b.addr()).await.unwrap();
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
}

#[tokio::test]
async fn tcp_echo_greets_echoes_and_half_closes() {
    let b = backend::tcp_echo().name("t1").greet().spawn().await;
    let mut s = TcpStream::connect(b.addr()).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"t1\nhello");
    assert_eq!(b.accepted(), 1);
    assert_eq!(b.received(), vec![b"hello".to_vec()]);
    b.stop().await;
    assert!(TcpStream::connect(b.addr()).await.is_err());
    b.start().await;
    assert!(TcpStream::connect(b.addr()).await.is_ok());
}

#[tokio::test]
async fn udp_echo_prefixes_its_name() {
    let b = backend::udp_echo().name("u").spawn().await;
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"abc", b.addr()).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = c.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"u:abc");
    assert_eq!(from, b.addr());
    assert_eq!(b.datagrams(), 1);
    assert!(b.peers().contains(&c.local_addr().unwrap()));
}
