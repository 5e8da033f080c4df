//! Chaos through the real binary: `tenbin run` with an HTTP frontend and a TCP frontend in
//! front of one health-checked pool of three backends, each its own process (this test binary
//! re-executed, see [`backend_process`]), so SIGKILL is real. Three clients run throughout:
//! HTTP keep-alive, HTTP on a new connection per request, and HTTP through the TCP frontend.
//!
//! Phases, each observed in `/api/v1/state` and in which backend answers:
//! 1. SIGKILL `b` while HTTP requests are in flight on it (backends answer after 50 ms, `b`
//!    after 300 ms): the access log shows requests retried, its check marks it down, and
//!    traffic leaves it.
//! 2. start `b` again: its check marks it up, and the new process answers.
//! 3. `tenbin ctl drain` then `enable` `c`: no new request reaches it, then it answers again.
//! 4. reload (SIGHUP after an edit of a response header): the generation moves and the
//!    keep-alive client, on the connection it already had, sees the new header.
//! 5. restart `a` (SIGTERM, start at once, as a deploy does, faster than its check can
//!    notice): the new process answers and `a` ends active.
//!
//! Every HTTP request is an idempotent GET with `retries = 2`, so the proxy must hide every
//! backend failure: **no HTTP request may fail**. A TCP session that the SIGKILL cuts after the
//! proxy forwarded its bytes cannot be retried by any proxy (it cannot know the exchange is
//! safe to replay), so the TCP client may lose at most the one session it has in flight when a
//! backend process dies (phases 1 and 5), and none in any other phase.

mod common;
#[path = "support/traffic.rs"]
mod traffic;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{admin_request, Daemon, LOG_WAIT};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tenbin_testkit::backend::http;
use traffic::Load;

/// Set in a re-executed test binary: `NAME ADDR` of the backend it is to be.
const CHILD_VAR: &str = "TENBIN_CHAOS_BACKEND";

/// Every backend takes this long to answer, so requests are in flight on it when it dies.
const ANSWER_DELAY: Duration = Duration::from_millis(50);

/// The first `b`, the one SIGKILLed, answers slower still: round robin over clients in
/// lockstep would otherwise rarely leave two requests on one server at once.
const KILLED_DELAY: Duration = Duration::from_millis(300);

/// Answers in a row each client must give without a server before it counts as out of the
/// rotation (round robin over the others would have picked it within two).
const RUN: usize = 10;

/// Not a test of its own: the body of the backend processes [`chaos_kill_restart_drain_reload`]
/// starts by re-executing this binary with [`CHILD_VAR`] set. It serves a `tenbin_testkit`
/// HTTP backend named `NAME` on `ADDR` until it is killed. Without the variable it returns.
#[test]
fn backend_process() {
    let Ok(spec) = std::env::var(CHILD_VAR) else {
        return;
    };
    let (name, addr) = spec.split_once(' ').expect("NAME ADDR");
    let addr: SocketAddr = addr.parse().expect("a socket address");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let backend = http()
            .name(name)
            .bind(addr)
            .delay(if name == "b1" {
                KILLED_DELAY
            } else {
                ANSWER_DELAY
            })
            .spawn()
            .await;
        println!("listening {}", backend.addr());
        std::future::pending::<()>().await;
    });
}

/// One backend process, restarted on the same address as a new incarnation (`b1`, `b2`, ...:
/// the name it answers with), killed when dropped.
struct Backend {
    name: &'static str,
    addr: SocketAddr,
    incarnation: u32,
    child: Option<Child>,
    log: PathBuf,
}

impl Backend {
    fn spawn(name: &'static str, dir: &Path) -> Backend {
        let mut b = Backend {
            name,
            addr: "127.0.0.1:0".parse().unwrap(),
            incarnation: 0,
            child: None,
            log: dir.join(format!("backend-{name}.log")),
        };
        b.start();
        b
    }

    /// The name the running incarnation answers with.
    fn answers_as(&self) -> String {
        format!("{}{}", self.name, self.incarnation)
    }

