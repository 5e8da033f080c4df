//! `tls-handshakes`: new TLS connections per second against one HTTPS address, for the
//! handshake rows of `bench/tls.sh`.
//!
//! wrk's TLS client is OpenSSL 3.0 (Debian 12), which spends ~0.6 ms of user CPU per
//! resumed handshake on the client side alone: one load CPU then saturates before either
//! proxy does, and the row measures the client. This client does what wrk does with
//! `Connection: close`, on one thread, with rustls: `-c` connection slots, each in a loop of
//! connect, handshake, one `GET`, read the answer, close_notify, close; each slot keeps the
//! session tickets it was sent and offers the newest on its next connect, as wrk keeps a
//! slot's `SSL` session. The server name is verified against `--ca`.
//!
//! It prints wrk's summary lines (`N requests in`, `Requests/sec:`, the `99%` latency,
//! `Socket errors:` and `Non-2xx or 3xx responses:` when there are any), so the bench reads
//! both alike, and `handshakes: resumed R, full F`. Only answers completed before the
//! deadline count; a connection unanswered after `--timeout` (2 s, wrk's default) is cut
//! and counted as a timeout, one still open at the deadline is dropped uncounted. It
//! connects to loopback addresses only, as everything in tenbin-testkit.
//!
//! ```text
//! tls-handshakes --connect 127.0.0.1:8443 --sni bench.test --ca cert.pem -c 64 -d 2
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

#[derive(Debug)]
struct Args {
    connect: SocketAddr,
    sni: String,
    ca: String,
    conns: usize,
    duration: Duration,
    /// A connection not answered by then is cut and counted as a timeout (wrk's `--timeout`).
    timeout: Duration,
    path: String,
}

fn usage(why: &str) -> ! {
    eprintln!("tls-handshakes: {why}");
    eprintln!(
        "usage: tls-handshakes --connect ADDR --sni NAME --ca PEM [-c CONNS] [-d SECONDS] [--timeout SECONDS] [--path /]"
    );
    std::process::exit(2);
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let (mut connect, mut sni, mut ca) = (None, None, None);
    let (mut conns, mut path) = (64, "/".to_string());
    let (mut duration, mut timeout) = (Duration::from_secs(2), Duration::from_secs(2));
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--connect" => {
                let v = value();
                connect = Some(
                    v.parse()
                        .unwrap_or_else(|_| usage(&format!("bad address {v}"))),
                );
            }
            "--sni" => sni = Some(value()),
            "--ca" => ca = Some(value()),
            "-c" => conns = value().parse().unwrap_or_else(|_| usage("bad -c")),
            "-d" => duration = seconds("-d", &value()),
            "--timeout" => timeout = seconds("--timeout", &value()),
            "--path" => path = value(),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let connect: SocketAddr = connect.unwrap_or_else(|| usage("--connect is required"));
    if !connect.ip().is_loopback() {
        // tenbin-testkit sends traffic to loopback only.
        usage(&format!("{connect} is not a loopback address"));
    }
    Args {
        connect,
        sni: sni.unwrap_or_else(|| usage("--sni is required")),
        ca: ca.unwrap_or_else(|| usage("--ca is required")),
        conns: conns.max(1),
        duration,
        timeout,
        path,
    }
}

/// A positive number of seconds, `2` or `2s`.
fn seconds(flag: &str, v: &str) -> Duration {
    let secs: f64 = v.trim_end_matches('s').parse().unwrap_or(-1.0);
    if !(secs > 0.0 && secs.is_finite()) {
        usage(&format!("bad {flag} {v}"));
    }
    Duration::from_secs_f64(secs)
}

/// One slot's counts.
#[derive(Debug, Default)]
struct Tally {
    /// Microseconds from connect to the last byte of the answer, one per counted answer.
    latencies: Vec<u32>,
    resumed: u64,
    full: u64,
    non_2xx: u64,
    connect: u64,
    read: u64,
    write: u64,
    timeout: u64,
    /// The protocol version, cipher suite and key exchange group of the first handshake.
    negotiated: Option<String>,
}

#[derive(Debug)]
enum Failure {
    /// A TCP connect or a TLS handshake failed (wrk counts both as connect errors).
    Connect(std::io::Error),
    Write(std::io::Error),
    Read(std::io::Error),
}

