//! Strict HTTP/1.1 through a running proxy, seen from both raw sides: a client socket that
//! writes exact bytes and a recording raw-TCP backend that frames requests with its own few
//! lines of code (not hyper). Every rule: the client gets the stated status, the backend sees
//! no ambiguous framing and no smuggled request, the refusal is counted by reason, and a
//! normal client on another connection is answered.

mod http_support;

use http_support::raw::*;
use tenbin_proxy::http::{HttpLimits, HttpTimeouts, Reject};

/// A normal request on a new connection is answered by the backend.
async fn normal_client_is_served(s: &RawSetup) {
    let (resp, _) = exchange(s.proxy.addr, b"GET /normal HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let resp = resp.expect("a normal client gets an answer");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"backend");
}

/// Sends `bytes`, expects `status` and a closed connection, `reason` counted once more.
async fn refused(s: &RawSetup, bytes: &[u8], status: u16, reason: Reject) {
    let before = s.stats.rejected(reason);
    let (resp, mut conn) = exchange(s.proxy.addr, bytes).await;
    let text = String::from_utf8_lossy(bytes);
    let resp = resp.unwrap_or_else(|| panic!("no response to {text:?}"));
    assert_eq!(resp.status, status, "for {text:?}");
    assert!(
        closed(&mut conn).await,
        "connection left open after {text:?}"
    );
    counted(&s.stats, reason, before + 1).await;
    normal_client_is_served(s).await;
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

#[tokio::test]
async fn rfc9112_6_framing_errors_are_refused_before_the_backend() {
    let s = raw_setup(HttpLimits::default(), HttpTimeouts::default()).await;
    let cases: &[(&[u8], u16, Reject)] = &[
        // Transfer codings other than a final, single chunked.
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, Reject::Malformed),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, Reject::UnknownCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, Reject::UnknownCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, Reject::Framing),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400, Reject::Malformed),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400, Reject::Malformed),
        (b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, Reject::Malformed),
        // Content-Length that cannot be trusted.
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, Reject::Malformed),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd", 400, Reject::Malformed),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400, Reject::Malformed),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", 400, Reject::Malformed),
        // Invalid chunk sizes and chunk framing: 400 from tenbin, never a 502.
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, Reject::BadBody),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400, Reject::BadBody),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n", 400, Reject::BadBody),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n", 400, Reject::BadBody),
        // Field syntax.
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400, Reject::Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400, Reject::Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", 400, Reject::Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400, Reject::Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nc\r\n\r\n", 400, Reject::Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400, Reject::Malformed),
    ];
    for (bytes, status, reason) in cases {
        refused(&s, bytes, *status, *reason).await;
    }
    // Nothing refused reached the backend as a request: it only framed the normal ones.
    let seen = s.rec.requests();
    assert_eq!(seen.len(), cases.len(), "{seen:#?}");
    assert!(
        seen.iter().all(|r| r.line == "GET /normal HTTP/1.1"),
        "{seen:#?}"
    );
    s.rec.assert_unambiguous();
    // A bad chunk may leave at most a head (and the chunks before it) at the backend,
    // never a complete request.
    for conn in s.rec.received() {
        let text = String::from_utf8_lossy(&conn);
        assert!(
            !text.contains("0\r\n\r\n"),
            "a refused body was completed: {text}"
        );
    }
}

#[tokio::test]
async fn rfc9112_6_1_te_with_cl_frames_by_chunked_and_closes() {
    let s = raw_setup(HttpLimits::default(), HttpTimeouts::default()).await;
    // The classic CL.TE smuggle: by Content-Length the body is the next request.
    let smuggle = b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\n\
        Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let (resp, mut conn) = exchange(s.proxy.addr, smuggle).await;
    assert_eq!(resp.expect("answered").status, 200);
    assert!(
        closed(&mut conn).await,
        "TE with CL closes after the response"
    );
    // TE first, CL second: the same.
    let te_cl = b"POST /second HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
        Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (resp, mut conn) = exchange(s.proxy.addr, te_cl).await;
    assert_eq!(resp.expect("answered").status, 200);
    assert!(closed(&mut conn).await);
    normal_client_is_served(&s).await;

    let seen = s.rec.requests();
    let lines: Vec<&str> = seen.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /first HTTP/1.1",
            "POST /second HTTP/1.1",
            "GET /normal HTTP/1.1"
        ]
    );
    assert!(seen[0].body.is_empty(), "the chunked body was empty");
    assert_eq!(seen[1].body, b"abc");
    for r in &seen[..2] {
        assert!(r.all("content-length").is_empty(), "CL forwarded: {r:?}");
        assert_eq!(r.all("transfer-encoding"), ["chunked"]);
    }
    s.rec.assert_unambiguous();
    let all: Vec<u8> = s.rec.received().concat();
    assert!(!String::from_utf8_lossy(&all).contains("/smuggled"));
}

