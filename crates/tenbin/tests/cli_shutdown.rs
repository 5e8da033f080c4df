//! SIGTERM under load: `tenbin run` stops accepting, lets every request and session that
//! started before the signal finish (slow backend), then exits 0.

mod common;
#[path = "support/traffic.rs"]
mod traffic;

use std::time::Duration;

use bytes::Bytes;
use common::{wait_refused, LoggedDaemon, TempDir};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tenbin_testkit::backend::{http, tcp_echo};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SLOW: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_started_requests_finish_and_exits_zero() {
    let dir = TempDir::new("shutdown");
    let slow = http().name("slow").delay(SLOW).spawn().await;
    let echo = tcp_echo().name("e").greet().spawn().await;
    let config = format!(
        r#"[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "slow"

[[frontend]]
name = "tcp"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "echo"

[[pool]]
name = "slow"
[[pool.server]]
name = "s"
address = "{}"

[[pool]]
name = "echo"
[[pool.server]]
name = "e"
address = "{}"
"#,
        slow.addr(),
        echo.addr()
    );
    let file = dir.write("tenbin.toml", &config);
    let mut daemon = LoggedDaemon::run(&file, &dir.0.join("tenbin.log"), &["--grace", "10s"]);
    let web = daemon.listening("web", 0);
    let tcp_fe = daemon.listening("tcp", 0);

    // Keep-alive clients with a connection already open, and a TCP session mid-way.
    let mut keep_alive = Vec::new();
    for _ in 0..4 {
        let c: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri: hyper::Uri = format!("http://{web}/").parse().unwrap();
        let r = c.get(uri.clone()).await.unwrap();
        assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "slow");
        keep_alive.push((c, uri));
    }
    let session = tokio::net::TcpStream::connect(tcp_fe).await.unwrap();
    let mut session = BufReader::new(session);
    let mut greeting = String::new();
    session.read_line(&mut greeting).await.unwrap();
    assert_eq!(greeting, "e\n");

    let before = slow.hits();
    let mut inflight = Vec::new();
    for _ in 0..8 {
        inflight.push(tokio::spawn(traffic::get_once(web)));
    }
    for (c, uri) in keep_alive {
        inflight.push(tokio::spawn(async move {
            let r = c.get(uri).await.map_err(|e| format!("{e:?}"))?;
            let status = r.status();
            let body = r.into_body().collect().await.map_err(|e| e.to_string())?;
            if status != 200 {
                return Err(format!("status {status}"));
            }
            Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
        }));
    }
    // Every request has reached the backend (which holds each for 1.5 s): they started.
    for _ in 0..500 {
        if slow.hits() >= before + 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        slow.hits(),
        before + 12,
        "not every request reached the backend"
    );
    daemon.signal("TERM");
    let signalled = std::time::Instant::now();

    // The listeners close at once; what started finishes.
    assert!(wait_refused(web).await, "still accepting after SIGTERM");
    for r in inflight {
        assert_eq!(r.await.unwrap(), Ok("slow".to_string()));
    }
    session
        .get_mut()
        .write_all(b"after the signal\n")
        .await
        .unwrap();
    let mut echoed = String::new();
    session.read_line(&mut echoed).await.unwrap();
    assert_eq!(
        echoed, "after the signal\n",
        "the TCP session outlived the signal"
    );
    drop(session);

    let status = tokio::task::spawn_blocking(move || {
        let s = daemon.wait_exit(Duration::from_secs(15));
        (s, daemon)
    })
    .await
    .unwrap();
    let (status, daemon) = status;
    println!("exited {:?} after SIGTERM", signalled.elapsed());
    assert_eq!(status.code(), Some(0), "exit status");
    daemon.wait_for("the stop line", |f| f["message"] == "stopped");
}
