//! Tiny loopback peers for the health tests: each binds 127.0.0.1:0, serves a bounded number
//! of connections in a background task and is dropped with the runtime.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// The most connections any peer serves: every test loop is bounded.
const MAX_CONNS: usize = 200;

/// An HTTP server answering every request with `response` (raw bytes, head and body), after
/// reading the request head. The requests it saw are kept, for tests that look at them.
pub struct HttpPeer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
}

pub async fn http(response: &str) -> HttpPeer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let response = response.as_bytes().to_vec();
    tokio::spawn(async move {
        for _ in 0..MAX_CONNS {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            seen.lock()
                .await
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = s.write_all(&response).await;
            let _ = s.shutdown().await;
        }
    });
    HttpPeer { addr, requests }
}

/// `HTTP/1.1 <status>` with a Content-Length body.
pub fn response(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// An agent that answers every connection with `line` (after reading what the checker sends
/// when `expect` is non-empty).
pub async fn agent(line: &str, expect: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let line = line.as_bytes().to_vec();
    tokio::spawn(async move {
        for _ in 0..MAX_CONNS {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            if !expect.is_empty() {
                let mut got = vec![0u8; expect.len()];
                if s.read_exact(&mut got).await.is_err() || got != expect {
                    continue;
                }
            }
            let _ = s.write_all(&line).await;
        }
    });
    addr
}

/// Accepts connections and never answers (a server stuck under load). Connections are held
/// until the runtime ends.
pub async fn silent() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..MAX_CONNS {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            held.push(s);
        }
    });
    addr
}

/// A loopback port nothing listens on: connecting is refused.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
    // dropped here: the port is closed (and, on loopback, not reused by the next bind at once)
}
