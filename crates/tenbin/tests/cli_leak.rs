//! Leak check through the real binary: a short mixed load (a bounded count of each kind of
//! client) against `tenbin run`, then every resource it held must come back.
//!
//! The load: HTTP GETs on new connections and on one keep-alive client, HTTPS GETs, TCP
//! sessions, and clients that go away at the worst moments: mid-head, mid-body, while the
//! server is still answering, mid-TLS-handshake (and one that stalls there until the
//! handshake timeout), TCP sessions closed at once; plus idle keep-alives that the frontend
//! closes on its idle timeout (each client checks it was closed).
//!
//! After the load, each waited for with a bounded deadline (no time threshold):
//! - every server's `active` in `/api/v1/state` is 0 (no lease left behind);
//! - no connection of any frontend is left: the sockets the tenbin process holds whose local
//!   port is a frontend's, listeners aside (read from `/proc/PID/fd` and `/proc/PID/net/tcp*`);
//! - once the backends close their side too (they stop, so pooled idle upstream connections
//!   end), the process's open fd count is back to what it was before the load.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{admin_request, Daemon, TempDir};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tenbin_testkit::backend::{http, tcp_echo, HttpBackend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Bound on any one client's wait for the proxy.
const IO_WAIT: Duration = Duration::from_secs(20);

/// Open file descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .unwrap_or(0)
}

/// How many non-listening TCP sockets process `pid` holds on local port `port`.
fn connections_on(pid: u32, port: u16) -> usize {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() > 9 && f[3] != "0A" && inodes.contains(&f[9]))
        .filter(|f| {
            f[1].rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
        })
        .count()
}

/// Every server's `active` count, by `pool/server`.
fn active(admin: SocketAddr) -> Vec<(String, u64)> {
    let (status, body) = admin_request(admin, "GET", "/api/v1/state", "");
    assert_eq!(status, 200, "{body}");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = Vec::new();
    for pool in state["pools"].as_array().unwrap() {
        for s in pool["servers"].as_array().unwrap() {
            out.push((
                format!("{}/{}", pool["name"], s["name"]),
                s["active"].as_u64().unwrap(),
            ));
        }
    }
    out
}

fn cert_pair(dir: &TempDir) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["www.tenbin.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let c = dir.write("leak.crt", &cert.pem());
    let k = dir.write("leak.key", &key.serialize_pem());
    (c.display().to_string(), k.display().to_string())
}

/// The bytes of a real ClientHello (rustls's), for clients that stop half-way through it.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("www.tenbin.test").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    assert!(out.len() > 100, "a ClientHello");
    out
}

