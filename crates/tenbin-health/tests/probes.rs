//! Every check kind against tiny loopback peers, with drain vs down classification.
//! Pass cases use real time with a generous budget (a budget, never an asserted duration);
//! timeout cases use paused time, so "no answer" resolves at once.

mod support;

use std::time::Duration;

use regex::Regex;
use tenbin_health::agent::{AgentAdmin, AgentOper};
use tenbin_health::outcome::Verdict;
use tenbin_health::probe::{self, agent::AgentError};
use tenbin_health::{CheckKind, HttpCheck, ProbeError};
use tenbin_testkit::skip;

const BUDGET: Duration = Duration::from_secs(10);

fn http(f: impl FnOnce(&mut HttpCheck)) -> CheckKind {
    let mut h = HttpCheck {
        path: "/health".into(),
        ..HttpCheck::default()
    };
    f(&mut h);
    CheckKind::Http(h)
}

fn verdict(r: &Result<String, ProbeError>) -> Option<Verdict> {
    match r {
        Ok(_) => Some(Verdict::Pass),
        Err(e) => e.verdict(),
    }
}

#[tokio::test]
async fn tcp_connect_passes_and_refused_is_down() {
    let peer = support::http(&support::response(200, "")).await;
    let ok = probe::run(&CheckKind::Tcp, peer.addr, BUDGET).await;
    assert_eq!(verdict(&ok), Some(Verdict::Pass), "{ok:?}");
    let refused = probe::run(&CheckKind::Tcp, support::closed_port().await, BUDGET).await;
    assert!(matches!(refused, Err(ProbeError::Refused)), "{refused:?}");
    assert_eq!(verdict(&refused), Some(Verdict::Down));
}

