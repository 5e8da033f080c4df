//! Raw-socket peers for the strict-HTTP tests: a recording backend that parses requests with
//! its own few lines of code (not hyper) and keeps every byte it received, and a client that
//! writes exact bytes and reads one response.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenbin_core::pick::Algorithm;
use tenbin_proxy::http::{HttpLimits, HttpStats, HttpTimeouts, Reject};
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{frontend, Proxy};

/// How long a raw read may wait before the test gives up (a bound, not a threshold).
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A request head the recorder parsed, with how its body was framed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SeenRequest {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A raw TCP backend: answers `200 backend` to every complete request it can frame and
/// records every byte per connection.
#[derive(Debug)]
pub struct Recorder {
    pub addr: SocketAddr,
    bytes: Arc<Mutex<Vec<Vec<u8>>>>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
}

impl Recorder {
    pub async fn spawn() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let (b, r) = (Arc::clone(&bytes), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let slot = {
                    let mut all = b.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                tokio::spawn(record(stream, slot, Arc::clone(&b), Arc::clone(&r)));
            }
        });
        Recorder {
            addr,
            bytes,
            requests,
        }
    }

    /// Every byte received, one entry per connection.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.bytes.lock().unwrap().clone()
    }

    /// The requests it could frame and answered.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Asserts the backend saw no ambiguous framing: at most one Content-Length, never with
    /// Transfer-Encoding, and every byte it received belongs to a request it framed (so
    /// nothing was smuggled behind one), except an unfinished last message.
    pub fn assert_unambiguous(&self) {
        for req in self.requests() {
            let cl = req.all("content-length");
            let te = req.all("transfer-encoding");
            assert!(cl.len() <= 1, "several Content-Length: {req:?}");
            assert!(cl.is_empty() || te.is_empty(), "TE and CL: {req:?}");
            assert!(req.all("host").len() <= 1, "several Host: {req:?}");
        }
        for conn in self.received() {
            let text = String::from_utf8_lossy(&conn);
            let lines = text
                .split("\r\n")
                .filter(|l| l.ends_with(" HTTP/1.1") || l.ends_with(" HTTP/1.0"))
                .count();
            let framed = self.requests().len();
            assert!(
                lines <= framed.max(1),
                "a smuggled request reached the backend: {text}"
            );
        }
    }
}

async fn record(
    mut stream: TcpStream,
    slot: usize,
    bytes: Arc<Mutex<Vec<Vec<u8>>>>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        bytes.lock().unwrap()[slot].extend_from_slice(&buf[..n]);
        pending.extend_from_slice(&buf[..n]);
        while let Some((req, used)) = frame(&pending) {
            pending.drain(..used);
            requests.lock().unwrap().push(req);
            let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nbackend";
            if stream.write_all(resp).await.is_err() {
                return;
            }
        }
    }
}

/// One complete request at the start of `buf`, and how many bytes it took.
fn frame(buf: &[u8]) -> Option<(SeenRequest, usize)> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    let mut req = SeenRequest {
        line,
        headers,
        body: Vec::new(),
    };
    let mut at = end + 4;
    if req
        .all("transfer-encoding")
        .iter()
        .any(|v| v.contains("chunked"))
    {
        loop {
            let eol = find(&buf[at..], b"\r\n")?;
            let size = std::str::from_utf8(&buf[at..at + eol]).ok()?;
            let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
            at += eol + 2;
            if size == 0 {
                // No trailers from the proxy: the final CRLF.
                if buf.len() < at + 2 {
                    return None;
                }
                return Some((req, at + 2));
            }
            if buf.len() < at + size + 2 {
                return None;
            }
            req.body.extend_from_slice(&buf[at..at + size]);
            at += size + 2;
        }
    }
    let len: usize = req
        .all("content-length")
        .first()
        .map_or(Some(0), |v| v.parse().ok())?;
    if buf.len() < at + len {
        return None;
    }
    req.body = buf[at..at + len].to_vec();
    Some((req, at + len))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response as the raw client read it.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Reads one response (Content-Length framed, or up to EOF) from `stream`.
pub async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    tokio::time::timeout(DEADLINE, read_response_inner(stream))
        .await
        .expect("no response in time")
}

/// [`read_response`], or `Err` at the deadline.
pub async fn try_read_response(
    stream: &mut TcpStream,
) -> Result<Option<RawResponse>, tokio::time::error::Elapsed> {
    tokio::time::timeout(DEADLINE, read_response_inner(stream)).await
}

async fn read_response_inner(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        if let Some(end) = find(&got, b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut resp = RawResponse {
        status,
        head,
        body: got[end + 4..].to_vec(),
    };
    let len = resp.header("content-length").and_then(|v| v.parse().ok());
    while len.is_some_and(|l| resp.body.len() < l) {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        resp.body.extend_from_slice(&buf[..n]);
    }
    Some(resp)
}

/// Whether the peer closes `stream` (EOF or reset) before the deadline, discarding bytes.
pub async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Connects, writes `bytes` and reads one response (`None`: closed without one).
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Option<RawResponse>, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let r = read_response(&mut s).await;
    (r, s)
}

/// A proxy with `limits` and `timeouts` in front of one recording backend.
pub struct RawSetup {
    pub rec: Recorder,
    pub proxy: Proxy,
    pub stats: Arc<HttpStats>,
}

pub async fn raw_setup(limits: HttpLimits, timeouts: HttpTimeouts) -> RawSetup {
    let rec = Recorder::spawn().await;
    let servers = vec![ServerConfig::new("r", rec.addr)];
    let pool = Pool::with_seed(PoolConfig::new("p", Algorithm::RoundRobin, servers), 7);
    let mut fe = frontend(&[], "p", vec![pool]);
    fe.limits = limits;
    fe.timeouts = timeouts;
    let stats = Arc::clone(&fe.stats);
    let proxy = Proxy::spawn(fe).await;
    RawSetup { rec, proxy, stats }
}

/// Waits (bounded) until `reason` was counted `n` times: what hyper refuses on its own is
/// counted when the connection ends, which may be just after the client saw the close.
pub async fn counted(stats: &HttpStats, reason: Reject, n: u64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while stats.rejected(reason) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{reason:?} counted {} times, expected {n}",
            stats.rejected(reason)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
