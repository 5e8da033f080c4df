//! Hostile clients against a running proxy, from raw sockets: hundreds of slow-header,
//! slow-body and idle connections, per-source and per-frontend connection limits, the
//! per-source request rate, and an HTTP/2 rapid-reset client. Normal clients keep being
//! served; the hostile ones are cut at their timeouts or limits and counted by reason.
//! Assertions are on statuses, closes and counters; `DEADLINE` only bounds a hung test.

mod http_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_support::raw::*;
use tenbin_proxy::http::{HttpLimits, HttpTimeouts, Reject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// Hostile connections of each kind.
const HOSTILE: usize = 200;

fn timeouts(t: Duration) -> HttpTimeouts {
    HttpTimeouts {
        client_header: t,
        client_body: t,
        client_idle: t,
        ..HttpTimeouts::default()
    }
}

async fn get(addr: SocketAddr) -> u16 {
    let (resp, _) = exchange(addr, b"GET /normal HTTP/1.1\r\nHost: a\r\n\r\n").await;
    resp.map_or(0, |r| r.status)
}

async fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    sock.connect(to).await.unwrap()
}

/// One GET on a new connection from `ip`: its status and the connection, left open.
async fn get_from(ip: &str, to: SocketAddr) -> (Option<u16>, TcpStream) {
    let mut c = connect_from(ip, to).await;
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    (read_response(&mut c).await.map(|r| r.status), c)
}

/// What a hostile connection saw: the status it was answered with, if any, and whether the
/// proxy closed it before the deadline.
type Seen = (Option<u16>, bool);

/// Sends a head without its end, then one more header line now and then.
async fn slow_header(mut s: TcpStream) -> Seen {
    if s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.is_err() {
        return (None, true);
    }
    let mut buf = [0u8; 1024];
    let mut status = None;
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return (status, true),
                Ok(n) => status = status.or_else(|| parse_status(&buf[..n])),
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return (status, true);
                }
            }
            _ = tokio::time::sleep_until(end) => return (status, false),
        }
    }
}

/// Sends a head and part of its body, then nothing.
async fn slow_body(mut s: TcpStream, chunked: bool) -> Seen {
    let start: &[u8] = if chunked {
        b"POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n"
    } else {
        b"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabcde"
    };
    s.write_all(start).await.unwrap();
    hold(s).await
}