#[tokio::test]
async fn http_sends_method_path_and_host_and_checks_status() {
    let peer = support::http(&support::response(200, "fine")).await;
    let kind = http(|h| {
        h.method = "HEAD".into();
        h.host = Some("app.local".into());
        h.expect_status = vec![200, 204];
    });
    let r = probe::run(&kind, peer.addr, BUDGET).await;
    assert_eq!(r.as_deref().ok(), Some("HTTP 200"));
    let req = peer.requests.lock().await.join("");
    assert!(req.starts_with("HEAD /health HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("\r\nHost: app.local\r\n"), "{req}");

    let kind = http(|h| h.expect_status = vec![200]);
    let bad = support::http(&support::response(503, "busy")).await;
    let r = probe::run(&kind, bad.addr, BUDGET).await;
    assert!(
        matches!(r, Err(ProbeError::Status { got: 503, .. })),
        "{r:?}"
    );
    assert_eq!(verdict(&r), Some(Verdict::Down));
}

#[tokio::test]
async fn default_status_set_is_2xx_and_3xx_and_host_defaults_to_address() {
    let redirect = support::http(&support::response(302, "")).await;
    let r = probe::run(&http(|_| {}), redirect.addr, BUDGET).await;
    assert_eq!(verdict(&r), Some(Verdict::Pass), "{r:?}");
    let req = redirect.requests.lock().await.join("");
    assert!(
        req.contains(&format!("Host: {}\r\n", redirect.addr)),
        "{req}"
    );
    let err = support::http(&support::response(404, "")).await;
    let r = probe::run(&http(|_| {}), err.addr, BUDGET).await;
    assert_eq!(verdict(&r), Some(Verdict::Down), "{r:?}");
}

#[tokio::test]
async fn content_string_and_regex_match_or_mark_down() {
    let peer = support::http(&support::response(200, "status: OK v=42\n")).await;
    let ok = probe::run(
        &http(|h| h.expect_body = Some("OK".into())),
        peer.addr,
        BUDGET,
    )
    .await;
    assert_eq!(
        ok.as_deref().ok(),
        Some("HTTP 200, content matches"),
        "{ok:?}"
    );
    let re = Regex::new(r"v=\d+").unwrap();
    let ok = probe::run(&http(|h| h.expect_regex = Some(re)), peer.addr, BUDGET).await;
    assert_eq!(verdict(&ok), Some(Verdict::Pass), "{ok:?}");

    let miss = probe::run(
        &http(|h| h.expect_body = Some("READY".into())),
        peer.addr,
        BUDGET,
    )
    .await;
    assert!(matches!(miss, Err(ProbeError::BodyMismatch(_))), "{miss:?}");
    assert_eq!(verdict(&miss), Some(Verdict::Down));
    let re = Regex::new(r"^ready$").unwrap();
    let miss = probe::run(&http(|h| h.expect_regex = Some(re)), peer.addr, BUDGET).await;
    assert!(
        matches!(miss, Err(ProbeError::RegexMismatch(_))),
        "{miss:?}"
    );
}

#[tokio::test]
async fn content_in_chunked_and_close_delimited_bodies() {
    let chunked =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nall\r\n5\r\n good\r\n0\r\n\r\n";
    let peer = support::http(chunked).await;
    let want = |s: &str| http(|h| h.expect_body = Some(s.into()));
    let r = probe::run(&want("all good"), peer.addr, BUDGET).await;
    assert_eq!(verdict(&r), Some(Verdict::Pass), "{r:?}");
    let r = probe::run(&want("3\r\n"), peer.addr, BUDGET).await;
    assert!(
        matches!(r, Err(ProbeError::BodyMismatch(_))),
        "chunk framing is not content: {r:?}"
    );

    let close = support::http("HTTP/1.0 200 OK\r\n\r\nuntil close").await;
    let r = probe::run(&want("close"), close.addr, BUDGET).await;
    assert_eq!(verdict(&r), Some(Verdict::Pass), "{r:?}");
}

#[tokio::test]
async fn content_beyond_the_read_cap_is_not_seen() {
    let body = format!("{}NEEDLE", "x".repeat(10_000));
    let peer = support::http(&support::response(200, &body)).await;
    let capped = http(|h| {
        h.expect_body = Some("NEEDLE".into());
        h.max_body = 1000;
    });
    let r = probe::run(&capped, peer.addr, BUDGET).await;
    assert!(matches!(r, Err(ProbeError::BodyMismatch(_))), "{r:?}");
    let r = probe::run(
        &http(|h| h.expect_body = Some("NEEDLE".into())),
        peer.addr,
        BUDGET,
    )
    .await;
    assert_eq!(verdict(&r), Some(Verdict::Pass), "{r:?}");
}

#[tokio::test]
async fn garbage_response_is_down() {
    let peer = support::http("SSH-2.0-OpenSSH\r\n\r\n").await;
    let r = probe::run(&http(|_| {}), peer.addr, BUDGET).await;
    assert!(matches!(r, Err(ProbeError::Malformed(_))), "{r:?}");
    assert_eq!(verdict(&r), Some(Verdict::Down));
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_is_drained_not_down() {
    let addr = support::silent().await;
    let r = probe::run(&http(|_| {}), addr, Duration::from_secs(2)).await;
    // Under paused time the handshake or the answer may be the thing that runs out first;
    // either is a timeout, and a timeout drains.
    assert!(
        matches!(
            r,
            Err(ProbeError::ResponseTimeout(_) | ProbeError::ConnectTimeout(_))
        ),
        "{r:?}"
    );
    assert_eq!(verdict(&r), Some(Verdict::Drain));
}

#[tokio::test]
async fn a_full_accept_queue_times_the_handshake_out_and_drains() {
    // The seeds' overloaded server: it no longer accepts, so new SYNs are dropped by the
    // kernel and handshakes hang. Real time is needed (paused time does not wait for real
    // sockets); the durations below are budgets that only bound the test.
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        let c = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_secs(2), c).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the accept queue: {e}"),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(
        full,
        "the accept queue never filled ({} connections)",
        held.len()
    );
    let r = probe::run(&CheckKind::Tcp, addr, Duration::from_secs(1)).await;
    assert!(matches!(r, Err(ProbeError::ConnectTimeout(_))), "{r:?}");
    assert_eq!(verdict(&r), Some(Verdict::Drain));
    drop(listener);
}

#[tokio::test]
async fn each_agent_reply_is_understood() {
    type Case = (
        &'static str,
        Option<u32>,
        Option<AgentAdmin>,
        Option<AgentOper>,
    );
    let cases: [Case; 9] = [
        ("75%\n", Some(75), None, None),
        ("up\n", None, None, Some(AgentOper::Up)),
        (
            "down #maintenance window\n",
            None,
            None,
            Some(AgentOper::Down),
        ),
        ("fail\n", None, None, Some(AgentOper::Down)),
        ("stopped\n", None, None, Some(AgentOper::Down)),
        ("drain\n", None, Some(AgentAdmin::Drain), None),
        ("maint\n", None, Some(AgentAdmin::Maint), None),
        ("ready 100%\n", Some(100), Some(AgentAdmin::Ready), None),
        ("UP, 20%, maxconn:7", Some(20), None, Some(AgentOper::Up)),
    ];
    for (line, percent, admin, oper) in cases {
        let addr = support::agent(line, b"").await;
        let deadline = tokio::time::Instant::now() + BUDGET;
        let r = probe::agent::query(addr, b"", deadline).await.unwrap();
        assert_eq!(
            (r.percent, r.admin, r.oper),
            (percent, admin, oper),
            "{line:?}"
        );
    }
    let addr = support::agent("down #disk full\n", b"").await;
    let deadline = tokio::time::Instant::now() + BUDGET;
    let r = probe::agent::query(addr, b"", deadline).await.unwrap();
    assert_eq!(r.reason.as_deref(), Some("disk full"));
}

#[tokio::test]
async fn agent_gets_the_configured_send_string_and_errors_are_typed() {
    let addr = support::agent("42%\n", b"ping\n").await;
    let deadline = tokio::time::Instant::now() + BUDGET;
    let r = probe::agent::query(addr, b"ping\n", deadline)
        .await
        .unwrap();
    assert_eq!(r.percent, Some(42));

    let deadline = tokio::time::Instant::now() + BUDGET;
    let r = probe::agent::query(support::closed_port().await, b"", deadline).await;
    assert!(
        matches!(r, Err(AgentError::Probe(ProbeError::Refused))),
        "{r:?}"
    );
    let addr = support::agent("150x%\n", b"").await;
    let deadline = tokio::time::Instant::now() + BUDGET;
    assert!(matches!(
        probe::agent::query(addr, b"", deadline).await,
        Err(AgentError::Parse(_))
    ));
}

#[tokio::test]
async fn icmp_echo_to_loopback() {
    if !skip::need_root("CAP_NET_RAW for ICMP") {
        return;
    }
    let addr = "127.0.0.1:0".parse().unwrap();
    let r = probe::run(&CheckKind::Icmp, addr, BUDGET).await;
    assert!(
        r.as_deref().is_ok_and(|s| s.starts_with("echo reply")),
        "{r:?}"
    );
    // ::1 exists only where IPv6 is enabled on lo; when it is, the echo must come back.
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        return skip::skip("no ::1 on lo: the IPv6 echo is not tried");
    }
    let r6 = probe::run(&CheckKind::Icmp, "[::1]:0".parse().unwrap(), BUDGET).await;
    assert!(r6.is_ok(), "{r6:?}");
}

