//! `tenbin ctl` against a running `tenbin run`: drain keeps persisted sessions and sends no
//! new one to the server, enable brings it back, weight changes the observed split; the
//! exit codes tell refused (1), usage (2) and unreachable (3) apart.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::Duration;

use common::Daemon;
use tenbin_testkit::backend::http;

fn ctl(admin: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenbin"))
        .args(["ctl", "--admin", admin])
        .args(args)
        .env_remove("TENBIN_TOKEN")
        .env_remove("TENBIN_ADMIN")
        .output()
        .expect("tenbin ctl runs")
}

fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One GET through the proxy on a new connection: the backend's name and the `SRV` cookie
/// the proxy set, if any.
fn get(addr: SocketAddr, cookie: Option<&str>) -> (String, Option<String>) {
    let mut s = TcpStream::connect(addr).expect("the frontend accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie.map_or(String::new(), |c| format!("cookie: {c}\r\n"));
    write!(
        s,
        "GET / HTTP/1.1\r\nhost: web\r\n{cookie}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let set = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.trim().split(';').next().map(str::to_string))
        .filter(|c| c.starts_with("SRV="));
    (body.trim().to_string(), set)
}

/// How many of `n` new clients (no cookie) reached `a` and `b`.
fn split(addr: SocketAddr, n: usize) -> (usize, usize) {
    let (mut a, mut b) = (0, 0);
    for _ in 0..n {
        match get(addr, None).0.as_str() {
            "a" => a += 1,
            "b" => b += 1,
            other => panic!("answer from {other}"),
        }
    }
    (a, b)
}

#[test]
fn drain_keeps_persisted_sessions_enable_returns_weight_moves_the_split() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let a = rt.block_on(http().name("a").spawn());
    let b = rt.block_on(http().name("b").spawn());
    let node = Daemon::start(
        &format!(
            r#"
[admin]
listen = "127.0.0.1:0"

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
default_pool = "app"

[[pool]]
name = "app"
algorithm = "wrr"
[pool.persistence]
mode = "cookie-insert"
cookie = "SRV"
[[pool.server]]
name = "a"
address = "{}"
[[pool.server]]
name = "b"
address = "{}"
"#,
            a.addr(),
            b.addr()
        ),
        "ctl",
    );
    let admin = node.bound("admin", None).to_string();
    let web: SocketAddr = node.bound("http", Some("web"));
    // Bounded wait for the node: ctl exits 3 until the admin API listens.
    let mut up = false;
    for _ in 0..200 {
        if ctl(&admin, &["status"]).status.code() == Some(0) {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "the node's admin API never answered");
    let table = ok(&ctl(&admin, &["status"]));
    assert!(
        table.contains("SERVER") && table.contains("pool app"),
        "{table}"
    );

    // A client persisted to `a`.
    let cookie = (0..10)
        .map(|_| get(web, None))
        .find_map(|(name, c)| (name == "a").then_some(c).flatten())
        .expect("a new client reaches a and gets a cookie");

    let out = ok(&ctl(&admin, &["drain", "app", "a"]));
    assert!(out.contains("generation"), "{out}");
    let state: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&admin, &["--json", "status"]))).unwrap();
    assert_eq!(
        state["pools"][0]["servers"][0]["admin"], "draining",
        "{state}"
    );
    for _ in 0..10 {
        assert_eq!(
            get(web, Some(&cookie)).0,
            "a",
            "a persisted client stays on a"
        );
    }
    assert_eq!(split(web, 20), (0, 20), "no new client goes to drained a");

    ok(&ctl(&admin, &["enable", "app", "a"]));
    let (back, _) = split(web, 20);
    assert!(back > 0, "after enable new clients reach a again");

    let (a1, b1) = split(web, 40);
    ok(&ctl(&admin, &["weight", "app", "b", "3"]));
    let (a3, b3) = split(web, 40);
    assert!(b1 < 2 * a1, "1:1 before: {a1}/{b1}");
    assert!(a3 > 0 && b3 >= 2 * a3, "3:1 after: {a3}/{b3}");

    // Refusals exit 1 with the node's message.
    let out = ctl(&admin, &["drain", "app", "zzz"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown server `zzz` in pool `app`; known: a, b"),
        "{err}"
    );
    let out = ctl(&admin, &["weight", "nopool", "a", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known: app"));

    // add-server / remove-server show in the state at once.
    let c = a.addr().to_string();
    ok(&ctl(
        &admin,
        &["add-server", "app", "c", &c, "--weight", "2"],
    ));
    let state: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&admin, &["--json", "status"]))).unwrap();
    let servers = state["pools"][0]["servers"].as_array().unwrap();
    assert!(
        servers.iter().any(|s| s["name"] == "c" && s["weight"] == 2),
        "{state}"
    );
    ok(&ctl(&admin, &["remove-server", "app", "c"]));
    let state: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&admin, &["--json", "status"]))).unwrap();
    let names: Vec<&str> = state["pools"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let out = ok(&ctl(&admin, &["reload"]));
    assert!(out.contains("generation"), "{out}");
}

#[test]
fn exit_codes_tell_usage_and_unreachable_apart() {
    // Nothing listens on a port just freed.
    let freed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = freed.local_addr().unwrap().to_string();
    drop(freed);
    let out = ctl(&closed, &["status"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
    // No address at all is a usage error, as is a bad argument.
    let out = Command::new(env!("CARGO_BIN_EXE_tenbin"))
        .args(["ctl", "status"])
        .env_remove("TENBIN_ADMIN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        ctl(&closed, &["weight", "app", "a", "heavy"]).status.code(),
        Some(2)
    );
}
