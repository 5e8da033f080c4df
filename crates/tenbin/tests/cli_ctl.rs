//! `tenbin ctl` against a running `tenbin run`: a drained server gets no new sessions while
//! its health checks keep passing, sessions persisted to it still reach it, `enable` brings
//! it back, `weight` moves the split, servers come and go; exit codes tell scripts what
//! happened.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use common::{LoggedDaemon, TempDir};
use tenbin_testkit::backend::{http, HttpBackend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ctl(admin: SocketAddr, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenbin"))
        .args(["ctl", "--admin", &admin.to_string()])
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The state of `server` in pool `app`, from `ctl --json status`.
fn server_state(admin: SocketAddr, server: &str) -> serde_json::Value {
    let state: serde_json::Value =
        serde_json::from_str(&ok(&ctl(admin, &["--json", "status"]))).unwrap();
    state["pools"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == server)
        .cloned()
        .unwrap()
}

/// One GET on a new connection, with `X-Session: session` when given; the backend's name.
async fn get(addr: SocketAddr, session: Option<&str>) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let header = session.map_or(String::new(), |v| format!("X-Session: {v}\r\n"));
    s.write_all(
        format!("GET / HTTP/1.1\r\nHost: t\r\n{header}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn checks(b: &HttpBackend) -> usize {
    b.requests().iter().filter(|r| r.uri == "/health").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_enable_weight_and_servers_through_ctl() {
    let dir = TempDir::new("ctl");
    let a = http().name("a").spawn().await;
    let b = http().name("b").spawn().await;
    let c = http().name("c").spawn().await;
    let config = format!(
        r#"[admin]
listen = "127.0.0.1:0"

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "app"

[[pool]]
name = "app"
algorithm = "wrr"
[pool.health]
kind = "http"
path = "/health"
interval = "100ms"
timeout = "1s"
rise = 1
fall = 2
[pool.persistence]
mode = "header"
header = "X-Session"
learn = true
[[pool.server]]
name = "a"
address = "{}"
[[pool.server]]
name = "b"
address = "{}"
"#,
        a.addr(),
        b.addr()
    );
    let file = dir.write("tenbin.toml", &config);
    let daemon = LoggedDaemon::run(&file, &dir.0.join("tenbin.log"), &[]);
    let admin = daemon.admin();
    let web = daemon.listening("web", 0);
    for _ in 0..200 {
        if server_state(admin, "a")["state"] == "active"
            && server_state(admin, "b")["state"] == "active"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(server_state(admin, "a")["state"], "active");

    // A session that persistence pins to a.
    let mut pinned = None;
    for i in 0..20 {
        let session = format!("s{i}");
        if get(web, Some(&session)).await == "a" {
            pinned = Some(session);
            break;
        }
    }
    let pinned = pinned.expect("some session lands on a");

    let out = ok(&ctl(admin, &["drain", "app", "a"]));
    assert!(out.contains("pool app: server a changed"), "{out}");
    // Checks keep passing on a; the drain holds.
    let seen = checks(&a);
    for _ in 0..200 {
        if checks(&a) >= seen + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(checks(&a) >= seen + 3, "a is still checked while drained");
    let s = server_state(admin, "a");
    assert_eq!(
        (s["state"].as_str(), s["admin"].as_str()),
        (Some("draining"), Some("draining"))
    );
    for i in 0..40 {
        let new = format!("new{i}");
        assert_eq!(
            get(web, Some(&new)).await,
            "b",
            "a new session went to drained a"
        );
    }
    for _ in 0..5 {
        assert_eq!(
            get(web, Some(&pinned)).await,
            "a",
            "the persisted session left a"
        );
    }

    ok(&ctl(admin, &["enable", "app", "a"]));
    let mut back = false;
    for i in 0..40 {
        if get(web, Some(&format!("again{i}"))).await == "a" {
            back = true;
            break;
        }
    }
    assert!(back, "enable brought a back for new sessions");

    // Weight 3 on b: the split follows (requests without a session header).
    ok(&ctl(admin, &["weight", "app", "b", "3"]));
    let mut to_b = 0;
    for _ in 0..200 {
        if get(web, None).await == "b" {
            to_b += 1;
        }
    }
    assert!(
        (130..=170).contains(&to_b),
        "b got {to_b} of 200 at weight 3:1"
    );
    assert_eq!(server_state(admin, "b")["weight"], 3);
    // The pool's one persistence table survived those applies.
    assert_eq!(
        get(web, Some(&pinned)).await,
        "a",
        "persistence lost on apply"
    );

    // A server added and removed at run time.
    ok(&ctl(
        admin,
        &["add-server", "app", "c", &c.addr().to_string()],
    ));
    let mut reached = false;
    for _ in 0..100 {
        if get(web, None).await == "c" {
            reached = true;
            break;
        }
    }
    assert!(
        reached,
        "the added server takes traffic once its check passes"
    );
    ok(&ctl(admin, &["remove-server", "app", "c"]));
    for _ in 0..50 {
        assert_ne!(get(web, None).await, "c", "a removed server still answers");
    }

    // Exit codes: unknown names 3 (naming the known ones), refused values 1, no node 4.
    let out = ctl(admin, &["drain", "app", "zz"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zz") && err.contains("a, b"), "{err}");
    assert_eq!(
        ctl(admin, &["weight", "app", "a", "999999999"])
            .status
            .code(),
        Some(1)
    );
    let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert_eq!(ctl(nobody, &["status"]).status.code(), Some(4));
    let table = ok(&ctl(admin, &["status"]));
    assert!(
        table.contains("pool app (wrr") && table.contains("frontend web"),
        "{table}"
    );
}
