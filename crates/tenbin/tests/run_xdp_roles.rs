//! `tenbin run` starts the XDP roles its file describes. In network namespaces: a client, a
//! node running `[mux]` (XDP, IPIP) and two backend nodes running `[agent]` (decapsulation,
//! VIP on lo, a TCP check of the local HTTP service, signed reports to the Mux), each with
//! `[admin]`. HTTP through the VIP reaches a backend; the agents' reports reach the Mux (its
//! state counts them); a reload moves the VIP to the other backend (`[mux]` applied live), a
//! change of `interface` waits for the next restart, and a reload that turns a backend's
//! check into an HTTP content check its service fails makes that backend unhealthy at the
//! Mux (`[agent]` applied live). SIGTERM exits 0, detaches the programs and takes the VIPs
//! off `lo`. Root only.

mod common;
#[path = "../../tenbin-xdp/tests/netns/mod.rs"]
mod netns;

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netns::{in_ns, serve, sh, Lab};
use serde_json::Value;
use tenbin_xdp::loader::Program;

const VIP: &str = "10.99.100.1";
const MUX: &str = "10.99.0.1";
const SECRET: &str = "run xdp roles test shared secret";
const WAIT: Duration = Duration::from_secs(30);

/// `tenbin --log-json run --no-watch -c FILE` inside a namespace, killed on drop.
struct Node {
    ns: String,
    child: Child,
    config: PathBuf,
    log: PathBuf,
}