#[tokio::test]
async fn rfc9112_3_2_host_absolute_form_and_connect() {
    let s = raw_setup(HttpLimits::default(), HttpTimeouts::default()).await;
    let cases: &[(&[u8], u16, Reject)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", 400, Reject::Host),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
            Reject::Host,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            400,
            Reject::Host,
        ),
        (
            b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
            Reject::Host,
        ),
        (
            b"GET http://a:8080/ HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
            Reject::Host,
        ),
        (
            b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
            Reject::Host,
        ),
        (
            b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
            405,
            Reject::Connect,
        ),
        (
            b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n",
            405,
            Reject::Connect,
        ),
    ];
    for (bytes, status, reason) in cases {
        refused(&s, bytes, *status, *reason).await;
    }
    // HTTP/1.0 needs no Host.
    let (resp, _) = exchange(s.proxy.addr, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(resp.expect("answered").status, 200);
    // An absolute-form target is routed like Host, to tenbin's own pool: the backend sees
    // origin form, nobody connects to the named authority.
    let abs = b"GET http://evil.example:9/x?q HTTP/1.1\r\nHost: evil.example:9\r\n\r\n";
    let (resp, _) = exchange(s.proxy.addr, abs).await;
    assert_eq!(resp.expect("answered").status, 200);

    let seen = s.rec.requests();
    let lines: Vec<&str> = seen.iter().map(|r| r.line.as_str()).collect();
    let mut expected = vec!["GET /normal HTTP/1.1"; cases.len()];
    expected.extend(["GET /old HTTP/1.1", "GET /x?q HTTP/1.1"]);
    assert_eq!(lines, expected);
    assert_eq!(seen.last().unwrap().all("host"), ["evil.example:9"]);
    s.rec.assert_unambiguous();
}

#[tokio::test]
async fn size_limits_answer_414_431_and_413() {
    let limits = HttpLimits {
        max_body_bytes: 1000,
        ..HttpLimits::default()
    };
    let s = raw_setup(limits, HttpTimeouts::default()).await;
    let line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", long(9000));
    refused(&s, line.as_bytes(), 414, Reject::RequestLine).await;
    // Under the limit it passes.
    let fits = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", long(8000));
    let (resp, _) = exchange(s.proxy.addr, fits.as_bytes()).await;
    assert_eq!(resp.expect("answered").status, 200);

    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    refused(&s, many.as_bytes(), 431, Reject::HeaderTooLarge).await;
    // 40 KiB of headers: over the 32 KiB head, within hyper's read buffer.
    let big: String = (0..5)
        .map(|i| format!("X-{i}: {}\r\n", long(8000)))
        .collect();
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\n{big}\r\n");
    refused(&s, big.as_bytes(), 431, Reject::HeaderTooLarge).await;
    // Past the read buffer: hyper's own 431.
    let huge: String = (0..12)
        .map(|i| format!("X-{i}: {}\r\n", long(8000)))
        .collect();
    let huge = format!("GET / HTTP/1.1\r\nHost: a\r\n{huge}\r\n");
    refused(&s, huge.as_bytes(), 431, Reject::HeaderTooLarge).await;

    let declared = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n{}",
        long(1001)
    );
    refused(&s, declared.as_bytes(), 413, Reject::BodyTooLarge).await;
    let chunk = format!("{:x}\r\n{}\r\n", 600, long(600));
    let chunked = format!(
        "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    refused(&s, chunked.as_bytes(), 413, Reject::BodyTooLarge).await;
    let ok = format!(
        "POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{}",
        long(1000)
    );
    let (resp, _) = exchange(s.proxy.addr, ok.as_bytes()).await;
    assert_eq!(resp.expect("answered").status, 200);

    let lines: Vec<String> = s.rec.requests().into_iter().map(|r| r.line).collect();
    assert!(
        !lines.iter().any(|l| l.starts_with("POST /chunked")),
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("POST /ok HTTP/1.1"));
    s.rec.assert_unambiguous();
}

/// One keep-alive connection that starts with plain requests (served without hyper, see
/// `http::h1`) and then sends a body, which hands the connection to hyper with the bytes
/// already read: every request is answered in order, on the same connection, and the
/// backend sees each exactly once, the body whole. The POST and the GET after it arrive in
/// one write, so hyper takes over with a pipelined request already in the buffer.
#[tokio::test]
async fn a_connection_handed_to_hyper_midway_loses_no_request() {
    let s = raw_setup(HttpLimits::default(), HttpTimeouts::default()).await;
    let mut conn = tokio::net::TcpStream::connect(s.proxy.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    conn.write_all(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..2 {
        let resp = read_response(&mut conn)
            .await
            .expect("plain request answered");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"backend");
    }
    conn.write_all(
        b"POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /4 HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let resp = read_response(&mut conn)
            .await
            .expect("answered after the handover");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"backend");
    }
    let seen = s.rec.requests();
    let lines: Vec<&str> = seen.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "GET /1 HTTP/1.1",
            "GET /2 HTTP/1.1",
            "POST /3 HTTP/1.1",
            "GET /4 HTTP/1.1"
        ]
    );
    assert_eq!(seen[2].body, b"hello");
    s.rec.assert_unambiguous();
}