/// Connects and sends nothing; or sends one request, reads the answer and then idles.
async fn idle(mut s: TcpStream, after_request: bool) -> Seen {
    if after_request {
        s.write_all(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let first = try_read_response(&mut s).await.ok().flatten();
        assert_eq!(
            first.map(|r| r.status),
            Some(200),
            "the idle client's first request"
        );
    }
    hold(s).await
}

/// Waits for the proxy to answer and close, or for the deadline.
async fn hold(mut s: TcpStream) -> Seen {
    let status = match try_read_response(&mut s).await {
        Err(_) => return (None, false),
        Ok(r) => r.map(|r| r.status),
    };
    (status, status.is_none() || closed(&mut s).await)
}

fn parse_status(buf: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(buf).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_slow_and_idle_clients_do_not_keep_normal_ones_waiting() {
    // Timeouts far beyond the test: every hostile connection stays open meanwhile.
    let s = raw_setup(HttpLimits::default(), timeouts(Duration::from_secs(600))).await;
    let addr = s.proxy.addr;
    let mut hostile = Vec::new();
    for i in 0..3 * HOSTILE {
        if i % 30 == 29 {
            // Paces the connects (see the next test) and is served among them.
            assert_eq!(get(addr).await, 200);
        }
        let mut h = TcpStream::connect(addr).await.unwrap();
        let bytes: &[u8] = match i % 3 {
            0 => b"GET / HTTP/1.1\r\nHost: a\r\n",
            1 => b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab",
            _ => b"",
        };
        h.write_all(bytes).await.unwrap();
        hostile.push(h);
    }
    for _ in 0..20 {
        assert_eq!(get(addr).await, 200);
    }
    // They were all still there while the normal clients were served.
    for reason in [
        Reject::HeaderTimeout,
        Reject::BodyTimeout,
        Reject::IdleTimeout,
    ] {
        assert_eq!(s.stats.rejected(reason), 0);
    }
    drop(hostile);
    assert_eq!(get(addr).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_slow_body_and_idle_clients_are_cut_at_their_timeouts() {
    let s = raw_setup(HttpLimits::default(), timeouts(Duration::from_millis(500))).await;
    let addr = s.proxy.addr;
    let mut tasks = JoinSet::new();
    let connect = || TcpStream::connect(addr);
    for i in 0..HOSTILE {
        let (header, body, idler) = (connect().await, connect().await, connect().await);
        tasks.spawn(async move { ("header", slow_header(header.unwrap()).await) });
        let chunked = i % 2 == 0;
        tasks.spawn(async move { ("body", slow_body(body.unwrap(), chunked).await) });
        let after = i % 2 == 0;
        let kind = if after {
            "idle after a request"
        } else {
            "idle"
        };
        tasks.spawn(async move { (kind, idle(idler.unwrap(), after).await) });
        // Normal clients are served meanwhile. Their answer also paces the hostile
        // connects: the listener accepts in order, so everything before it was accepted
        // and the kernel's accept queue (whose overflow would leave a silent client
        // unaccepted for a SYN-ACK retry or two) never fills.
        if i % 10 == 9 {
            assert_eq!(get(addr).await, 200);
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (kind, (status, was_closed)) = done.unwrap();
        assert!(was_closed, "a {kind} client was not cut");
        match kind {
            "body" => assert_eq!(status, Some(408), "slow body"),
            "idle" | "idle after a request" => {
                assert_eq!(status, None, "idle connections close without an answer")
            }
            _ => assert!(status.is_none() || status == Some(408), "{status:?}"),
        }
    }
    counted(&s.stats, Reject::BodyTimeout, HOSTILE as u64).await;
    // A slow head and a connection that never sent a byte both owe their head within the
    // header timeout (timed from the accept); a client idle after a request is cut by the
    // idle timeout. Every client is cut once, for its own reason.
    let (half, all) = (HOSTILE as u64 / 2, HOSTILE as u64);
    counted(&s.stats, Reject::HeaderTimeout, all + half).await;
    counted(&s.stats, Reject::IdleTimeout, half).await;
    assert_eq!(s.stats.rejected(Reject::HeaderTimeout), all + half);
    assert_eq!(s.stats.rejected(Reject::IdleTimeout), half);
    assert_eq!(s.stats.rejected(Reject::BodyTimeout), all);
    // No slow body ever reached the backend complete.
    assert!(s
        .rec
        .requests()
        .iter()
        .all(|r| r.line != "POST /slow HTTP/1.1"));
    s.rec.assert_unambiguous();
    assert_eq!(get(addr).await, 200);
}

#[tokio::test]
async fn connections_per_source_and_per_frontend() {
    let limits = HttpLimits {
        max_connections: 5,
        max_connections_per_source: 3,
        ..HttpLimits::default()
    };
    let s = raw_setup(limits, HttpTimeouts::default()).await;
    let addr = s.proxy.addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        let (status, c) = get_from("127.0.0.1", addr).await;
        assert_eq!(status, Some(200));
        held.push(c);
    }
    // A fourth from the same source: 429 and closed.
    let (status, mut c) = get_from("127.0.0.1", addr).await;
    assert_eq!(status, Some(429));
    assert!(closed(&mut c).await);
    assert_eq!(s.stats.rejected(Reject::SourceConnections), 1);
    // Another source is served, up to the frontend's five.
    for _ in 0..2 {
        let (status, c) = get_from("127.0.0.2", addr).await;
        assert_eq!(status, Some(200));
        held.push(c);
    }
    let (status, mut c) = get_from("127.0.0.3", addr).await;
    assert_eq!(status, Some(503));
    assert!(closed(&mut c).await);
    assert_eq!(s.stats.rejected(Reject::FrontendConnections), 1);
    // Closing gives the slots back (once the proxy has seen the close).
    drop(held);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while get_from("127.0.0.1", addr).await.0 != Some(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slots never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.rec.assert_unambiguous();
}

#[tokio::test]
async fn requests_per_second_per_source_answers_429() {
    let limits = HttpLimits {
        requests_per_second_per_source: 1,
        request_burst_per_source: 5,
        ..HttpLimits::default()
    };
    let s = raw_setup(limits, HttpTimeouts::default()).await;
    let addr = s.proxy.addr;
    let started = tokio::time::Instant::now();
    let mut c = connect_from("127.0.0.1", addr).await;
    let mut served = 0u64;
    let refused = loop {
        c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let resp = read_response(&mut c).await.expect("answered");
        if resp.status != 200 {
            break resp;
        }
        served += 1;
        assert!(served < 50, "never limited");
    };
    assert_eq!(refused.status, 429);
    // The burst, plus one per second that passed, plus one for the partial second.
    let allowed = 5 + started.elapsed().as_secs() + 1;
    assert!(
        served >= 5 && served <= allowed,
        "{served} served, {allowed} allowed"
    );
    assert!(closed(&mut c).await, "a refused connection closes");
    assert!(s.stats.rejected(Reject::SourceRate) >= 1);
    // Another source has its own bucket (that reconnecting does not refill one is
    // `admit`'s paused-time unit test).
    assert_eq!(get_from("127.0.0.2", addr).await.0, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_rapid_reset_client_is_cut_off_while_others_are_served() {
    let limits = HttpLimits {
        h2_max_resets: 50,
        ..HttpLimits::default()
    };
    let s = raw_setup(limits, HttpTimeouts::default()).await;
    let addr = s.proxy.addr;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let mut sent = 0;
    let cut = loop {
        if sent >= 5_000 {
            break false;
        }
        let req = http::Request::post(format!("http://{addr}/reset"))
            .body(())
            .unwrap();
        let ready = match tokio::time::timeout(DEADLINE, h2.clone().ready()).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => break true,
            Err(_) => break false,
        };
        h2 = ready;
        match h2.send_request(req, false) {
            Ok((_, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                sent += 1;
            }
            Err(_) => break true,
        }
        // Let the proxy start serving some of them, as a real attacker's would be.
        if sent % 10 == 0 {
            tokio::task::yield_now().await;
        }
    };
    assert!(cut, "the connection survived {sent} resets");
    let ended = tokio::time::timeout(DEADLINE, driver)
        .await
        .expect("closed");
    assert!(ended.unwrap().is_err() || sent < 5_000);
    assert!(
        s.stats.rejected(Reject::H2Reset) >= 1 || s.stats.rejected(Reject::H2Protocol) >= 1,
        "{:?}",
        s.stats.snapshot()
    );
    // Others are served: HTTP/1.1 and a well-behaved HTTP/2 client.
    assert_eq!(get(addr).await, 200);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut h2 = h2.ready().await.unwrap();
    let req = http::Request::get(format!("http://{addr}/fine"))
        .body(())
        .unwrap();
    let (resp, _) = h2.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(DEADLINE, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk: Bytes = chunk.unwrap();
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"backend");
    let _ = s.rec.requests();
}

/// Streams the proxy already forwarded are past h2's own pending-accept reset limit: only
/// tenbin's budget (cancelled beyond completed) stops a client resetting them.
#[tokio::test]
async fn h2_resets_of_forwarded_streams_spend_the_budget() {
    let limits = HttpLimits {
        h2_max_resets: 5,
        ..HttpLimits::default()
    };
    let s = raw_setup(limits, HttpTimeouts::default()).await;
    let addr = s.proxy.addr;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let mut h2 = h2.ready().await.unwrap();
    let forwarded = |rec: &Recorder| {
        let all = rec.received().concat();
        String::from_utf8_lossy(&all)
            .matches("POST /forwarded")
            .count()
    };
    let mut resets = 0;
    while resets < 100 {
        let req = http::Request::post(format!("http://{addr}/forwarded"))
            .body(())
            .unwrap();
        let Ok((_, mut stream)) = h2.send_request(req, false) else {
            break;
        };
        // Wait until the backend has the head: the stream was accepted and forwarded.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while forwarded(&s.rec) <= resets && !driver.is_finished() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stream {resets} never forwarded: {:?}",
                s.stats.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if driver.is_finished() {
            break;
        }
        stream.send_reset(h2::Reason::CANCEL);
        resets += 1;
        match tokio::time::timeout(DEADLINE, h2.clone().ready()).await {
            Ok(Ok(r)) => h2 = r,
            _ => break,
        }
        if driver.is_finished() {
            break;
        }
    }
    assert!((6..100).contains(&resets), "cut after {resets} resets");
    counted(&s.stats, Reject::H2Reset, 1).await;
    assert_eq!(get(addr).await, 200);
}

#[tokio::test]
async fn h2_settings_carry_the_stream_and_header_list_limits() {
    let limits = HttpLimits {
        h2_max_concurrent_streams: 7,
        h2_max_header_list_bytes: 4096,
        ..HttpLimits::default()
    };
    let s = raw_setup(limits, HttpTimeouts::default()).await;
    let addr = s.proxy.addr;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (h2, mut conn) = h2::client::handshake(tcp).await.unwrap();
    // Drive the connection until the server's SETTINGS arrived.
    let mut h2 = tokio::select! {
        r = h2.ready() => r.unwrap(),
        _ = &mut conn => panic!("connection ended"),
    };
    let send = |h2: &mut h2::client::SendRequest<Bytes>, big: bool| {
        let mut req = http::Request::get(format!("http://{addr}/h2"));
        if big {
            req = req.header("x-big", "v".repeat(8000));
        }
        h2.send_request(req.body(()).unwrap(), true).unwrap().0
    };
    let first = send(&mut h2, false);
    let resp = tokio::select! {
        r = first => r.unwrap(),
        _ = &mut conn => panic!("connection ended"),
    };
    assert_eq!(resp.status(), 200);
    assert_eq!(conn.max_concurrent_send_streams(), 7);
    // A header list over the limit is refused (431 or a stream error), never forwarded.
    let big = send(&mut h2, true);
    let outcome = tokio::select! {
        r = big => r.map(|r| r.status().as_u16()),
        _ = &mut conn => panic!("connection ended"),
    };
    assert!(matches!(outcome, Ok(431) | Err(_)), "{outcome:?}");
    let all = String::from_utf8_lossy(&s.rec.received().concat()).into_owned();
    assert!(
        !all.contains("x-big"),
        "the oversized list reached the backend"
    );
    assert_eq!(get(addr).await, 200);
}

/// A keep-alive client may idle past the header timeout up to the idle timeout; once the
/// first byte of its next head arrives, the head is due within the header timeout.
#[tokio::test]
async fn keep_alive_idles_for_the_idle_timeout_and_a_head_is_timed_from_its_first_byte() {
    let t = HttpTimeouts {
        client_header: Duration::from_millis(300),
        client_idle: Duration::from_millis(2500),
        ..HttpTimeouts::default()
    };
    let s = raw_setup(HttpLimits::default(), t).await;
    let request = b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n";

    // Idle three header timeouts between two requests: still served.
    let mut c = TcpStream::connect(s.proxy.addr).await.unwrap();
    c.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut c).await.map(|r| r.status), Some(200));
    tokio::time::sleep(Duration::from_millis(900)).await;
    c.write_all(request).await.unwrap();
    assert_eq!(
        read_response(&mut c).await.map(|r| r.status),
        Some(200),
        "a keep-alive client idle past the header timeout was cut"
    );
    // Then idle for good: cut at the idle timeout, without an answer.
    assert!(closed(&mut c).await);
    counted(&s.stats, Reject::IdleTimeout, 1).await;
    assert_eq!(s.stats.rejected(Reject::HeaderTimeout), 0);

    // Idle, then half a head and nothing more: cut by the header timeout.
    let mut c = TcpStream::connect(s.proxy.addr).await.unwrap();
    c.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut c).await.map(|r| r.status), Some(200));
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    assert!(closed(&mut c).await);
    counted(&s.stats, Reject::HeaderTimeout, 1).await;
    assert_eq!(s.stats.rejected(Reject::IdleTimeout), 1);
    assert!(s
        .rec
        .requests()
        .iter()
        .all(|r| r.line != "GET /slow HTTP/1.1"));
    assert_eq!(get(s.proxy.addr).await, 200);
}
