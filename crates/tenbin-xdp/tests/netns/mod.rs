//! Network-namespace lab helpers: unique names per run, removal on drop (even on panic),
//! running code inside a namespace from a thread.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// A backend host in `ns`: the host agent's setup (VIP on lo, DSR sysctls), its decap program
/// on eth0, and a listener on the VIP's port 80.
pub fn backend_host(ns: &str, vip: std::net::IpAddr) -> (TcpListener, tenbin_xdp::loader::Program) {
    in_ns(ns, || {
        tenbin_xdp::agent::configure("eth0", &[vip]).expect("agent setup");
        let mut d = tenbin_xdp::loader::Program::decap().expect("load decap");
        d.attach("eth0").expect("attach decap");
        (TcpListener::bind((vip, 80)).expect("bind VIP"), d)
    })
}

/// A set of namespaces named `<prefix>-<role>`, deleted on drop.
pub struct Lab {
    pub prefix: String,
    /// Keep IPv6 on in new namespaces (off by default: its neighbour discovery is noise for
    /// counter assertions).
    pub ipv6: bool,
    made: Vec<String>,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        Lab {
            prefix: format!("{tag}{}", std::process::id() % 100_000),
            ipv6: false,
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
        let v6 = if self.ipv6 { 0 } else { 1 };
        sh(&format!(
            "ip -n {ns} link set lo up; ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6={v6} net.ipv6.conf.default.disable_ipv6={v6}"
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

/// One keep-alive GET on an open connection; returns the body.
pub fn get(s: &mut TcpStream) -> std::io::Result<String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    for _ in 0..50 {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(i) = text.find("\r\n\r\n") {
            if text[i + 4..].ends_with('\n') {
                return Ok(text[i + 4..].trim().to_string());
            }
        }
    }
    Err(std::io::Error::other("incomplete response"))
}

/// A minimal keep-alive HTTP/1.1 server answering `backend-<n>`; stops when `stop` is set.
pub fn serve(l: TcpListener, name: String, stop: Arc<AtomicBool>) {
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    let (name, stop) = (name.clone(), stop.clone());
                    std::thread::spawn(move || conn(s, &name, &stop));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
}

fn conn(s: TcpStream, name: &str, stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if line == "\r\n" => {
                let body = format!("{name}\n");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if w.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}
