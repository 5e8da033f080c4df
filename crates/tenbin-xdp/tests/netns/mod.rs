//! Network-namespace lab helpers: unique names per run, removal on drop (even on panic),
//! running code inside a namespace from a thread.
#![allow(dead_code)]

use std::fs::File;
use std::process::Command;

/// Runs a command, panicking with its stderr on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread that has entered namespace `ns`. Sockets and XDP attachments created
/// there stay in that namespace when handed back.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = File::open(&path).expect("netns file");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// Spawns a thread that lives in namespace `ns` (for loops that must run there).
pub fn spawn_in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).expect("netns file");
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// A set of namespaces named `<prefix>-<role>`, deleted on drop.
pub struct Lab {
    pub prefix: String,
    made: Vec<String>,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        Lab {
            prefix: format!("{tag}{}", std::process::id() % 100_000),
            made: Vec::new(),
        }
    }

    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    pub fn add_ns(&mut self, role: &str) -> String {
        let ns = self.ns(role);
        sh(&format!("ip netns add {ns}"));
        self.made.push(ns.clone());
        sh(&format!(
            "ip -n {ns} link set lo up; ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
        ));
        ns
    }

    /// A host namespace `role` with eth0 = `addr` plugged into the bridge of namespace `sw`.
    /// Transmit checksum offload is off: a veth leaves TCP checksums to the receiver, and a
    /// frame an XDP program forwards has lost that promise (on a wire it was never made).
    pub fn plug(&mut self, sw: &str, role: &str, addr: &str) -> String {
        let ns = self.add_ns(role);
        let tmp = format!("{}-{role}", self.prefix);
        sh(&format!(
            "ip link add {tmp} type veth peer name p-{role} netns {sw} && \
             ip link set {tmp} netns {ns} && ip -n {ns} link set {tmp} name eth0 && \
             ip -n {sw} link set p-{role} master br0 && ip -n {sw} link set p-{role} up && \
             ip -n {ns} addr add {addr} dev eth0 && ip -n {ns} link set eth0 up && \
             ip netns exec {ns} ethtool -K eth0 tx off >/dev/null"
        ));
        ns
    }

    /// MAC address of eth0 in `ns`.
    pub fn mac(ns: &str) -> [u8; 6] {
        let s = sh(&format!("cat /dev/null; ip -n {ns} -o link show eth0"));
        let at = s.find("link/ether ").expect("ether") + 11;
        let mut m = [0u8; 6];
        for (i, p) in s[at..at + 17].split(':').enumerate() {
            m[i] = u8::from_str_radix(p, 16).expect("mac");
        }
        m
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