impl Node {
    fn start(ns: &str, dir: &Path, name: &str, text: &str) -> Node {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_tenbin")])
            .args(["--log-json", "run", "--no-watch", "-c"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("tenbin starts");
        Node {
            ns: ns.to_string(),
            child,
            config,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `f` (bounded), failing with the log when the node exited or time ran out.
    fn wait<T>(&mut self, what: &str, mut f: impl FnMut(&mut Node) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("{}: tenbin exited ({s}); log:\n{}", self.ns, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} not within {WAIT:?}; log:\n{}",
                self.ns,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The admin API's address, from the `listening (admin)` event.
    fn admin(&mut self) -> SocketAddr {
        self.wait("listening (admin)", |n| {
            n.log().lines().find_map(|l| {
                let e: Value = serde_json::from_str(l).ok()?;
                (e["fields"]["message"] == "listening (admin)")
                    .then(|| e["fields"]["addr"].as_str()?.parse().ok())?
            })
        })
    }

    /// One admin request inside the namespace: status and JSON body.
    fn call(&mut self, method: &str, path: &str) -> (u16, Value) {
        let port = self.admin().port();
        let (status, body) = in_ns(&self.ns, || common::admin::call(port, method, path, "", ""));
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn state(&mut self) -> Value {
        let (status, body) = self.call("GET", "/api/v1/state");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Rewrites the file and reloads through the admin API; the change lines.
    fn reload(&mut self, text: &str) -> Vec<String> {
        std::fs::write(&self.config, text).unwrap();
        let (status, body) = self.call("POST", "/api/v1/reload");
        assert_eq!(status, 200, "{body}; log:\n{}", self.log());
        body["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "{}: no exit on SIGTERM", self.ns);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log:\n{}", self.ns, self.log());
        }
    }
}

fn mux_config(interface: &str, backend: &str, mac: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[mux]
interface = "{interface}"
report_listen = "{MUX}:7946"
report_key = "{SECRET}"
report_timeout = "2s"

[[mux.vip]]
address = "{VIP}"
port = 80
protocol = "tcp"
forward = "ipip"
[[mux.vip.backend]]
address = "{backend}"
mac = "{mac}"
"#
    )
}

/// `expect_body`: None checks a TCP connect, Some an HTTP GET whose body must contain it.
fn agent_config(me: &str, expect_body: Option<&str>) -> String {
    let check = match expect_body {
        None => "kind = \"tcp\"".to_string(),
        Some(b) => format!("kind = \"http\"\nexpect_body = \"{b}\""),
    };
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[agent]
interface = "eth0"
vips = ["{VIP}"]
backend_address = "{me}"
report_to = ["{MUX}:7946"]
report_key = "{SECRET}"
report_interval = "100ms"

[[agent.check]]
vip = "{VIP}"
port = 80
[agent.check.health]
{check}
interval = "100ms"
timeout = "500ms"
rise = 1
fall = 1
"#
    )
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One GET through the VIP from the client: the backend's name, or None.
fn through_vip(cl: &str) -> Option<String> {
    in_ns(cl, || {
        let addr = SocketAddr::new(VIP.parse().unwrap(), 80);
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        netns::get(&mut s).ok()
    })
}

fn xdp_on_eth0(ns: &str) -> bool {
    sh(&format!("ip -n {ns} link show eth0")).contains("xdp")
}

#[test]
fn run_starts_mux_and_agent_roles_and_applies_their_sections_live() {
    if !tenbin_testkit::skip::need_root("network namespaces, XDP")
        || !tenbin_testkit::skip::need_tools(&["ip", "ethtool"])
    {
        return;
    }
    let mut lab = Lab::new("tbrx");
    let sw = lab.add_ns("sw");
    sh(&format!(
        "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up"
    ));
    let cl = lab.plug(&sw, "cl", "10.99.0.100/24");
    let mx = lab.plug(&sw, "mx", &format!("{MUX}/24"));
    sh(&format!("ip -n {cl} route add {VIP}/32 via {MUX}"));
    let b1 = lab.plug(&sw, "b1", "10.99.0.11/24");
    let b2 = lab.plug(&sw, "b2", "10.99.0.12/24");
    // XDP_TX into a veth is delivered only if the peer runs XDP: pass-through on the port.
    let _peer = in_ns(&sw, || {
        let mut p = Program::pass().expect("load pass");
        p.attach("p-mx").expect("attach pass");
        p
    });
    let stop = Arc::new(AtomicBool::new(false));
    for (ns, name) in [(&b1, "backend-1"), (&b2, "backend-2")] {
        let l = in_ns(ns, || {
            std::net::TcpListener::bind("0.0.0.0:80").expect("bind")
        });
        serve(l, name.to_string(), stop.clone());
    }
    let dir = std::env::temp_dir().join(format!("tenbin-run-xdp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mac1, mac2) = (mac_text(Lab::mac(&b1)), mac_text(Lab::mac(&b2)));

    let mut a1 = Node::start(&b1, &dir, "agent1", &agent_config("10.99.0.11", None));
    let mut a2 = Node::start(&b2, &dir, "agent2", &agent_config("10.99.0.12", None));
    let mut mux = Node::start(&mx, &dir, "mux", &mux_config("eth0", "10.99.0.11", &mac1));

    // [agent]: the check runs and reports go out.
    let s = a1.wait("the agent's check is up and reported", |n| {
        let s = n.state();
        (s["agent"]["checks"][0]["state"] == "up" && s["agent"]["reports_sent"].as_u64() > Some(0))
            .then_some(s)
    });
    assert!(
        s["tiers"].as_array().unwrap().contains(&"agent".into()),
        "{s}"
    );
    assert_eq!(s["agent"]["vips"][0], VIP, "{s}");
    assert!(
        sh(&format!("ip -n {b1} addr show lo")).contains(VIP),
        "the VIP is on lo"
    );
    assert!(xdp_on_eth0(&b1), "the decapsulating program is attached");

    // [mux]: attached, the reports arrive, and HTTP through the VIP reaches backend 1.
    let s = mux.wait("the Mux has agent reports", |n| {
        let s = n.state();
        (s["mux"]["reports_accepted"].as_u64() > Some(0)).then_some(s)
    });
    assert!(
        s["tiers"].as_array().unwrap().contains(&"mux".into()),
        "{s}"
    );
    assert_eq!(s["mux"]["attached"], true, "{s}");
    assert_eq!(s["mux"]["vips"][0]["healthy"], true, "{s}");
    assert!(xdp_on_eth0(&mx), "the Mux program is attached");
    mux.wait("HTTP through the VIP", |_| {
        through_vip(&cl).filter(|b| b == "backend-1")
    });
    let s = mux.state();
    assert!(s["mux"]["vips"][0]["packets"].as_u64() > Some(0), "{s}");
    assert!(s["mux"]["packets"]["tx"].as_u64() > Some(0), "{s}");

    // [mux] applied live: the VIP moves to backend 2.
    let changes = mux.reload(&mux_config("eth0", "10.99.0.12", &mac2));
    assert!(
        changes
            .iter()
            .any(|c| c.contains("mux") && !c.contains("restart")),
        "{changes:?}"
    );
    mux.wait("new connections reach backend 2", |_| {
        through_vip(&cl).filter(|b| b == "backend-2")
    });
    // A new interface needs a restart: reported so, and the Mux keeps running as it was.
    let changes = mux.reload(&mux_config("eth1", "10.99.0.12", &mac2));
    assert!(
        changes.iter().any(|c| c.contains("at the next restart")),
        "{changes:?}"
    );
    assert_eq!(mux.state()["mux"]["interface"], "eth0");
    assert_eq!(through_vip(&cl).as_deref(), Some("backend-2"));
    // The file still differs from what runs, so the next reload says so again.
    let changes = mux.reload(&mux_config("eth1", "10.99.0.12", &mac2));
    assert!(
        changes.iter().any(|c| c.contains("at the next restart")),
        "{changes:?}"
    );
    mux.reload(&mux_config("eth0", "10.99.0.12", &mac2));

    // [agent] applied live: backend 2's check becomes an HTTP content check its service
    // fails, so it reports the service down and the Mux stops offering the VIP.
    let changes = a2.reload(&agent_config("10.99.0.12", Some("not-served")));
    assert!(changes.iter().any(|c| c.contains("agent")), "{changes:?}");
    a2.wait("the content check is down", |n| {
        let s = n.state();
        (s["agent"]["checks"][0]["state"] == "down").then_some(())
    });
    mux.wait("the Mux sees backend 2 down", |n| {
        (n.state()["mux"]["vips"][0]["healthy"] == false).then_some(())
    });

    // SIGTERM: exit 0, programs detached, the VIPs leave lo.
    for node in [&mut a1, &mut a2, &mut mux] {
        let status = node.terminate();
        assert!(
            status.success(),
            "{}: {status}; log:\n{}",
            node.ns,
            node.log()
        );
    }
    assert!(!xdp_on_eth0(&mx), "the Mux program is detached");
    assert!(!xdp_on_eth0(&b1), "the decapsulating program is detached");
    assert!(
        !sh(&format!("ip -n {b1} addr show lo")).contains(VIP),
        "the VIP left lo"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = std::fs::remove_dir_all(&dir);
}