    /// Starts the next incarnation on the same address and waits (bounded) until it listens.
    fn start(&mut self) {
        assert!(self.child.is_none(), "{} already runs", self.name);
        self.incarnation += 1;
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "backend_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_VAR, format!("{} {}", self.answers_as(), self.addr))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("re-execute the test binary as a backend");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // libtest may have written `test backend_process ... ` on the same line.
                if let Some((_, addr)) = line.split_once("listening ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        self.child = Some(child);
        let addr = rx
            .recv_timeout(LOG_WAIT)
            .unwrap_or_else(|_| panic!("backend {} never listened", self.answers_as()));
        self.addr = addr.parse().unwrap();
    }

    /// Sends `sig` and reaps the process.
    fn stop(&mut self, sig: Signal) {
        let mut child = self.child.take().expect("a running backend");
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- backend {} log ----\n{log}---- end ----", self.name);
        }
    }
}

fn config(servers: &[Backend], gen: u32) -> String {
    let mut c = format!(
        r#"[admin]
listen = "127.0.0.1:0"

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "app"
retries = 2
access_log = "json"
[frontend.timeouts]
connect = "1s"
server = "10s"
[frontend.headers]
response_set = {{ "X-Gen" = "{gen}" }}

[[frontend]]
name = "raw"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "app"
retries = 2
[frontend.timeouts]
connect = "1s"

[[pool]]
name = "app"
algorithm = "roundrobin"
[pool.health]
kind = "http"
path = "/"
interval = "200ms"
timeout = "1s"
rise = 2
fall = 2
"#
    );
    for s in servers {
        c += &format!(
            "[[pool.server]]\nname = \"{}\"\naddress = \"{}\"\n",
            s.name, s.addr
        );
    }
    c
}

