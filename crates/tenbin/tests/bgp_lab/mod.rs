//! A BGP/ECMP lab in network namespaces: one router namespace and N Mux namespaces, each Mux
//! on its own veth link (`10.88.1N.0/24`, `fd88:1N::/64`; router `.1`, Mux `.2`). Every
//! process started here is killed and every namespace deleted on drop, even on panic.
#![allow(dead_code)]

#[path = "../../../tenbin-xdp/tests/netns/mod.rs"]
pub mod netns;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use netns::{in_ns, serve, sh, spawn_in_ns};

pub const VIP4: &str = "10.99.100.1";
pub const VIP6: &str = "fd99::1";

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
    /// The namespaces (deleted when this drops, after the processes are killed).
    pub net: netns::Lab,
    pub dir: PathBuf,
    children: Vec<(String, Child)>,
    /// Directories outside `dir` made for a daemon (FRR's runtime path), removed on drop.
    extra_dirs: Vec<PathBuf>,
}

impl Lab {
    /// No namespaces yet; IPv6 stays on in the ones made.
    pub fn empty(tag: &str) -> Lab {
        let mut net = netns::Lab::new(tag);
        net.ipv6 = true;
        let dir = std::env::temp_dir().join(format!("tenbin-{}", net.prefix));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        Lab {
            net,
            dir,
            children: Vec::new(),
            extra_dirs: Vec::new(),
        }
    }

    /// The router namespace `<prefix>-r` with forwarding and an L4 multipath hash; Muxes are
    /// linked to it point to point by [`Lab::add_mux`].
    pub fn new(tag: &str) -> Lab {
        let mut lab = Lab::empty(tag);
        let r = lab.net.add_ns("r");
        router_sysctls(&r);
        lab
    }

    pub fn prefix(&self) -> &str {
        &self.net.prefix
    }

    pub fn router(&self) -> String {
        self.net.ns("r")
    }

    pub fn mux(&self, i: u8) -> String {
        self.net.ns(&format!("m{i}"))
    }

    /// Mux namespace `i` linked to the router: router side `r{i}`, Mux side `eth0`.
    pub fn add_mux(&mut self, i: u8) -> String {
        let m = self.net.add_ns(&format!("m{i}"));
        let r = self.router();
        let tmp = format!("{}-v{i}", self.net.prefix);
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

    /// Whether the named process has exited (it stays listed).
    pub fn exited(&mut self, name: &str) -> bool {
        self.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .is_none_or(|(_, c)| c.try_wait().ok().flatten().is_some())
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
        for d in &self.extra_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Forwarding and an L4 multipath hash (with 0, all flows of one client take one path).
pub fn router_sysctls(ns: &str) {
    sh(&format!(
        "ip netns exec {ns} sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
         net.ipv6.conf.all.forwarding=1 net.ipv6.fib_multipath_hash_policy=1"
    ));
}

/// The `tenbin mux run` config of Mux `i`: two VIPs (IPv4, IPv6), one backend each in state
/// `state`, and `[bgp]` towards the router with identical attributes on every Mux.
pub fn mux_config(i: u8, state: &str, remote_as: u32) -> String {
    let mut c = String::from("[mux]\ninterface = \"eth0\"\nseed = 7\n");
    for (vip, backend) in [(VIP4, "10.77.0.1"), (VIP6, "fd77::1")] {
        c.push_str(&format!(
            "[[mux.vip]]\naddress = \"{vip}\"\nport = 80\nprotocol = \"tcp\"\nforward = \"ipip\"\n\
             [[mux.vip.backend]]\naddress = \"{backend}\"\nmac = \"02:be:00:00:00:01\"\nstate = \"{state}\"\n"
        ));
    }
    c.push_str(&bgp_section(
        i,
        &format!(
            "med = 10\ncommunities = [\"65001:100\"]\nlarge_communities = [\"65001:1:2\"]\n\
             next_hop_v6 = \"fd88:1{i}::2\"\n"
        ),
        &format!("remote_as = {remote_as}\n"),
    ));
    c
}

/// `[bgp]` of node `i` towards the router (AS 65001, fast timers, 1 s linger), with `extra`
/// keys in `[bgp]` and `neighbor` keys in its one `[[bgp.neighbor]]`.
pub fn bgp_section(i: u8, extra: &str, neighbor: &str) -> String {
    format!(
        r#"
[bgp]
router_id = "10.88.1{i}.2"
local_as = 65001
hold_time = 3
connect_retry = "1s"
connect_retry_max = "2s"
linger = "1s"
{extra}
[[bgp.neighbor]]
address = "10.88.1{i}.1"
{neighbor}"#
    )
}

/// birdc's answer in the router namespace; it exits non-zero for answers like "Network not
/// found", so the status is not checked.
pub fn birdc(lab: &Lab, ctl: &str, cmd: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.router(), "birdc", "-s", ctl])
        .args(cmd.split_whitespace())
        .output()
        .expect("birdc runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
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
