//! A loopback topology for persistence tests: HTTP backends that answer with their name (and
//! set session cookies or redirect on request), tenbin's L7 frontend with persistence on an
//! injectable clock, and a client session with a cookie jar.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tenbin_core::pick::Algorithm;
use tenbin_proxy::http::HttpFrontend;
use tenbin_proxy::persist::{PersistConfig, Persistence};
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tokio::net::TcpListener;

/// What the backends of a test do besides answering with their name.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// On `/login`: `Set-Cookie: <name>=<value>` where `<value>` is `<placeholder>` or, when
    /// empty, `<backend>.<n>` (a fresh session id).
    pub session_cookie: Option<(String, String)>,
}

/// A backend and what it received.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub cookies_seen: Arc<Mutex<Vec<String>>>,
    pub hits: Arc<AtomicUsize>,
}

pub async fn backend(name: &str, behaviour: Behaviour) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cookies_seen = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (seen, count, me) = (cookies_seen.clone(), hits.clone(), name.to_owned());
    let sessions = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (seen, count, me, b, sessions) = (
                seen.clone(),
                count.clone(),
                me.clone(),
                behaviour.clone(),
                sessions.clone(),
            );
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (seen, count, me, b, sessions) = (
                        seen.clone(),
                        count.clone(),
                        me.clone(),
                        b.clone(),
                        sessions.clone(),
                    );
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        if let Some(c) = req.headers().get(COOKIE) {
                            seen.lock()
                                .unwrap()
                                .push(c.to_str().unwrap_or("").to_owned());
                        }
                        let path = req.uri().path().to_owned();
                        let mut resp = Response::new(Full::new(Bytes::from(me.clone())));
                        resp.headers_mut()
                            .insert("content-type", HeaderValue::from_static("text/html"));
                        if path.starts_with("/login") {
                            if let Some((name, value)) = &b.session_cookie {
                                let value = if value.is_empty() {
                                    format!("{me}.{}", sessions.fetch_add(1, Ordering::SeqCst))
                                } else {
                                    value.clone()
                                };
                                let sc = format!("{name}={value}; Path=/");
                                resp.headers_mut()
                                    .append(SET_COOKIE, HeaderValue::from_str(&sc).unwrap());
                            }
                        }
                        if path.starts_with("/redirect") {
                            *resp.status_mut() = StatusCode::FOUND;
                            resp.headers_mut()
                                .insert(LOCATION, HeaderValue::from_static("/next"));
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Backend {
        name: name.to_owned(),
        addr,
        cookies_seen,
        hits,
    }
}

/// tenbin's L7 frontend in front of one pool, with persistence on an injectable clock.
pub struct Proxy {
    pub addr: SocketAddr,
    pub pool: Pool,
    pub persist: Option<Arc<Persistence>>,
    pub clock_offset: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Proxy {
    /// Moves the persistence clock forward (idle expiry, cookie dates).
    pub fn advance(&self, by: Duration) {
        self.clock_offset.fetch_add(by.as_secs(), Ordering::SeqCst);
    }

    /// The persistence clock now.
    pub fn now(&self) -> Duration {
        Persistence::now() + Duration::from_secs(self.clock_offset.load(Ordering::SeqCst))
    }

    pub fn server_id(&self, name: &str) -> tenbin_core::BackendId {
        self.pool.id_of(name).unwrap()
    }
}

pub async fn proxy(backends: &[Backend], persist: Option<PersistConfig>) -> Proxy {
    let pool = Pool::new(PoolConfig::new(
        "web",
        Algorithm::RoundRobin,
        backends
            .iter()
            .map(|b| ServerConfig::new(b.name.clone(), b.addr))
            .collect(),
    ));
    let clock_offset = Arc::new(AtomicU64::new(0));
    let offset = clock_offset.clone();
    let clock: tenbin_proxy::persist::Clock =
        Arc::new(move || Persistence::now() + Duration::from_secs(offset.load(Ordering::SeqCst)));
    let persist = persist.map(|c| Arc::new(Persistence::with_clock(c, clock)));
    let mut fe = HttpFrontend::new("web", &[], Some("web"), vec![pool.clone()]).unwrap();
    fe.persistence = vec![persist.clone()];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tenbin_proxy::http::serve(listener, fe, async move {
        let _ = rx.await;
    }));
    Proxy {
        addr,
        pool,
        persist,
        clock_offset,
        _stop: tx,
    }
}

/// A browser-like client: its own source address, a cookie jar, extra headers.
pub struct Session {
    client: Client<HttpConnector, Empty<Bytes>>,
    proxy: SocketAddr,
    pub jar: HashMap<String, String>,
    pub headers: Vec<(String, String)>,
}

/// What one response said.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub backend: String,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub cache_control: Option<String>,
}

impl Session {
    /// A session from 127.0.0.1 (or `source`, another loopback address).
    pub fn new(proxy: &Proxy, source: Option<IpAddr>) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_local_address(source);
        Session {
            client: Client::builder(TokioExecutor::new()).build(conn),
            proxy: proxy.addr,
            jar: HashMap::new(),
            headers: Vec::new(),
        }
    }

    pub async fn get(&mut self, path_and_query: &str) -> Answer {
        let mut req = Request::get(format!("http://{}{}", self.proxy, path_and_query));
        if !self.jar.is_empty() {
            let mut pairs: Vec<_> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.sort();
            req = req.header(COOKIE, pairs.join("; "));
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = self
            .client
            .request(req.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for sc in &set_cookies {
            let pair = sc.split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                self.jar.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (location, cache_control) = (header("location"), header("cache-control"));
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            backend: String::from_utf8_lossy(&body).into_owned(),
            location,
            set_cookies,
            cache_control,
        }
    }

    /// Sends `n` requests to `path` and returns the set of backends that answered.
    pub async fn many(&mut self, path: &str, n: usize) -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            let a = self.get(path).await;
            assert_eq!(a.status, StatusCode::OK, "{a:?}");
            seen.insert(a.backend);
        }
        seen
    }
}

/// Three backends with `behaviour` named s0, s1, s2.
pub async fn three(behaviour: Behaviour) -> Vec<Backend> {
    let mut v = Vec::new();
    for i in 0..3 {
        v.push(backend(&format!("s{i}"), behaviour.clone()).await);
    }
    v
}