/// The node's state as `GET /api/v1/state` returns it.
fn state(admin: SocketAddr) -> serde_json::Value {
    let (status, body) = admin_request(admin, "GET", "/api/v1/state", "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("state is JSON")
}

/// Server `name` of pool `app` in the node's state.
fn server(admin: SocketAddr, name: &str) -> Option<serde_json::Value> {
    state(admin)["pools"][0]["servers"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

/// Waits (bounded) until server `name` of pool `app` shows `state`.
fn wait_state(node: &Daemon, admin: SocketAddr, name: &str, want: &str) {
    node.wait_for(&format!("server {name} {want}"), || {
        (server(admin, name)?["state"] == want).then_some(())
    });
}

/// Requests the access log shows answered 200 after more than one attempt.
fn retried_requests(node: &Daemon) -> usize {
    node.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["status"] == 200 && e["attempts"].as_u64().is_some_and(|n| n > 1))
        .count()
}

fn ctl(admin: SocketAddr, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_tenbin"))
        .args(["ctl", "--admin", &admin.to_string()])
        .args(args)
        .env_remove("TENBIN_TOKEN")
        .output()
        .expect("tenbin ctl runs");
    assert!(out.status.success(), "tenbin ctl {args:?}: {out:?}");
}

/// The three clients and what each may lose.
struct Clients {
    all: [(&'static str, Load); 3],
}

impl Clients {
    /// Waits (bounded) until every client has [`RUN`] answers in a row, all started after
    /// now, none from `avoid` (answers still in flight now are skipped).
    async fn avoid(&self, avoid: &str, what: &str) {
        for (client, load) in &self.all {
            let deadline = Instant::now() + LOG_WAIT;
            let mut from = load.count() + 1;
            loop {
                let run = load.next_answers(from, RUN).await;
                match run.iter().rposition(|a| a == avoid) {
                    None => break,
                    Some(i) => from += i + 1,
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: {client} still reaches {avoid}"
                );
            }
        }
    }

    /// Waits (bounded) until every client has seen an answer from `name` after now.
    async fn reach(&self, name: &str, what: &str) {
        for (client, load) in &self.all {
            let from = load.count();
            load.wait_for(from, &format!("{what}: {client} reaches {name}"), |a, _| {
                a == name
            })
            .await;
        }
    }

    /// Failures per client so far.
    fn failures(&self) -> [usize; 3] {
        self.all.each_ref().map(|(_, l)| l.failures().len())
    }
}

#[test]
fn chaos_kill_restart_drain_reload() {
    let dir = common::TempDir::new("chaos");
    let mut servers = ["a", "b", "c"].map(|n| Backend::spawn(n, &dir.0));
    let node = Daemon::start(&config(&servers, 1), "chaos-node");
    let admin = node.bound("admin", None);
    let web = node.bound("http", Some("web"));
    let raw = node.bound("tcp", Some("raw"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    // Clients start once every server passed its first checks: until then a checked server is
    // not eligible, and the first requests would be refused with 503 (not this test's subject).
    for s in &servers {
        wait_state(&node, admin, s.name, "active");
    }
    let clients = Clients {
        all: [
            ("keep-alive", traffic::keep_alive(web)),
            ("fresh", traffic::fresh(web)),
            ("tcp", traffic::fresh_through("tcp", raw)),
        ],
    };
    for s in &servers {
        rt.block_on(clients.reach(&s.answers_as(), "start"));
    }
    let mut phases: Vec<(&str, [usize; 3])> = Vec::new();
    let mut mark = |phase, c: &Clients| phases.push((phase, c.failures()));
    mark("start", &clients);

    // 1. SIGKILL b while HTTP requests are in flight on it (active 2 or more: the TCP client
    // holds at most one session), so they must be retried: down, and no client reaches it.
    let retried = retried_requests(&node);
    node.wait_for("two or more requests in flight on b", || {
        (server(admin, "b")?["active"].as_u64()? >= 2).then_some(())
    });
    servers[1].stop(Signal::SIGKILL);
    wait_state(&node, admin, "b", "down");
    rt.block_on(clients.avoid("b1", "b killed"));
    let retried = retried_requests(&node) - retried;
    println!("chaos: {retried} requests answered 200 after a retry once b was killed");
    assert!(
        retried > 0,
        "a request b held when it was killed was retried"
    );
    mark("kill b", &clients);

    // 2. b again: up, and its new process answers.
    servers[1].start();
    wait_state(&node, admin, "b", "active");
    rt.block_on(clients.reach("b2", "b restarted"));
    mark("restart b", &clients);

    // 3. Drain c: no new request reaches it; enable: it answers again.
    ctl(admin, &["drain", "app", "c"]);
    wait_state(&node, admin, "c", "draining");
    rt.block_on(clients.avoid("c1", "c drained"));
    ctl(admin, &["enable", "app", "c"]);
    wait_state(&node, admin, "c", "active");
    rt.block_on(clients.reach("c1", "c enabled"));
    mark("drain+enable c", &clients);

    // 4. Reload an edit: the generation moves and the HTTP clients see the new header.
    let generation = state(admin)["generation"].as_u64().unwrap();
    std::fs::write(&node.config, config(&servers, 2)).unwrap();
    node.hup();
    node.wait_for("the reload applied", || {
        (state(admin)["generation"].as_u64()? > generation).then_some(())
    });
    let keep_alive = &clients.all[0].1;
    rt.block_on(
        keep_alive.wait_for(keep_alive.count(), "keep-alive sees X-Gen 2", |_, t| {
            t == "2"
        }),
    );
    mark("reload", &clients);

    // 5. Restart a as a deploy does, without waiting for its check.
    servers[0].stop(Signal::SIGTERM);
    servers[0].start();
    rt.block_on(clients.reach("a2", "a restarted"));
    wait_state(&node, admin, "a", "active");
    mark("restart a", &clients);

    for (_, load) in &clients.all {
        load.stop();
    }
    node.assert_running();
    let mut previous = [0; 3];
    for (phase, failed) in &phases {
        let counts: Vec<String> = clients
            .all
            .iter()
            .zip(failed.iter().zip(previous))
            .map(|((name, _), (now, before))| format!("{name} {}", now - before))
            .collect();
        println!("chaos phase {phase:<15} failed: {}", counts.join(", "));
        previous = *failed;
    }
    for (name, load) in &clients.all {
        println!(
            "chaos {name}: {} answers, {} failed",
            load.count(),
            load.failures().len()
        );
    }
    for (name, load) in &clients.all[..2] {
        assert_eq!(load.failures(), Vec::<String>::new(), "{name} failed");
    }
    // The TCP client may lose the one session in flight when a backend dies (SIGKILL, and
    // SIGTERM, whose default action ends the process as abruptly), and none elsewhere.
    let tcp: Vec<usize> = phases.iter().map(|(_, f)| f[2]).collect();
    for (i, (phase, _)) in phases.iter().enumerate() {
        let lost = tcp[i] - if i == 0 { 0 } else { tcp[i - 1] };
        let allowed = usize::from(matches!(*phase, "kill b" | "restart a"));
        assert!(
            lost <= allowed,
            "tcp lost {lost} sessions in phase {phase}: {:?}",
            clients.all[2].1.failures()
        );
    }
}