/// A TLS client that trusts anything (the test only needs the handshake to complete).
fn tls_connector() -> tokio_rustls::TlsConnector {
    #[derive(Debug)]
    struct Any(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(IO_WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("the frontend accepts")
}

/// Reads until the peer closes (bounded): what it sent.
async fn until_closed(s: &mut (impl AsyncReadExt + Unpin), what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match tokio::time::timeout(IO_WAIT, s.read_to_end(&mut out)).await {
        Ok(_) => out,
        Err(_) => panic!("{what}: the proxy never closed the connection"),
    }
}

/// A request on a new connection; the answer must be a 200.
async fn get(addr: SocketAddr) {
    let mut s = connect(addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let out = until_closed(&mut s, "GET").await;
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

/// Runs `n` of `one` one after the other.
fn repeat<F, Fut>(set: &mut JoinSet<()>, n: usize, one: F)
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    set.spawn(async move {
        for i in 0..n {
            one(i).await;
        }
    });
}

async fn load(web: SocketAddr, secure: SocketAddr, raw: SocketAddr, slow: Arc<HttpBackend>) {
    let hello = Arc::new(client_hello());
    let connector = tls_connector();
    let mut set = JoinSet::new();
    repeat(&mut set, 100, move |_| get(web));
    set.spawn(async move {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri: hyper::Uri = format!("http://{web}/").parse().unwrap();
        for _ in 0..100 {
            let resp = client.get(uri.clone()).await.expect("keep-alive GET");
            assert_eq!(resp.status(), 200);
            resp.into_body().collect().await.unwrap();
        }
    });
    // Idle keep-alives: one answer, then the frontend's idle timeout closes them.
    repeat(&mut set, 20, move |_| async move {
        let mut s = connect(web).await;
        s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        let out = until_closed(&mut s, "idle keep-alive").await;
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    });
    repeat(&mut set, 20, move |_| async move {
        let mut s = connect(web).await;
        s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\nx-half")
            .await
            .unwrap();
    });
    repeat(&mut set, 20, move |_| async move {
        let mut s = connect(web).await;
        s.write_all(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 1000\r\n\r\nhalf a body")
            .await
            .unwrap();
    });
    // Gone while the server is still answering: the lease must be released all the same.
    repeat(&mut set, 20, move |_| {
        let slow = slow.clone();
        async move {
            let hits = slow.hits();
            let mut s = connect(web).await;
            s.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
                .await
                .unwrap();
            let deadline = tokio::time::Instant::now() + IO_WAIT;
            while slow.hits() == hits {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "GET /slow never reached s"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    repeat(&mut set, 50, move |_| {
        let connector = connector.clone();
        async move {
            let name = rustls::pki_types::ServerName::try_from("www.tenbin.test").unwrap();
            let mut tls = connector
                .connect(name, connect(secure).await)
                .await
                .expect("TLS");
            tls.write_all(b"GET / HTTP/1.1\r\nhost: www.tenbin.test\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let out = until_closed(&mut tls, "HTTPS GET").await;
            assert!(out.starts_with(b"HTTP/1.1 200"));
        }
    });
    let half = hello.clone();
    repeat(&mut set, 20, move |i| {
        let half = half.clone();
        async move {
            let mut s = connect(secure).await;
            // Every other one stops after the record header, the others mid-hello.
            let cut = if i % 2 == 0 { 5 } else { half.len() / 2 };
            s.write_all(&half[..cut]).await.unwrap();
        }
    });
    // Stalled mid-handshake: the handshake timeout (client_header) must close it.
    repeat(&mut set, 10, move |_| {
        let hello = hello.clone();
        async move {
            let mut s = connect(secure).await;
            s.write_all(&hello[..hello.len() / 2]).await.unwrap();
            until_closed(&mut s, "stalled TLS handshake").await;
        }
    });
    repeat(&mut set, 20, move |_| async move {
        drop(connect(secure).await);
    });
    repeat(&mut set, 50, move |_| async move {
        let mut s = connect(raw).await;
        let mut greeting = [0u8; 2];
        s.read_exact(&mut greeting)
            .await
            .expect("the TCP backend greets");
        s.write_all(b"ping\n").await.unwrap();
        s.shutdown().await.unwrap();
        until_closed(&mut s, "TCP session").await;
    });
    repeat(&mut set, 20, move |_| async move {
        drop(connect(raw).await);
    });
    while let Some(r) = set.join_next().await {
        r.expect("a client of the load");
    }
}

#[test]
fn fds_and_connection_slots_return_to_baseline_after_load() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("leak-certs");
    let (cert, key) = cert_pair(&dir);
    let a = rt.block_on(http().name("a").spawn());
    let slow = Arc::new(rt.block_on(http().name("s").delay(Duration::from_secs(1)).spawn()));
    let t = rt.block_on(tcp_echo().name("t").greet().spawn());
    let config = format!(
        r#"[admin]
listen = "127.0.0.1:0"

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "app"
[frontend.timeouts]
client_idle = "300ms"
client_header = "2s"
client_body = "2s"
[[frontend.rule]]
path_prefix = "/slow"
pool = "slow"

[[frontend]]
name = "secure"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "app"
[frontend.timeouts]
client_idle = "300ms"
client_header = "500ms"
[frontend.tls]
certificate = [{{ cert = "{cert}", key = "{key}" }}]

[[frontend]]
name = "raw"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "echo"

[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "{}"

[[pool]]
name = "slow"
[[pool.server]]
name = "s"
address = "{}"

[[pool]]
name = "echo"
[[pool.server]]
name = "t"
address = "{}"
"#,
        a.addr(),
        slow.addr(),
        t.addr()
    );
    let node = Daemon::start(&config, "leak");
    let admin = node.bound("admin", None);
    let frontends = [
        ("web", node.bound("http", Some("web"))),
        ("secure", node.bound("https", Some("secure"))),
        ("raw", node.bound("tcp", Some("raw"))),
    ];
    let pid = node.pid();
    assert_eq!(active(admin).iter().map(|(_, n)| n).sum::<u64>(), 0);
    // The admin request's own connection is closed once the baseline settles.
    let baseline = node.wait_for("a baseline with no connection open", || {
        frontends
            .iter()
            .map(|(_, a)| a)
            .chain([&admin])
            .all(|a| connections_on(pid, a.port()) == 0)
            .then(|| fds(pid))
    });

    // The count sees a connection the proxy holds (else the checks below could not fail): a
    // TCP session, which no short timeout closes while the count is read.
    let probe = std::net::TcpStream::connect(frontends[2].1).unwrap();
    node.wait_for("the probe connection counted", || {
        (connections_on(pid, frontends[2].1.port()) == 1).then_some(())
    });
    drop(probe);

    rt.block_on(load(
        frontends[0].1,
        frontends[1].1,
        frontends[2].1,
        slow.clone(),
    ));
    let after_load = fds(pid);

    node.wait_for("every server's active back to 0", || {
        active(admin).iter().all(|(_, n)| *n == 0).then_some(())
    });
    for (name, addr) in frontends {
        node.wait_for(&format!("no connection left on frontend {name}"), || {
            (connections_on(pid, addr.port()) == 0).then_some(())
        });
    }
    rt.block_on(async {
        a.stop().await;
        slow.stop().await;
        t.stop().await;
    });
    let end = node.wait_for("open fds back to the baseline", || {
        let n = fds(pid);
        (n <= baseline).then_some(n)
    });
    println!("leak check: fds baseline {baseline}, right after the load {after_load}, end {end}");
    node.assert_running();
}
