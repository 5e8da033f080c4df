//! `[sync]` between two `tenbin run` nodes on loopback: sessions made on node A (a
//! source-persisted one per client address, a cookie-learned one per cookie value, a UDP
//! session per client socket) go to the same servers through node B, and after B restarts
//! with an empty table A's full resync brings them back.
//!
//! Each pool has three servers and B on its own would place a session by round robin, so
//! eight sessions all landing where A put them happen by chance with probability 3^-8 per
//! table.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::sync::{assert_spread, received};
use common::{admin_request, Daemon};
use tenbin_testkit::backend::{http, udp_echo, HttpBackend, UdpBackend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

const KEY: &str = "sync-test-key-0123456789";
const CLIENTS: u8 = 8;

fn pools(servers: &[&HttpBackend], udp: &[UdpBackend]) -> String {
    let mut out = String::from(
        "[[frontend]]\nname = \"dg\"\nbind = [\"127.0.0.1:0\"]\nmode = \"udp\"\n\
         default_pool = \"u\"\n\n[[pool]]\nname = \"u\"\n",
    );
    for b in udp {
        out += &format!(
            "[[pool.server]]\nname = \"{}\"\naddress = \"{}\"\n",
            b.name(),
            b.addr()
        );
    }
    out += "\n";
    for (pool, mode, names) in [
        ("src", "mode = \"source\"", &servers[..3]),
        (
            "ck",
            "mode = \"cookie-passive\"\ncookie = \"SID\"",
            &servers[3..],
        ),
    ] {
        out += &format!(
            "[[frontend]]\nname = \"{pool}\"\nbind = [\"127.0.0.1:0\"]\nmode = \"http\"\n\
             default_pool = \"{pool}\"\n\n[[pool]]\nname = \"{pool}\"\n\
             [pool.persistence]\n{mode}\n"
        );
        for b in names {
            out += &format!(
                "[[pool.server]]\nname = \"{}\"\naddress = \"{}\"\n",
                b.name(),
                b.addr()
            );
        }
        out += "\n";
    }
    out
}

fn node(sync: &str, servers: &[&HttpBackend], udp: &[UdpBackend], tag: &str) -> Daemon {
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[sync]\nkey = \"{KEY}\"\n{sync}\n\n{}",
        pools(servers, udp)
    );
    Daemon::start(&config, tag)
}

/// The server (its `x-backend`) that answers a request from `127.0.0.<src>` carrying
/// `cookie`, through `front`.
async fn served_by(front: SocketAddr, src: u8, cookie: Option<&str>) -> String {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, src)),
        0,
    ))
    .unwrap();
    let mut conn = sock.connect(front).await.unwrap();
    let cookie = cookie.map_or(String::new(), |c| format!("cookie: SID={c}\r\n"));
    let req = format!("GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n{cookie}\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    let read = conn.read_to_string(&mut resp);
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s")
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.lines()
        .find_map(|l| l.strip_prefix("x-backend: "))
        .unwrap_or_else(|| panic!("no x-backend: {resp}"))
        .trim()
        .to_string()
}

/// The echo server (its name before `:`) that answers a datagram from `client` through
/// `front`.
async fn udp_served_by(client: &UdpSocket, front: SocketAddr) -> String {
    client.send_to(b"hi", front).await.unwrap();
    let mut buf = [0u8; 256];
    let recv = client.recv_from(&mut buf);
    let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(10), recv)
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    answer.split(':').next().unwrap_or_default().to_string()
}

/// Every session through `src`, `ck` and `dg` of `node`: source ones from 127.0.0.2..,
/// cookie ones as `user-N` (all from 127.0.0.1), UDP ones from each of `udp`.
async fn sessions(node: &Daemon, udp: &[UdpSocket]) -> Vec<String> {
    let (src, ck) = (
        node.bound("http", Some("src")),
        node.bound("http", Some("ck")),
    );
    let dg = node.bound("udp", Some("dg"));
    let mut out = Vec::new();
    for i in 0..CLIENTS {
        out.push(served_by(src, 2 + i, None).await);
    }
    for i in 0..CLIENTS {
        out.push(served_by(ck, 1, Some(&format!("user-{i}"))).await);
    }
    for client in udp {
        out.push(udp_served_by(client, dg).await);
    }
    out
}

