//! The L7 proxy as an HTTPS frontend: TLS termination with ALPN h2 and http/1.1,
//! `X-Forwarded-Proto: https`, and session persistence (cookie insert) through the real HTTP
//! path, over many requests on one kept-alive TLS connection.

mod tls_common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;
use tenbin_core::pick::Algorithm;

use tenbin_proxy::http::{HttpFrontend, HttpService};
use tenbin_proxy::persist::{PersistConfig, PersistMode, Persistence};
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tenbin_proxy::tls::server::{serve_https, server_config};
use tenbin_proxy::tls::{provider, CertStore, TerminateConfig};
use tenbin_testkit::backend::{http as http_backend, HttpBackend};
use tls_common::{Ca, TempDir};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Https {
    addr: SocketAddr,
    ca: Ca,
    backends: Vec<HttpBackend>,
    _dir: TempDir,
    _stop: oneshot::Sender<()>,
}

async fn https(persist: Option<PersistConfig>) -> Https {
    let dir = TempDir::new("https");
    let ca = Ca::new("test ca");
    let files = ca.leaf(&["www.shop.test"]).write(&dir.0, "www");
    let store = Arc::new(CertStore::load(vec![files], Arc::new(provider())).unwrap());
    let mut backends = Vec::new();
    for i in 0..3 {
        backends.push(http_backend().name(format!("s{i}")).spawn().await);
    }
    let pool = Pool::new(PoolConfig::new(
        "web",
        Algorithm::RoundRobin,
        backends
            .iter()
            .map(|b| ServerConfig::new(b.name(), b.addr()))
            .collect(),
    ));
    let mut fe = HttpFrontend::new("https", &[], Some("web"), vec![pool]).unwrap();
    fe.persistence = vec![persist.map(|c| Arc::new(Persistence::new(c)))];
    let tls = server_config(&TerminateConfig::default(), store).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(serve_https(
        listener,
        HttpService::new(fe),
        tls,
        Duration::from_secs(10),
        async move {
            let _ = rx.await;
        },
    ));
    Https {
        addr,
        ca,
        backends,
        _dir: dir,
        _stop: tx,
    }
}

async fn tls(h: &Https, alpn: &[&str]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(h.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("www.shop.test").unwrap();
    tokio_rustls::TlsConnector::from(h.ca.client(alpn))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Answers' bodies (backend names) of `n` GETs on one HTTP/2 connection.
async fn h2_requests(h: &Https, n: usize) -> Vec<(Version, String)> {
    let stream = tls(h, &["h2"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    for _ in 0..n {
        let req = Request::get("https://www.shop.test/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let v = resp.version();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        out.push((v, String::from_utf8_lossy(&body).into_owned()));
    }
    out
}

#[tokio::test]
async fn h2_over_tls_reaches_servers_with_forwarded_proto_https() {
    let h = https(None).await;
    let answers = h2_requests(&h, 6).await;
    assert!(answers.iter().all(|(v, _)| *v == Version::HTTP_2));
    let spread: BTreeSet<_> = answers.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(
        spread.len(),
        3,
        "per-request balancing over one h2 connection: {spread:?}"
    );
    let seen = h.backends[0].last_request().unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
}

#[tokio::test]
async fn http11_over_tls_with_cookie_persistence() {
    let mut cfg = PersistConfig::new(PersistMode::CookieInsert, "SRV");
    cfg.insert.indirect = true;
    cfg.insert.attrs.secure = true;
    let h = https(Some(cfg)).await;
    let stream = tls(&h, &["http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut cookie: Option<String> = None;
    let mut seen = BTreeSet::new();
    for i in 0..20 {
        let mut req = Request::get("/").header("host", "www.shop.test");
        if let Some(c) = &cookie {
            req = req.header("cookie", c.as_str());
        }
        let resp = send
            .send_request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        if let Some(sc) = resp.headers().get("set-cookie") {
            let sc = sc.to_str().unwrap();
            assert!(sc.contains("; Secure"), "{sc}");
            assert_eq!(i, 0, "indirect: the cookie is set once");
            cookie = Some(sc.split(';').next().unwrap().to_owned());
        }
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        seen.insert(String::from_utf8_lossy(&body).into_owned());
    }
    assert_eq!(seen.len(), 1, "one session, one server: {seen:?}");
    for b in &h.backends {
        assert!(b
            .requests()
            .iter()
            .all(|r| r.header("cookie").is_none_or(|c| !c.contains("SRV="))));
    }
}

/// An HTTPS server on loopback answering every request with `name`.
async fn https_backend(name: &'static str, leaf: &tls_common::Leaf) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(
        leaf.server_config(&[&rustls::version::TLS13, &rustls::version::TLS12]),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(Bytes::from(name)),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn reencryption_verifies_servers_and_answers_502_when_it_fails() {
    use tenbin_proxy::tls::{Upstream, UpstreamConfig};
    let dir = TempDir::new("reenc");
    let server_ca = Ca::new("server ca");
    let rogue_ca = Ca::new("rogue ca");
    let good = https_backend("good", &server_ca.leaf(&["backend.test"])).await;
    let rogue = https_backend("rogue", &rogue_ca.leaf(&["backend.test"])).await;
    let ca_file = dir.0.join("ca.pem");
    std::fs::write(&ca_file, server_ca.pem()).unwrap();
    let upstream = Upstream::new(&UpstreamConfig {
        ca_file: Some(ca_file),
        verify: true,
        client_cert: None,
        sni: Some("backend.test".into()),
        alpn: vec!["http/1.1".into()],
    })
    .unwrap();
    let pool_of = |name: &str, addr: SocketAddr| {
        Pool::new(PoolConfig::new(
            name,
            Algorithm::RoundRobin,
            vec![ServerConfig::new(name, addr)],
        ))
    };
    let rules = [tenbin_proxy::http::RuleSpec {
        pool: "rogue".into(),
        paths: vec![tenbin_proxy::http::PathSpec::Prefix("/rogue".into())],
        ..Default::default()
    }];
    let mut fe = HttpFrontend::new(
        "reenc",
        &rules,
        Some("good"),
        vec![pool_of("good", good), pool_of("rogue", rogue)],
    )
    .unwrap();
    fe.retries = 0;
    fe.upstream_tls = vec![Some(upstream.clone()), Some(upstream)];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_tx, rx) = oneshot::channel::<()>();
    tokio::spawn(tenbin_proxy::http::serve(listener, fe, async move {
        let _ = rx.await;
    }));
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let uri: http::Uri = format!("http://{addr}{path}").parse().unwrap();
            let resp = client.get(uri).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(get("/").await, (http::StatusCode::OK, "good".into()));
    let (status, _) = get("/rogue").await;
    assert_eq!(
        status,
        http::StatusCode::BAD_GATEWAY,
        "unverifiable server must not be used"
    );
}