#[tokio::test]
async fn icmp_without_cap_net_raw_says_so() {
    let unprivileged = async {
        let r = probe::run(&CheckKind::Icmp, "127.0.0.1:0".parse().unwrap(), BUDGET).await;
        match &r {
            Err(e @ ProbeError::Unavailable(m)) if m.contains("CAP_NET_RAW") => {
                assert_eq!(
                    e.verdict(),
                    None,
                    "our limitation says nothing about the server"
                );
            }
            other => panic!("expected a clear CAP_NET_RAW error, got {other:?}"),
        }
    };
    if std::env::var_os("TENBIN_HEALTH_NOCAP_CHILD").is_some() || !skip::is_root() {
        unprivileged.await;
        println!("nocap-ok");
        return;
    }
    // As root: run this same test again as nobody, without capabilities.
    if !skip::need_tools(&["setpriv"]) {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&exe)
        .args(["--exact", "icmp_without_cap_net_raw_says_so", "--nocapture"])
        .env("TENBIN_HEALTH_NOCAP_CHILD", "1")
        .output()
        .expect("setpriv runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("nocap-ok"),
        "{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn http_check_over_ipv6_loopback_brackets_the_host() {
    let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
        return skip::skip("no ::1 on lo");
    };
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        s.write_all(support::response(200, "v6 OK").as_bytes())
            .await
            .unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let r = probe::run(&http(|h| h.expect_body = Some("v6".into())), addr, BUDGET).await;
    assert_eq!(verdict(&r), Some(Verdict::Pass), "{r:?}");
    let req = server.await.unwrap();
    assert!(
        req.contains(&format!("Host: [::1]:{}\r\n", addr.port())),
        "{req}"
    );
}
