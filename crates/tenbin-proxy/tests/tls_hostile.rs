//! TLS against hostile clients and unreachable servers, with raw sockets on 127.0.0.1 and
//! paused time (everything runs in-process): a client that sends nothing or half a ClientHello
//! is closed after the hello/handshake timeout by passthrough, TCP offload and HTTPS, and a
//! server whose accept queue drops SYNs fails passthrough's connect after its timeout.

mod tls_common;

use std::net::SocketAddr;
use std::time::Duration;

use tenbin_core::pick::Algorithm;
use tenbin_proxy::http::{HttpFrontend, HttpService};
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tenbin_proxy::tls::passthrough::{Passthrough, Route};
use tenbin_proxy::tls::server::serve_https;
use tenbin_proxy::tls::{terminate_tcp, OffloadTimeouts};
use tls_common::{passthrough_front, Ca};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A ClientHello record for `sni`, byte by byte: TLS 1.2 legacy version, one TLS 1.3 suite,
/// the server_name extension only.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    ext.extend_from_slice(&0u16.to_be_bytes()); // server_name
    ext.extend_from_slice(&(name.len() as u16 + 5).to_be_bytes());
    ext.extend_from_slice(&(name.len() as u16 + 3).to_be_bytes());
    ext.push(0); // host_name
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![1u8]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![22u8, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

/// What a hostile client sends: nothing, the record header only, or half the hello.
fn partial_hellos() -> Vec<Vec<u8>> {
    let h = client_hello("shop.test");
    vec![Vec::new(), h[..5].to_vec(), h[..h.len() / 2].to_vec()]
}

/// Sends `bytes`, then waits for the server to close; returns how long that took (virtual).
async fn closed_after(addr: SocketAddr, bytes: &[u8]) -> Duration {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(bytes).await.unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    // Bounded: with no timeout on the server side this hour passes (virtually) and fails.
    let read = tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    read.await
        .expect("the server held a stalled client for an hour");
    t0.elapsed()
}

fn pool(addr: SocketAddr) -> Pool {
    Pool::new(PoolConfig::new(
        "p",
        Algorithm::RoundRobin,
        vec![ServerConfig::new("s", addr)],
    ))
}

/// Every partial hello is closed no sooner than `limit`, and none reached `server`.
async fn stalled_clients_closed(addr: SocketAddr, limit: Duration, server: &std::net::TcpListener) {
    for bytes in partial_hellos() {
        let took = closed_after(addr, &bytes).await;
        assert!(
            took >= limit,
            "{} bytes: closed after {took:?}",
            bytes.len()
        );
    }
    assert_eq!(
        server.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock)
    );
}

#[tokio::test(start_paused = true)]
async fn passthrough_closes_a_client_that_stalls_its_client_hello() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let mut pass = Passthrough::new(
        vec![Route::new("shop.test", pool(server.local_addr().unwrap()))],
        None,
    );
    pass.hello_timeout = Duration::from_secs(10);
    let (addr, _stop) = passthrough_front(pass).await;
    stalled_clients_closed(addr, Duration::from_secs(10), &server).await;
}

/// A listener whose accept queue is full: with `listen(0)` Linux queues one connection and
/// drops SYNs while it waits, so a connect to it hangs (no timing involved).
async fn full_backlog() -> (tokio::net::TcpListener, TcpStream) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(0).unwrap();
    let held = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    (l, held)
}

#[tokio::test(start_paused = true)]
async fn passthrough_gives_up_on_a_server_that_never_accepts() {
    let (server, _held) = full_backlog().await;
    let mut pass = Passthrough::new(
        vec![Route::new("shop.test", pool(server.local_addr().unwrap()))],
        None,
    );
    pass.hello_timeout = Duration::from_secs(3600);
    pass.connect_timeout = Duration::from_secs(3);
    let (addr, _stop) = passthrough_front(pass).await;
    let took = closed_after(addr, &client_hello("shop.test")).await;
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(3600),
        "closed after {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn termination_closes_a_client_that_stalls_its_handshake() {
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    backend.set_nonblocking(true).unwrap();
    let ca = Ca::new("test ca");
    let config = ca
        .leaf(&["shop.test"])
        .server_config(&[&rustls::version::TLS13]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, rx) = oneshot::channel::<()>();
    let timeouts = OffloadTimeouts {
        handshake: Duration::from_secs(10),
        connect: Duration::from_secs(3),
    };
    let pool = pool(backend.local_addr().unwrap());
    tokio::spawn(terminate_tcp(
        listener,
        config,
        pool,
        timeouts,
        async move {
            let _ = rx.await;
        },
    ));
    stalled_clients_closed(addr, Duration::from_secs(10), &backend).await;
}

#[tokio::test(start_paused = true)]
async fn https_closes_a_client_that_stalls_its_handshake() {
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    backend.set_nonblocking(true).unwrap();
    let p = pool(backend.local_addr().unwrap());
    let fe = HttpFrontend::new("https", &[], Some("p"), vec![p]).unwrap();
    let config = Ca::new("test ca")
        .leaf(&["shop.test"])
        .server_config(&[&rustls::version::TLS13]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, rx) = oneshot::channel::<()>();
    let limit = Duration::from_secs(10);
    tokio::spawn(serve_https(
        listener,
        HttpService::new(fe),
        config,
        limit,
        async move {
            let _ = rx.await;
        },
    ));
    stalled_clients_closed(addr, limit, &backend).await;
}
