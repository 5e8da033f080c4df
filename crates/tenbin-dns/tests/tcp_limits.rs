//! DNS over TCP against hostile clients, with raw sockets writing exact bytes on 127.0.0.1:
//! silent, half-sent and never-reading clients are closed by their timeouts (paused time, the
//! server in-process), and hundreds of them do not lock out a new client: at the cap the
//! connection idle longest is closed first (RFC 7766 §6.2.3).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tenbin_config::dns::DnsSection;
use tenbin_dns::tcp::{TCP_IDLE, TCP_WRITE};
use tenbin_dns::{Engine, HealthSnapshot, Sockets, TcpLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

/// Bounds every wait on a real event (never a threshold on how fast it comes).
const DEADLINE: Duration = Duration::from_secs(60);

fn config() -> DnsSection {
    let text = format!(
        r#"
        listen = ["127.0.0.1:0"]
        {topology}
        [[zones]]
        origin = "example.test."
        soa = {{ mname = "ns1", rname = "hostmaster", minimum = 30 }}
        records = [
          {{ name = "ns1", type = "A", data = "192.0.2.53" }},
          {{ name = "big", type = "TXT", data = "{big}" }},
        ]
        "#,
        topology = include_str!("data/two_datacenters.toml"),
        big = "x".repeat(1000),
    );
    toml::from_str(&text).unwrap()
}

/// Starts the server on the current runtime; dropping the sender stops it.
async fn start(limits: TcpLimits) -> (SocketAddr, oneshot::Sender<()>) {
    let cfg = config();
    let engine = Arc::new(Engine::new(&cfg).unwrap());
    let (_tx, health) = watch::channel(Arc::new(HealthSnapshot::default()));
    let sockets = Sockets::bind(&cfg.listen, 1).unwrap();
    let addr = sockets.tcp[0].local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _keep = _tx;
        tenbin_dns::serve_with(engine, health, sockets, limits, async {
            let _ = stop_rx.await;
        })
        .await
    });
    (addr, stop_tx)
}

/// A length-prefixed query for `name` (dotted, no trailing dot) of `qtype`, built by hand.
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    let mut out = (m.len() as u16).to_be_bytes().to_vec();
    out.extend(m);
    out
}

/// Sends a query on a blocking socket and reads the answer's id and rcode.
fn exchange(s: &mut TcpStream, id: u16) -> std::io::Result<(u16, u8)> {
    s.write_all(&query(id, "ns1.example.test", 1))?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body)?;
    Ok((u16::from_be_bytes([body[0], body[1]]), body[3] & 0x0f))
}

