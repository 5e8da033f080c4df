//! Loopback harness for the HTTP proxy tests: named backends and a proxy in front of them.
//!
//! A backend answers every request with its name in the body and in `x-server`, echoes the
//! request headers it saw as `x-echo-<name>` response headers, and understands a few paths:
//! `/delay/<ms>` answers late, `/hang` never answers, `/gate` answers once the test calls
//! [`Backend::open_gate`] (a request held for exactly as long as the test needs, whatever the
//! machine's load), `/status/<code>` answers with that code, `/ws` accepts an Upgrade and then
//! echoes bytes.
#![allow(dead_code)]

pub mod raw;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tenbin_core::pick::Algorithm;
use tenbin_proxy::http::{self as l7, AccessLogSink, HttpFrontend, RuleSpec};
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// A running loopback backend.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    conns: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    gate: watch::Sender<bool>,
}

impl Backend {
    pub async fn spawn(name: &str) -> Backend {
        Self::spawn_delayed(name, Duration::ZERO).await
    }

    /// A backend that waits `delay` before every answer (a slow server).
    pub async fn spawn_delayed(name: &str, delay: Duration) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = oneshot::channel::<()>();
        let (gate, gate_rx) = watch::channel(false);
        let (n, h, c) = (name.to_string(), Arc::clone(&hits), Arc::clone(&conns));
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = &mut rx => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (n, h, g) = (n.clone(), Arc::clone(&h), gate_rx.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (n, h, g) = (n.clone(), Arc::clone(&h), g.clone());
                        async move {
                            tokio::time::sleep(delay).await;
                            answer(n, h, g, req).await
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            name: name.into(),
            addr,
            hits,
            conns,
            stop: Some(tx),
            gate,
        }
    }

    /// Lets every request to `/gate`, held or still to come, be answered.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    /// Stops accepting; the port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn answer(
    name: String,
    hits: Arc<AtomicUsize>,
    mut gate: watch::Receiver<bool>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let mut builder = Response::builder().header("x-server", &name);
    for (k, v) in req.headers() {
        builder = builder.header(format!("x-echo-{k}"), v);
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    } else if path == "/hang" {
        std::future::pending::<()>().await;
    } else if path == "/gate" {
        // The sender lives as long as the backend; a dropped one also lets the request go.
        let _ = gate.wait_for(|open| *open).await;
    } else if let Some(code) = path.strip_prefix("/status/") {
        let code = code.parse().unwrap_or(500);
        return Ok(builder.status(code).body(Full::new(name.into())).unwrap());
    } else if path == "/ws" {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Ok(builder
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    let body = req.into_body().collect().await.map(|c| c.to_bytes());
    let len = body.map(|b| b.len()).unwrap_or(0);
    Ok(builder
        .header("x-body-len", len)
        .header("server", "backend")
        .body(Full::new(name.into()))
        .unwrap())
}

/// A pool over `backends`, all active.
pub fn pool(name: &str, algorithm: Algorithm, backends: &[&Backend]) -> Pool {
    let servers = backends
        .iter()
        .map(|b| ServerConfig::new(b.name.clone(), b.addr))
        .collect();
    Pool::with_seed(PoolConfig::new(name, algorithm, servers), 7)
}

pub fn frontend(rules: &[RuleSpec], default: &str, pools: Vec<Pool>) -> HttpFrontend {
    HttpFrontend::new("test", rules, Some(default), pools).unwrap()
}

/// A running proxy; dropping it stops accepting.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Proxy {
    pub async fn spawn(fe: HttpFrontend) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(l7::serve(listener, fe, async {
            let _ = rx.await;
        }));
        Proxy { addr, _stop: tx }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
> {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new())
}

/// Sends a request and returns status, headers and body text.
pub async fn send(req: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String) {
    let resp = client().request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

pub async fn get(url: &str) -> (StatusCode, http::HeaderMap, String) {
    send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

/// How many of `n` GETs to `url` each backend served, by name.
pub async fn spread(url: &str, n: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for _ in 0..n {
        let (status, _, body) = get(url).await;
        assert_eq!(status, StatusCode::OK, "body: {body}");
        *out.entry(body).or_default() += 1;
    }
    out
}

/// Collects access log lines.
#[derive(Debug, Default)]
pub struct Lines(pub Mutex<Vec<String>>);

impl AccessLogSink for Lines {
    fn write_line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}
