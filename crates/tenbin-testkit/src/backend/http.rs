//! An HTTP/1.1 + h2c backend (hyper) that answers with its name, records every request, can
//! be slowed down, and turns `Upgrade` requests into a byte echo tunnel (WebSocket tests).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{bind_tcp, loopback, Lifecycle};

pub fn http() -> HttpBuilder {
    HttpBuilder {
        name: "http".into(),
        addr: loopback(),
        status: 200,
        delay: Duration::ZERO,
        routes: HashMap::new(),
    }
}

#[derive(Clone, Debug)]
pub struct HttpBuilder {
    name: String,
    addr: SocketAddr,
    status: u16,
    delay: Duration,
    routes: HashMap<String, (u16, String)>,
}

impl HttpBuilder {
    /// The body of default answers and the `x-backend` header of every answer.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Status of default answers (200 unless set).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Wait this long (tokio time) before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answer requests for exactly `path` with `status` and `body` instead of the name.
    pub fn route(mut self, path: impl Into<String>, status: u16, body: impl Into<String>) -> Self {
        self.routes.insert(path.into(), (status, body.into()));
        self
    }

    pub async fn spawn(self) -> HttpBackend {
        let listener = bind_tcp(self.addr).expect("bind http backend");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(HttpState {
            name: self.name,
            status: Mutex::new(self.status),
            delay: Mutex::new(self.delay),
            routes: Mutex::new(self.routes),
            hits: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        HttpBackend {
            life: Lifecycle::new(addr, task),
            state,
        }
    }
}

/// What the backend saw of one request.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub uri: String,
    pub version: String,
    /// Header names in lower case, in arrival order, repeated names kept.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub peer: SocketAddr,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct HttpState {
    name: String,
    status: Mutex<u16>,
    delay: Mutex<Duration>,
    routes: Mutex<HashMap<String, (u16, String)>>,
    hits: AtomicUsize,
    connections: AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
}

#[derive(Debug)]
pub struct HttpBackend {
    life: Lifecycle,
    state: Arc<HttpState>,
}

impl HttpBackend {
    pub fn addr(&self) -> SocketAddr {
        self.life.addr
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Requests answered since spawn.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted since spawn (keep-alive reuse shows as hits > connections).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.state.requests).last().cloned()
    }

    /// Changes the status of default answers while running (e.g. start failing with 500).
    pub fn set_status(&self, status: u16) {
        *lock(&self.state.status) = status;
    }

    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }

    pub fn set_route(&self, path: impl Into<String>, status: u16, body: impl Into<String>) {
        lock(&self.state.routes).insert(path.into(), (status, body.into()));
    }

    pub fn is_running(&self) -> bool {
        self.life.is_running()
    }

    /// Closes the listener and every connection; the port is free when this returns.
    pub async fn stop(&self) {
        self.life.stop().await;
    }

    /// Listens on the same address again.
    pub async fn start(&self) {
        if self.is_running() {
            return;
        }
        let listener = bind_tcp(self.life.addr).expect("rebind http backend");
        self.life
            .set(tokio::spawn(serve(listener, self.state.clone())));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve(listener: TcpListener, state: Arc<HttpState>) {
    let mut conns = JoinSet::new();
    while let Ok((stream, peer)) = listener.accept().await {
        while conns.try_join_next().is_some() {}
        state.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| handle(req, state.clone(), peer));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    mut req: Request<Incoming>,
    state: Arc<HttpState>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let upgrade = req.headers().get(UPGRADE).cloned();
    let on_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        peer,
    };
    lock(&state.requests).push(recorded);
    state.hits.fetch_add(1, Ordering::SeqCst);

    let delay = *lock(&state.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let name = HeaderValue::from_str(&state.name).unwrap_or(HeaderValue::from_static("backend"));

    if let (Some(proto), Some(on_upgrade)) = (upgrade, on_upgrade) {
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        resp.headers_mut().insert(UPGRADE, proto);
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        resp.headers_mut().insert("x-backend", name);
        return Ok(resp);
    }

    let route = lock(&state.routes).get(parts.uri.path()).cloned();
    let (status, body) = match route {
        Some((status, body)) => (status, body),
        None => (*lock(&state.status), state.name.clone()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert("x-backend", name);
    Ok(resp)
}