/// Whether the server has closed `s` (EOF or reset), without waiting.
fn closed(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let r = match (&*s).read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    r
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

#[tokio::test(start_paused = true)]
async fn silent_and_half_sent_clients_are_closed_after_the_idle_timeout() {
    let limits = TcpLimits {
        idle: TCP_IDLE,
        write: TCP_WRITE,
        max_conns: 16,
    };
    let (addr, _stop) = start(limits).await;
    let full = query(7, "ns1.example.test", 1);
    // Nothing; one byte of the length; the length and half the message.
    for sent in [&full[..0], &full[..1], &full[..full.len() / 2]] {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(sent).await.unwrap();
        let t0 = tokio::time::Instant::now();
        let mut b = [0u8; 64];
        let n = c.read(&mut b).await.unwrap_or(0);
        assert_eq!(
            n,
            0,
            "the server answered {} bytes of a partial query",
            sent.len()
        );
        assert!(t0.elapsed() >= TCP_IDLE, "closed after {:?}", t0.elapsed());
    }
    // A client that completes its query is answered, then closed when idle.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(&full).await.unwrap();
    let len = c.read_u16().await.unwrap();
    let mut body = vec![0u8; usize::from(len)];
    c.read_exact(&mut body).await.unwrap();
    assert_eq!(&body[..2], &7u16.to_be_bytes());
    let t0 = tokio::time::Instant::now();
    assert_eq!(c.read(&mut body).await.unwrap_or(0), 0);
    assert!(t0.elapsed() >= TCP_IDLE);
}

// Real time, not paused: with paused time the runtime may jump to the outer timeout while the
// kernel still moves bytes and before the server's write has blocked and armed its timer. A
// short write timeout keeps the wait small; the bounds below are about which timeout closed
// the connection, not about speed.
#[tokio::test]
async fn a_client_that_never_reads_is_closed_by_the_write_timeout() {
    let idle = Duration::from_secs(3600);
    let write = Duration::from_millis(500);
    let limits = TcpLimits {
        idle,
        write,
        max_conns: 16,
    };
    let (addr, _stop) = start(limits).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.set_send_buffer_size(4096).unwrap();
    let mut c = sock.connect(addr).await.unwrap();
    // Pipelined queries for a 1 kB answer, never read: the server's writes fill our receive
    // buffer and its send buffer, then block; our queries then fill its receive buffer and our
    // send buffer, and our writes block until the server gives up. 36 MB of queries (1 GB of
    // answers) exceed every buffer many times.
    let batch: Vec<u8> = (0..1000u16)
        .flat_map(|i| query(i, "big.example.test", 16))
        .collect();
    let t0 = tokio::time::Instant::now();
    let flood = async {
        for _ in 0..1000 {
            c.write_all(&batch).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let result = tokio::time::timeout(Duration::from_secs(120), flood)
        .await
        .expect("a client that never reads held its connection past any timeout");
    let err = result.expect_err("the server kept reading while its answers were not taken");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{err}"
    );
    let took = t0.elapsed();
    assert!(took >= write && took < idle, "closed after {took:?}");
}

/// Raw clients that never complete an exchange, cycling silent / one byte / half a query.
fn hostile(addr: SocketAddr, i: usize) -> TcpStream {
    let mut s = connect(addr);
    let q = query(1, "ns1.example.test", 1);
    let sent = match i % 3 {
        0 => &q[..0],
        1 => &q[..1],
        _ => &q[..q.len() / 2],
    };
    s.write_all(sent).unwrap();
    s
}

/// Waits (bounded) until `n` of `conns` are closed, then checks which.
fn wait_closed(conns: &[TcpStream], n: usize) -> Vec<usize> {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let gone: Vec<usize> = (0..conns.len()).filter(|&i| closed(&conns[i])).collect();
        if gone.len() >= n || std::time::Instant::now() > end {
            return gone;
        }
        std::thread::yield_now();
    }
}

fn with_server<T>(limits: TcpLimits, f: impl FnOnce(SocketAddr) -> T) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (addr, stop) = rt.block_on(start(limits));
    let out = f(addr);
    drop(stop);
    out
}

#[test]
fn hundreds_of_idle_and_half_sent_clients_do_not_lock_out_a_new_one() {
    // Timeouts far beyond the test: only eviction can make room.
    let hour = Duration::from_secs(3600);
    let limits = TcpLimits {
        idle: hour,
        write: hour,
        max_conns: 256,
    };
    with_server(limits, |addr| {
        let hostile: Vec<TcpStream> = (0..300).map(|i| hostile(addr, i)).collect();
        let mut fresh = connect(addr);
        assert_eq!(exchange(&mut fresh, 42).unwrap(), (42, 0));
        // 301 clients under a cap of 256: the 45 oldest went, one per newcomer, in order.
        let gone = wait_closed(&hostile, 45);
        assert_eq!(gone, (0..45).collect::<Vec<_>>());
        // The cap held: every survivor is still open, and the fresh client still served.
        assert_eq!(exchange(&mut fresh, 43).unwrap(), (43, 0));
        assert_eq!(
            wait_closed(&hostile, 45).len(),
            45,
            "closed without a newcomer"
        );
    });
}

#[test]
fn at_the_cap_the_connection_idle_longest_is_closed_first() {
    let hour = Duration::from_secs(3600);
    let limits = TcpLimits {
        idle: hour,
        write: hour,
        max_conns: 4,
    };
    with_server(limits, |addr| {
        let mut conns: Vec<TcpStream> = (0..4).map(|_| connect(addr)).collect();
        for (i, c) in conns.iter_mut().enumerate() {
            assert_eq!(exchange(c, i as u16).unwrap().0, i as u16);
        }
        // 0 talks again: 1 has now gone longest without an exchange.
        assert_eq!(exchange(&mut conns[0], 100).unwrap().0, 100);
        let mut fresh = connect(addr);
        assert_eq!(exchange(&mut fresh, 5).unwrap().0, 5);
        assert_eq!(wait_closed(&conns, 1), vec![1]);
        for i in [0, 2, 3] {
            assert_eq!(
                exchange(&mut conns[i], 200 + i as u16).unwrap().0,
                200 + i as u16
            );
        }
    });
}
