//! The inline upstream HTTP/1 path (`http::upstream`) seen from raw sockets: what a server
//! receives, and kept-alive connections the server closed while idle.

mod http_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_support::raw::{exchange, Recorder};
use http_support::*;
use tenbin_core::pick::Algorithm;
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[tokio::test]
async fn the_server_gets_an_origin_form_target_and_the_client_host() {
    let rec = Recorder::spawn().await;
    let pool = Pool::with_seed(
        PoolConfig::new(
            "app",
            Algorithm::RoundRobin,
            vec![ServerConfig::new("r", rec.addr)],
        ),
        7,
    );
    let proxy = Proxy::spawn(frontend(&[], "app", vec![pool])).await;
    let (resp, _s) = exchange(
        proxy.addr,
        b"GET /a/b?c=d HTTP/1.1\r\nhost: example.test\r\n\r\n",
    )
    .await;
    assert_eq!(resp.map(|r| r.status), Some(200));
    let seen = rec.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].line, "GET /a/b?c=d HTTP/1.1");
    assert_eq!(seen[0].all("host"), vec!["example.test"]);
    rec.assert_unambiguous();
}

/// A server that answers one request per connection with a keep-alive response, then closes
/// the connection and reports it closed.
async fn close_after_one(closed: mpsc::UnboundedSender<()>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&conns);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                let _ = s.write_all(resp).await;
                let _ = s.shutdown().await;
                drop(s);
                let _ = closed.send(());
            });
        }
    });
    (addr, conns)
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_not_reused() {
    let (tx, mut closed) = mpsc::unbounded_channel();
    let (addr, conns) = close_after_one(tx).await;
    let pool = Pool::with_seed(
        PoolConfig::new(
            "app",
            Algorithm::RoundRobin,
            vec![ServerConfig::new("c", addr)],
        ),
        7,
    );
    let mut fe = frontend(&[], "app", vec![pool]);
    // No retry could hide a request sent on a dead connection.
    fe.retries = 0;
    let proxy = Proxy::spawn(fe).await;
    for i in 0..3 {
        // POST: not idempotent, so a request lost on a closed connection would be a 502.
        let (resp, _s) = exchange(
            proxy.addr,
            b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(resp.map(|r| r.status), Some(200), "request {i}");
        closed.recv().await.unwrap();
    }
    assert_eq!(conns.load(Ordering::SeqCst), 3);
}
