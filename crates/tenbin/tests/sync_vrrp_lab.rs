//! Stateful failover through the VIP (root): nodes a and b each run `tenbin vrrp` (a the
//! master) and `tenbin run` with `[sync]` towards the other; six backends live on the
//! client's namespace. Sticky sessions (source, from eight client addresses, and
//! cookie-learned, eight cookie values) made through the VIP on a land on the same servers
//! through the VIP on b after kill -9 of both of a's processes.
//!
//! Only the sessions survive: the TCP connections a terminated die with it, and the client
//! reconnects (see ARCHITECTURE.md, "Stateful failover").

mod common;
mod vrrp_support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::sync::{assert_spread, received};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrrp_support::{can_run, enter, node_config, sh, Lab, VIP};

const S: Duration = Duration::from_secs(1);
const KEY: &str = "lab-sync-key-0123456789";
const TOKEN: &str = "lab-token";
const CLIENTS: u8 = 8;
/// Backend ports on the client's address: source pool, then cookie pool.
const PORTS: [u16; 6] = [8001, 8002, 8003, 8011, 8012, 8013];

fn run_config(me: u8, peer: u8) -> String {
    let mut out = format!(
        "[admin]\nlisten = \"10.77.0.{me}:9900\"\ntoken = \"{TOKEN}\"\n\n\
         [sync]\nname = \"n{me}\"\nlisten = \"10.77.0.{me}:7400\"\n\
         peers = [\"10.77.0.{peer}:7400\"]\nkey = \"{KEY}\"\n\n"
    );
    for (pool, port, mode, ports) in [
        ("src", 80, "mode = \"source\"", &PORTS[..3]),
        (
            "ck",
            81,
            "mode = \"cookie-passive\"\ncookie = \"SID\"",
            &PORTS[3..],
        ),
    ] {
        out += &format!(
            "[[frontend]]\nname = \"{pool}\"\nbind = [\"0.0.0.0:{port}\"]\nmode = \"http\"\n\
             default_pool = \"{pool}\"\n\n[[pool]]\nname = \"{pool}\"\n[pool.persistence]\n{mode}\n"
        );
        for p in ports {
            out += &format!("[[pool.server]]\nname = \"s{p}\"\naddress = \"10.77.0.3:{p}\"\n");
        }
        out += "\n";
    }
    out
}

/// HTTP responders on the client's namespace, answering with `x-backend: sPORT`.
fn backends(lab: &Lab) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let ns = lab.ns("c");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        enter(&ns);
        let listeners: Vec<(u16, TcpListener)> = PORTS
            .iter()
            .map(|&p| {
                let l = TcpListener::bind(("10.77.0.3", p)).expect("bind backend");
                l.set_nonblocking(true).expect("nonblocking");
                (p, l)
            })
            .collect();
        let _ = ready_tx.send(());
        while !flag.load(Ordering::Relaxed) {
            let mut idle = true;
            for (p, l) in &listeners {
                if let Ok((mut s, _)) = l.accept() {
                    idle = false;
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(S));
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf);
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nx-backend: s{p}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                }
            }
            if idle {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    ready_rx.recv_timeout(5 * S).expect("backends ready");
    stop
}

/// Runs `f` on a current-thread runtime inside the client's namespace.
fn in_client<T: Send>(lab: &Lab, f: impl std::future::Future<Output = T> + Send) -> T {
    let ns = lab.ns("c");
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(&ns);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("client thread")
    })
}

/// One request from `src` to `to`: the whole response, or `None` on any failure.
async fn request(src: Ipv4Addr, to: SocketAddr, extra: &str) -> Option<String> {
    let sock = tokio::net::TcpSocket::new_v4().ok()?;
    sock.bind(SocketAddr::new(IpAddr::V4(src), 0)).ok()?;
    let exchange = async {
        let mut c = sock.connect(to).await.ok()?;
        let req =
            format!("GET /api/v1/state HTTP/1.1\r\nhost: t\r\nconnection: close\r\n{extra}\r\n");
        c.write_all(req.as_bytes()).await.ok()?;
        let mut r = String::new();
        c.read_to_string(&mut r).await.ok()?;
        Some(r)
    };
    tokio::time::timeout(2 * S, exchange).await.ok().flatten()
}

fn backend_of(resp: &str) -> Option<String> {
    resp.lines()
        .find_map(|l| l.strip_prefix("x-backend: "))
        .map(|b| b.trim().to_string())
}

/// Every sticky session through the VIP: the server of each, `None` where a request failed.
async fn sessions() -> Vec<Option<String>> {
    let vip: Ipv4Addr = VIP.parse().expect("VIP");
    let mut out = Vec::new();
    for i in 0..CLIENTS {
        let src = Ipv4Addr::new(10, 77, 0, 10 + i);
        let r = request(src, SocketAddr::from((vip, 80)), "").await;
        out.push(r.as_deref().and_then(backend_of));
    }
    for i in 0..CLIENTS {
        let cookie = format!("cookie: SID=user-{i}\r\n");
        let src = Ipv4Addr::new(10, 77, 0, 3);
        let r = request(src, SocketAddr::from((vip, 81)), &cookie).await;
        out.push(r.as_deref().and_then(backend_of));
    }
    out
}

/// `NodeState.sync` of node 10.77.0.`n` through its admin API.
fn sync_state(lab: &Lab, n: u8) -> Option<serde_json::Value> {
    let auth = format!("authorization: Bearer {TOKEN}\r\n");
    let to = SocketAddr::from(([10, 77, 0, n], 9900));
    let r = in_client(lab, request(Ipv4Addr::new(10, 77, 0, 3), to, &auth))?;
    let body = r.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(v["sync"].clone())
}

#[test]
fn sticky_sessions_land_on_the_same_servers_after_kill_9_of_the_master() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("sy");
    let c = lab.ns("c");
    for i in 0..CLIENTS {
        sh(&format!(
            "ip -n {c} addr add 10.77.0.{}/24 dev eth0",
            10 + i
        ));
    }
    let stop = backends(&lab);
    let n = lab.notify_script();
    lab.tenbin("a", &node_config(&n, 200, "100ms", ""));
    lab.wait_state("a", "MASTER", 10 * S);
    lab.tenbin("b", &node_config(&n, 100, "100ms", ""));
    lab.wait_state("b", "BACKUP", 10 * S);
    lab.tenbin_run_as("a", "a-run", &run_config(1, 2));
    lab.tenbin_run_as("b", "b-run", &run_config(2, 1));
    lab.wait("both sync connections", 20 * S, |l| {
        [1, 2].iter().all(|&n| {
            sync_state(l, n).is_some_and(|s| {
                s["peers"].as_array().is_some_and(|p| {
                    p.iter()
                        .any(|p| p["direction"] == "out" && p["state"] == "established")
                })
            })
        })
    });

    let before = in_client(&lab, sessions());
    assert!(before.iter().all(Option::is_some), "{before:?}");
    assert_spread(&before, CLIENTS as usize);
    let total = 2 * u64::from(CLIENTS);
    lab.wait("b to hold a's sessions", 10 * S, |l| {
        sync_state(l, 2).is_some_and(|s| received(&s) >= total)
    });

    lab.kill9("a-run");
    lab.kill9("a");
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait("HTTP through the VIP on b", 10 * S, |_| {
        in_client(&lab, sessions())[0].is_some()
    });
    let after = in_client(&lab, sessions());
    assert_eq!(
        before, after,
        "every sticky session kept its server through the failover"
    );
    stop.store(true, Ordering::Relaxed);
}
