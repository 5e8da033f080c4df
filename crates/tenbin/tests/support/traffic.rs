//! Load for the live-reload and shutdown tests: clients that run until told to stop and
//! record every answer (which backend, which certificate) and every failure.
// Each test file uses a subset of these.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What one client saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// One entry per successful exchange: the backend's name (or the certificate's index).
    pub answers: Vec<String>,
    /// A response header the test follows (`x-gen`), per answer.
    pub tags: Vec<String>,
    pub failures: Vec<String>,
}

/// A running client and what it saw.
#[derive(Clone, Debug)]
pub struct Load {
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Load {
    fn new() -> Load {
        Load {
            seen: Arc::default(),
            stop: Arc::default(),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    fn ok(&self, answer: String, tag: String) {
        let mut s = self.seen.lock().unwrap();
        s.answers.push(answer);
        s.tags.push(tag);
    }

    fn fail(&self, why: String) {
        self.seen.lock().unwrap().failures.push(why);
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().answers.len()
    }

    pub fn failures(&self) -> Vec<String> {
        self.seen.lock().unwrap().failures.clone()
    }

    /// Waits (bounded, 30 s) until `n` more answers arrived after answer `from`, and returns
    /// them.
    pub async fn next_answers(&self, from: usize, n: usize) -> Vec<String> {
        for _ in 0..3000 {
            {
                let s = self.seen.lock().unwrap();
                if s.answers.len() >= from + n {
                    return s.answers[from..from + n].to_vec();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("client stalled: fewer than {n} answers after #{from}");
    }

    /// Waits (bounded, 30 s) for an answer after `from` for which `pred(answer, tag)` holds.
    pub async fn wait_for(&self, from: usize, what: &str, pred: impl Fn(&str, &str) -> bool) {
        for _ in 0..3000 {
            {
                let s = self.seen.lock().unwrap();
                let hit = s.answers[from.min(s.answers.len())..]
                    .iter()
                    .zip(&s.tags[from.min(s.tags.len())..])
                    .any(|(a, t)| pred(a, t));
                if hit {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never observed: {what}");
    }
}

/// Paces a client so a debug build on a small host keeps up; not a synchronisation.
const PACE: Duration = Duration::from_millis(2);

/// The pause after each exchange: [`PACE`] plus up to 20 ms drawn at random. Clients paced
/// alike run in lockstep against backends that all answer after the same delay (50 ms in
/// `cli_chaos`), and round robin then hands each client the same server every cycle: with
/// three clients and three servers a client can see one server only, for tens of seconds
/// (a 3 ms jitter still left such stretches). A pause that is a good part of the answer
/// delay reshuffles the clients' order every cycle.
fn pause() -> Duration {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(0u8);
    PACE + Duration::from_micros(r % 20_000)
}

/// Sequential GETs on one keep-alive connection pool (hyper's client).
pub fn keep_alive(addr: SocketAddr) -> Load {
    let c = Load::new();
    let me = c.clone();
    tokio::spawn(async move {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri: hyper::Uri = format!("http://{addr}/").parse().unwrap();
        while me.running() {
            match client.get(uri.clone()).await {
                Ok(resp) => {
                    let status = resp.status();
                    let tag = resp
                        .headers()
                        .get("x-gen")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    match resp.into_body().collect().await {
                        Ok(b) if status == 200 => {
                            me.ok(String::from_utf8_lossy(&b.to_bytes()).into_owned(), tag)
                        }
                        Ok(_) => me.fail(format!("keep-alive: status {status}")),
                        Err(e) => me.fail(format!("keep-alive body: {e}")),
                    }
                }
                Err(e) => me.fail(format!("keep-alive: {e:?}")),
            }
            tokio::time::sleep(pause()).await;
        }
    });
    c
}

/// One GET on a fresh connection; the backend's name.
pub async fn get_once(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .map_err(|_| "read timed out".to_string())?
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {:?}", text.lines().next()));
    }
    Ok(text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string())
}

/// Runs `once` in a loop until stopped, recording each answer or failure as `what`.
fn repeat<F, Fut>(what: &'static str, once: F) -> Load
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<String, String>> + Send,
{
    let c = Load::new();
    let me = c.clone();
    tokio::spawn(async move {
        while me.running() {
            match once().await {
                Ok(answer) => me.ok(answer, String::new()),
                Err(e) => me.fail(format!("{what}: {e}")),
            }
            tokio::time::sleep(pause()).await;
        }
    });
    c
}

/// A new connection for every GET.
pub fn fresh(addr: SocketAddr) -> Load {
    fresh_through("fresh", addr)
}

/// A new connection for every GET, failures recorded as `what` (e.g. through a TCP frontend,
/// whose servers speak HTTP).
pub fn fresh_through(what: &'static str, addr: SocketAddr) -> Load {
    repeat(what, move || get_once(addr))
}

/// TCP sessions through a `mode tcp` frontend over greeting echo backends: read the
/// greeting (the backend's name), echo a line, close.
pub fn tcp(addr: SocketAddr) -> Load {
    repeat("tcp", move || tcp_once(addr))
}

async fn tcp_once(addr: SocketAddr) -> Result<String, String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut s = BufReader::new(s);
    let mut greeting = String::new();
    let mut echo = String::new();
    let exchange = async {
        s.read_line(&mut greeting).await?;
        s.get_mut().write_all(b"ping\n").await?;
        s.read_line(&mut echo).await?;
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("io: {e}"))?;
    if echo != "ping\n" {
        return Err(format!("echo {echo:?} after greeting {greeting:?}"));
    }
    Ok(greeting.trim().to_string())
}

/// A TLS connection (SNI `www.tenbin.test`, trusting `roots`) per GET; records which of
/// `certs` (DER) the server presented, by index.
pub fn https(addr: SocketAddr, roots: rustls::RootCertStore, certs: Vec<Vec<u8>>) -> Load {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // A resumed session reports the certificate it was first authenticated with; every
    // handshake here is a full one, so each sees what the server serves now.
    config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let certs = Arc::new(certs);
    repeat("https", move || {
        let (connector, certs) = (connector.clone(), Arc::clone(&certs));
        async move { https_once(addr, &connector, &certs).await }
    })
}

async fn https_once(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    certs: &[Vec<u8>],
) -> Result<String, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from("www.tenbin.test").unwrap();
    let mut tls = tokio::time::timeout(Duration::from_secs(20), connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let which = certs
        .iter()
        .position(|c| *c == presented)
        .map_or("unknown".to_string(), |i| format!("cert{}", i + 1));
    tls.write_all(b"GET / HTTP/1.1\r\nHost: www.tenbin.test\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut out))
        .await
        .map_err(|_| "read timed out".to_string())?;
    // A close without close_notify after a whole answer is not the proxy's failure.
    if let Err(e) = read {
        if e.kind() != std::io::ErrorKind::UnexpectedEof || out.is_empty() {
            return Err(format!("read: {e}"));
        }
    }
    if !out.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "answer {:?}",
            String::from_utf8_lossy(&out).lines().next()
        ));
    }
    Ok(which)
}
