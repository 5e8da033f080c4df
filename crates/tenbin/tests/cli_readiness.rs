//! The node's readiness from its health bus, through the real binary: a proxy node is ready
//! once its frontend is bound and its pool has an active server, not ready while the only
//! server fails its check, and ready again when it passes; the admin API's state shows it.

mod common;

use std::net::TcpListener;

use common::admin::call;
use common::Daemon;

fn config(server: std::net::SocketAddr) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
default_pool = "app"

[[pool]]
name = "app"
[pool.health]
kind = "tcp"
interval = "100ms"
jitter = 0.0
rise = 1
fall = 1
[[pool.server]]
name = "a"
address = "{server}"
"#
    )
}

/// The proxy tier's readiness in the state: (ready, detail).
fn proxy_readiness(node: &Daemon, port: u16) -> Option<(bool, String)> {
    node.assert_running();
    let (status, body) = call(port, "GET", "/api/v1/state", "", "");
    assert_eq!(status, 200, "{body}");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    let r = state["readiness"]
        .as_array()?
        .iter()
        .find(|r| r["tier"] == "proxy")?
        .clone();
    Some((r["ready"].as_bool()?, r["detail"].as_str()?.to_string()))
}

#[test]
fn proxy_readiness_follows_its_pool_and_frontends() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = backend.local_addr().unwrap();
    let node = Daemon::start(&config(addr), "readiness");
    let port = node.bound("admin", None).port();
    let detail = node.wait_for("ready with the server up", || {
        proxy_readiness(&node, port).and_then(|(ready, d)| ready.then_some(d))
    });
    assert_eq!(detail, "1 frontend(s) bound, 1/1 pools usable");

    drop(backend);
    let detail = node.wait_for("not ready once the check fails", || {
        proxy_readiness(&node, port).and_then(|(ready, d)| (!ready).then_some(d))
    });
    assert_eq!(detail, "1 frontend(s) bound, 0/1 pools usable");

    let _backend = TcpListener::bind(addr).expect("the port again");
    node.wait_for("ready again", || {
        proxy_readiness(&node, port).and_then(|(ready, _)| ready.then_some(()))
    });
}