fn malformed(why: &'static str) -> Failure {
    Failure::Read(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
}

/// What one connection brought: whether it resumed and whether the answer was 2xx.
struct Answer {
    resumed: bool,
    ok: bool,
}

/// "TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519" of a finished handshake.
fn negotiated(conn: &rustls::ClientConnection) -> String {
    let name = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    format!(
        "{} {} {}",
        name(conn.protocol_version().map(|v| format!("{v:?}"))),
        name(
            conn.negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
        ),
        name(
            conn.negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
        ),
    )
}

async fn one(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &ServerName<'static>,
    request: &[u8],
    buf: &mut Vec<u8>,
    first: &mut Option<String>,
) -> Result<Answer, Failure> {
    let tcp = TcpStream::connect(addr).await.map_err(Failure::Connect)?;
    let _ = tcp.set_nodelay(true);
    let mut tls = connector
        .connect(name.clone(), tcp)
        .await
        .map_err(Failure::Connect)?;
    let conn = tls.get_ref().1;
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    if first.is_none() {
        *first = Some(negotiated(conn));
    }
    tls.write_all(request).await.map_err(Failure::Write)?;
    buf.clear();
    let head = loop {
        read_more(&mut tls, buf, "closed before the end of the response head").await?;
        if let Some(head) = parse_head(buf).map_err(malformed)? {
            break head;
        }
    };
    while buf.len() < head.len + head.body {
        read_more(&mut tls, buf, "closed before the end of the body").await?;
    }
    let ok = (200..300).contains(&head.status);
    // As wrk's SSL_shutdown before close: close_notify, then the socket closes on drop.
    let _ = tls.shutdown().await;
    Ok(Answer { resumed, ok })
}

/// Appends what the server sends next to `buf`; the end of the stream is a read failure
/// (`early`: what it cut short).
async fn read_more<S: AsyncRead + Unpin>(
    tls: &mut S,
    buf: &mut Vec<u8>,
    early: &'static str,
) -> Result<(), Failure> {
    let start = buf.len();
    buf.resize(start + 4096, 0);
    let n = tls.read(&mut buf[start..]).await.map_err(Failure::Read)?;
    buf.truncate(start + n);
    match n {
        0 => Err(malformed(early)),
        _ => Ok(()),
    }
}

/// A response head: its length, status and the body's `content-length`.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    len: usize,
    status: u16,
    body: usize,
}

/// The response head at the start of `buf` once it is all there (httparse, as the proxy's
/// own `h1` reads requests); the bench's backends always send a `content-length`.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= 64 * 1024 => return Ok(None),
        Ok(httparse::Status::Partial) => return Err("a response head over 64 KiB"),
        Err(_) => return Err("a malformed response head"),
    };
    let body = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .ok_or("no content-length")?;
    Ok(Some(Head {
        len,
        status: response.code.unwrap_or(0),
        body,
    }))
}

async fn slot(
    config: Arc<ClientConfig>,
    args: Arc<Args>,
    request: Arc<[u8]>,
    deadline: Instant,
) -> Tally {
    let connector = TlsConnector::from(config);
    let name = ServerName::try_from(args.sni.clone()).unwrap_or_else(|_| usage("bad --sni"));
    let mut tally = Tally::default();
    let mut buf = Vec::with_capacity(8192);
    loop {
        let started = Instant::now();
        if started >= deadline {
            return tally;
        }
        let cut = (started + args.timeout).min(deadline);
        let done = tokio::time::timeout_at(
            cut,
            one(
                &connector,
                args.connect,
                &name,
                &request,
                &mut buf,
                &mut tally.negotiated,
            ),
        )
        .await;
        match done {
            Err(_) if cut < deadline => tally.timeout += 1,
            Err(_) => return tally,
            Ok(Ok(answer)) => {
                let micros = started.elapsed().as_micros();
                tally
                    .latencies
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                if answer.resumed {
                    tally.resumed += 1;
                } else {
                    tally.full += 1;
                }
                if !answer.ok {
                    tally.non_2xx += 1;
                }
            }
            Ok(Err(failure)) => {
                let (count, e) = match failure {
                    Failure::Connect(e) => (&mut tally.connect, e),
                    Failure::Write(e) => (&mut tally.write, e),
                    Failure::Read(e) => (&mut tally.read, e),
                };
                if *count == 0 {
                    eprintln!("tls-handshakes: {e}");
                }
                *count += 1;
            }
        }
    }
}

