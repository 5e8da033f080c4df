//! A BGP/ECMP lab in network namespaces: one router namespace and N Mux namespaces, each Mux
//! on its own veth link (`10.88.1N.0/24`, `fd88:1N::/64`; router `.1`, Mux `.2`). Every
//! process started here is killed and every namespace deleted on drop, even on panic.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const VIP4: &str = "10.99.100.1";
pub const VIP6: &str = "fd99::1";

/// Runs a shell command, panicking with its stderr on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    /// Directories outside `dir` made for a daemon (FRR's runtime path), removed on drop.
    extra_dirs: Vec<PathBuf>,
}

impl Lab {
    /// The router namespace `<prefix>-r` with forwarding and an L4 multipath hash.
    pub fn new(tag: &str) -> Lab {
        let prefix = format!("{tag}{}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("tenbin-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let mut lab = Lab {
            prefix,
            dir,
            namespaces: Vec::new(),
            children: Vec::new(),
            extra_dirs: Vec::new(),
        };
        let r = lab.add_ns("r");
        sh(&format!(
            "ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
             net.ipv6.conf.all.forwarding=1 net.ipv6.fib_multipath_hash_policy=1"
        ));
        lab
    }

    pub fn router(&self) -> String {
        format!("{}-r", self.prefix)
    }

    pub fn mux(&self, i: u8) -> String {
        format!("{}-m{i}", self.prefix)
    }

    fn add_ns(&mut self, role: &str) -> String {
        let ns = format!("{}-{role}", self.prefix);
        sh(&format!("ip netns add {ns}"));
        self.namespaces.push(ns.clone());
        sh(&format!("ip -n {ns} link set lo up"));
        ns
    }

    /// Mux namespace `i` linked to the router: router side `r{i}`, Mux side `eth0`.
    pub fn add_mux(&mut self, i: u8) -> String {
        let m = self.add_ns(&format!("m{i}"));
        let r = self.router();
        let tmp = format!("{}-v{i}", self.prefix);
        sh(&format!(
            "ip link add {tmp} type veth peer name r{i} netns {r} && \
             ip link set {tmp} netns {m} && ip -n {m} link set {tmp} name eth0 && \
             ip -n {r} addr add 10.88.1{i}.1/24 dev r{i} && ip -n {r} addr add fd88:1{i}::1/64 dev r{i} nodad && \
             ip -n {m} addr add 10.88.1{i}.2/24 dev eth0 && ip -n {m} addr add fd88:1{i}::2/64 dev eth0 nodad && \
             ip -n {r} link set r{i} up && ip -n {m} link set eth0 up"
        ));
        m
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts `cmd` (argv) inside namespace `ns`; its output goes to `<dir>/<name>.log`.
    pub fn spawn(&mut self, name: &str, ns: &str, argv: &[&str]) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.children.push((name.to_string(), child));
    }

    /// Sends `signal` (e.g. "KILL", "TERM") to the named process.
    pub fn signal(&mut self, name: &str, signal: &str) {
        let (_, c) = self
            .children
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"));
        sh(&format!("kill -{signal} {}", c.id()));
    }

    /// Waits (bounded) for the named process to exit and returns whether it succeeded.
    pub fn wait_exit(&mut self, name: &str, limit: Duration) -> bool {
        let i = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"));
        let status = wait_for(&format!("{name} to exit"), limit, || {
            self.children[i].1.try_wait().ok().flatten()
        });
        self.children.remove(i);
        status.success()
    }

    /// Makes a directory removed with the lab.
    pub fn extra_dir(&mut self, p: PathBuf) -> PathBuf {
        std::fs::create_dir_all(&p).expect("extra dir");
        self.extra_dirs.push(p.clone());
        p
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Writes a file in the lab directory and returns its path as a string.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write lab file");
        p.display().to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for d in &self.extra_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The `tenbin mux run` config of Mux `i`: two VIPs (IPv4, IPv6), one backend each in state
/// `state`, and `[bgp]` towards the router with identical attributes on every Mux.
pub fn mux_config(i: u8, state: &str, remote_as: u32) -> String {
    format!(
        r#"
[mux]
interface = "eth0"
seed = 7

[[mux.vip]]
address = "{VIP4}"
port = 80
protocol = "tcp"
forward = "ipip"
[[mux.vip.backend]]
address = "10.77.0.1"
mac = "02:be:00:00:00:01"
state = "{state}"

[[mux.vip]]
address = "{VIP6}"
port = 80
protocol = "tcp"
forward = "ipip"
[[mux.vip.backend]]
address = "fd77::1"
mac = "02:be:00:00:00:01"
state = "{state}"

[bgp]
router_id = "10.88.1{i}.2"
local_as = 65001
hold_time = 3
connect_retry = "1s"
connect_retry_max = "2s"
linger = "1s"
med = 10
communities = ["65001:100"]
large_communities = ["65001:1:2"]
next_hop_v6 = "fd88:1{i}::2"

[[bgp.neighbor]]
address = "10.88.1{i}.1"
remote_as = {remote_as}
"#
    )
}

/// Kernel next hops of `prefix` in namespace `ns` (`ip route`'s `via` addresses).
pub fn nexthops(ns: &str, prefix: &str, v6: bool) -> Vec<String> {
    let fam = if v6 { "-6" } else { "-4" };
    let out = sh(&format!("ip {fam} -n {ns} route show {prefix}"));
    let mut v: Vec<String> = out
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect();
    v.sort();
    v
}