/// `NodeState.sync` of `node`, once `ok` holds for it (bounded by the daemon's wait).
fn sync_state(node: &Daemon, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let admin = node.bound("admin", None);
    node.wait_for("sync state", || {
        let (status, body) = admin_request(admin, "GET", "/api/v1/state", "");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200 && ok(&v["sync"])).then_some(v["sync"].clone())
    })
}

/// Three servers each for the source, cookie and UDP pools, on a runtime of their own.
fn backends() -> (tokio::runtime::Runtime, Vec<HttpBackend>, Vec<UdpBackend>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backends = ["s1", "s2", "s3", "c1", "c2", "c3"]
        .iter()
        .map(|n| rt.block_on(http().name(*n).spawn()))
        .collect();
    let udp = ["u1", "u2", "u3"]
        .iter()
        .map(|n| rt.block_on(udp_echo().name(*n).spawn()))
        .collect();
    (rt, backends, udp)
}

#[test]
fn persisted_sessions_follow_to_the_peer_and_survive_its_restart() {
    let (rt, backends, udp) = backends();
    let servers: Vec<&HttpBackend> = backends.iter().collect();

    let clients: Vec<UdpSocket> = (0..CLIENTS)
        .map(|_| rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap())
        .collect();
    let b = node(
        "name = \"b\"\nlisten = \"127.0.0.1:0\"",
        &servers,
        &udp,
        "sync-b",
    );
    let b_sync = b.bound("sync", None);
    let a = node(
        &format!("name = \"a\"\npeers = [\"{b_sync}\"]"),
        &servers,
        &udp,
        "sync-a",
    );
    // A's first (empty) snapshot has arrived: B is reachable and authenticated A.
    sync_state(&b, |s| {
        s["peers"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["direction"] == "in" && p["name"] == "a" && p["resyncs"] == 1)
        })
    });

    let on_a = rt.block_on(sessions(&a, &clients));
    // The sessions spread (else the test would prove nothing about B's choices).
    assert_spread(&on_a, CLIENTS as usize);
    let total = 3 * u64::from(CLIENTS);
    let state = sync_state(&b, |s| received(s) >= total);
    assert_eq!(received(&state), total, "{state}");
    let out = sync_state(&a, |s| s["peers"][0]["state"] == "established");
    assert_eq!(out["peers"][0]["entries_sent"], total, "{out}");
    assert_eq!(out["peers"][0]["errors"], 0, "{out}");

    let on_b = rt.block_on(sessions(&b, &clients));
    assert_eq!(
        on_a, on_b,
        "sessions made on A are served by the same servers on B"
    );

    // B restarts with an empty table on the same address: A redials and resyncs in full.
    drop(b);
    let b = node(
        &format!("name = \"b\"\nlisten = \"{b_sync}\""),
        &servers,
        &udp,
        "sync-b2",
    );
    let state = sync_state(&b, |s| received(s) >= total);
    assert_eq!(received(&state), total, "{state}");
    let on_b = rt.block_on(sessions(&b, &clients));
    assert_eq!(
        on_a, on_b,
        "after B's restart the full resync restored every session"
    );
    let out = sync_state(&a, |s| s["peers"][0]["resyncs"].as_u64() >= Some(2));
    assert!(out["peers"][0]["connects"].as_u64() >= Some(2), "{out}");
}

#[test]
fn a_peer_with_the_wrong_key_is_refused() {
    let (rt, backends, udp) = backends();
    let servers: Vec<&HttpBackend> = backends.iter().collect();
    let b = node("listen = \"127.0.0.1:0\"", &servers, &udp, "sync-key-b");
    let b_sync = b.bound("sync", None);
    let config = format!(
        "[sync]\nkey = \"another-key-0123456789\"\npeers = [\"{b_sync}\"]\n\n{}",
        pools(&servers, &udp)
    );
    let a = Daemon::start(&config, "sync-key-a");
    rt.block_on(sessions(&a, &[]));
    let state = sync_state(&b, |s| {
        s["peers"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["errors"].as_u64() >= Some(1) && p["direction"] == "in")
        })
    });
    assert_eq!(received(&state), 0, "{state}");
    let err = state["peers"][0]["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("authentication"), "{state}");
}