fn client_config(ca: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(ca).unwrap_or_else(|e| usage(&format!("--ca {ca}: {e}")));
    for cert in certs {
        let cert = cert.unwrap_or_else(|e| usage(&format!("--ca {ca}: {e}")));
        roots
            .add(cert)
            .unwrap_or_else(|e| usage(&format!("--ca {ca}: {e}")));
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| usage(&format!("tls: {e}")))
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn main() {
    let args = Arc::new(args());
    let base = client_config(&args.ca);
    let request: Arc<[u8]> = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        args.path, args.sni
    )
    .into_bytes()
    .into();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&format!("runtime: {e}")));
    let tallies = runtime.block_on(async {
        let deadline = Instant::now() + args.duration;
        let slots: Vec<_> = (0..args.conns)
            .map(|_| {
                // A session store per slot, as wrk keeps one SSL session per connection.
                let mut config = (*base).clone();
                config.resumption = rustls::client::Resumption::in_memory_sessions(4);
                let (args, request) = (Arc::clone(&args), Arc::clone(&request));
                tokio::spawn(slot(Arc::new(config), args, request, deadline))
            })
            .collect();
        let mut tallies = Vec::new();
        for s in slots {
            tallies.push(s.await.unwrap_or_default());
        }
        tallies
    });
    report(&args, tallies);
}

fn report(args: &Args, tallies: Vec<Tally>) {
    let mut all = Tally::default();
    for t in tallies {
        all.latencies.extend(t.latencies);
        all.resumed += t.resumed;
        all.full += t.full;
        all.non_2xx += t.non_2xx;
        all.connect += t.connect;
        all.read += t.read;
        all.write += t.write;
        all.timeout += t.timeout;
        all.negotiated = all.negotiated.or(t.negotiated);
    }
    all.latencies.sort_unstable();
    let n = all.latencies.len();
    let secs = args.duration.as_secs_f64();
    let at = |q: f64| {
        let i = ((n as f64 * q).ceil() as usize).clamp(1, n.max(1)) - 1;
        f64::from(all.latencies.get(i).copied().unwrap_or(0)) / 1000.0
    };
    println!(
        "tls-handshakes {} ({}), {} connections, {secs:.2}s",
        args.connect, args.sni, args.conns
    );
    println!("  Latency Distribution");
    for (label, q) in [("50%", 0.5), ("75%", 0.75), ("90%", 0.9), ("99%", 0.99)] {
        println!("     {label}  {:.2}ms", at(q));
    }
    println!("  {n} requests in {secs:.2}s");
    if all.connect + all.read + all.write + all.timeout > 0 {
        println!(
            "  Socket errors: connect {}, read {}, write {}, timeout {}",
            all.connect, all.read, all.write, all.timeout
        );
    }
    if all.non_2xx > 0 {
        println!("  Non-2xx or 3xx responses: {}", all.non_2xx);
    }
    println!("Requests/sec: {:.2}", n as f64 / secs);
    println!("handshakes: resumed {}, full {}", all.resumed, all.full);
    println!(
        "negotiated: {}",
        all.negotiated.as_deref().unwrap_or("nothing")
    );
}

#[cfg(test)]
mod tests {
    use super::{parse_head, Head};

    #[test]
    fn a_head_is_read_once_whole_with_its_status_and_content_length() {
        let answer = b"HTTP/1.1 200 OK\r\nServer: x\r\ncontent-length: 10\r\n\r\nbackend 1\n";
        let whole = Head {
            len: answer.len() - 10,
            status: 200,
            body: 10,
        };
        assert_eq!(parse_head(answer), Ok(Some(whole)));
        assert_eq!(parse_head(&answer[..20]), Ok(None));
        let refused = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_head(refused).unwrap().unwrap().status, 503);
    }

    #[test]
    fn a_head_without_a_usable_content_length_or_framing_is_an_error() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked), Err("no content-length"));
        let words = b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n";
        assert_eq!(parse_head(words), Err("no content-length"));
        assert_eq!(
            parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n"),
            Err("a malformed response head")
        );
    }
}
