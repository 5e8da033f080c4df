//! The VRRP lab of LABS.md as a value: a bridge namespace `sw`, nodes `a` and `b`
//! (10.77.0.1, .2) and a client `c` (10.77.0.3) that is also the gateway the nodes probe.
//! Daemons, HTTP responders and address monitors are stopped and every namespace deleted
//! on drop, also when an assertion fails. Labs of one test binary run one at a time: VRRP
//! at 0.1 s adverts must not compete with a neighbouring lab for the CPU.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.77.0.100";

static SERIAL: Mutex<()> = Mutex::new(());

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the lab can run here (root, ip, nft); skips (or fails under CI) otherwise.
pub fn can_run(extra: &[&str]) -> bool {
    let mut tools = vec!["ip", "nft"];
    tools.extend_from_slice(extra);
    tenbin_testkit::skip::need_root("netns VRRP lab") && tenbin_testkit::skip::need_tools(&tools)
}

/// A process in the lab: a tenbin node, keepalived or `ip monitor`.
struct Proc {
    name: String,
    child: Child,
    /// keepalived forks its VRRP child: its pid file, to make sure it is gone too.
    child_pid_file: Option<PathBuf>,
}

impl Proc {
    fn end(&mut self, first: nix::sys::signal::Signal) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, first);
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(f) = &self.child_pid_file {
            if let Some(p) = std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
}

pub struct Lab {
    pub p: String,
    pub dir: PathBuf,
    procs: Vec<Proc>,
    stops: Vec<Arc<AtomicBool>>,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = format!("{tag}{}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("tenbin-{p}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let lab = Lab {
            p,
            dir,
            procs: Vec::new(),
            stops: Vec::new(),
            _serial: serial,
        };
        lab.cleanup_namespaces();
        let p = &lab.p;
        sh(&format!(
            "ip netns add {p}-sw && ip -n {p}-sw link add br0 type bridge && ip -n {p}-sw link set br0 up"
        ));
        for (i, h) in ["a", "b", "c"].iter().enumerate() {
            let n = i + 1;
            sh(&format!(
                "ip netns add {p}-{h} && ip link add {p}-{h}-e0 type veth peer name port-{h} netns {p}-sw \
                 && ip link set {p}-{h}-e0 netns {p}-{h} && ip -n {p}-{h} link set {p}-{h}-e0 name eth0 \
                 && ip -n {p}-sw link set port-{h} master br0 && ip -n {p}-sw link set port-{h} up \
                 && ip -n {p}-{h} link set lo up && ip -n {p}-{h} addr add 10.77.0.{n}/24 dev eth0 \
                 && ip -n {p}-{h} link set eth0 up"
            ));
        }
        let notify = lab.dir.join("notify.sh");
        std::fs::write(
            &notify,
            format!(
                "#!/bin/sh\necho \"$NODE $3 $2\" >> {}/notify.log\n",
                lab.dir.display()
            ),
        )
        .expect("notify script");
        sh(&format!("chmod +x {}", notify.display()));
        lab
    }

    pub fn ns(&self, h: &str) -> String {
        format!("{}-{h}", self.p)
    }

    pub fn notify_script(&self) -> String {
        self.dir.join("notify.sh").display().to_string()
    }

    /// Starts `tenbin vrrp` on node `h` with `config` (a whole TOML file).
    pub fn tenbin(&mut self, h: &str, config: &str) {
        self.spawn_tenbin(h, h, "vrrp", config);
    }

    /// Starts `tenbin run` on node `h` with `config`, as process `name` (for [`Lab::kill9`]),
    /// logging to `name.log`.
    pub fn tenbin_run_as(&mut self, h: &str, name: &str, config: &str) {
        self.spawn_tenbin(h, name, "run", config);
    }

    /// Starts `tenbin run` (the node: `[vrrp]` beside the proxy tier) on node `h`.
    pub fn tenbin_run(&mut self, h: &str, config: &str) {
        self.spawn_tenbin(h, h, "run", config);
    }

    /// The path of node `h`'s config file (rewrite it and [`Lab::reload`] to apply).
    pub fn config_path(&self, h: &str) -> PathBuf {
        self.dir.join(format!("{h}.toml"))
    }

    /// SIGHUP to node `h`: a `tenbin run` node reloads its file.
    pub fn reload(&self, h: &str) {
        let p = self
            .procs
            .iter()
            .find(|p| p.name == h)
            .expect("process of node");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p.child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP");
    }

    /// `tenbin ctl ARGS` inside node `h` against its admin API (see [`run_config`]).
    pub fn ctl(&self, h: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(h),
                env!("CARGO_BIN_EXE_tenbin"),
                "ctl",
            ])
            .args(["--admin", ADMIN])
            .args(args)
            .output()
            .expect("tenbin ctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn spawn_tenbin(&mut self, h: &str, name: &str, command: &str, config: &str) {
        let file = self.dir.join(format!("{name}.toml"));
        std::fs::write(&file, config).expect("config");
        let log = File::create(self.dir.join(format!("{name}.log"))).expect("log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(h),
                env!("CARGO_BIN_EXE_tenbin"),
                command,
                "-c",
            ])
            .arg(&file)
            .env("NODE", h)
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tenbin");
        self.procs.push(Proc {
            name: name.to_owned(),
            child,
            child_pid_file: None,
        });
    }

    /// Starts keepalived on node `h`; `instance` is the body of its vrrp_instance block.
    pub fn keepalived(&mut self, h: &str, instance: &str) {
        let d = self.dir.display();
        let conf = format!(
            "global_defs {{\n vrrp_version 3\n script_user root\n}}\n\
             vrrp_instance V {{\n interface eth0\n notify \"/usr/bin/env NODE={h} {d}/notify.sh\"\n{instance}\n}}\n"
        );
        let file = self.dir.join(format!("{h}-keepalived.conf"));
        std::fs::write(&file, conf).expect("keepalived conf");
        let log = File::create(self.dir.join(format!("{h}.log"))).expect("log");
        let pid = |k: &str| format!("{d}/{h}-{k}.pid");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(h),
                "keepalived",
                "--vrrp",
                "-n",
                "-l",
                "-G",
                "-D",
                "-f",
            ])
            .arg(&file)
            .args(["-p", &pid("main"), "-r", &pid("vrrp"), "-c", &pid("check")])
            .args(["-i", &self.p])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start keepalived");
        let child_pid_file = Some(PathBuf::from(pid("vrrp")));
        self.procs.push(Proc {
            name: h.to_owned(),
            child,
            child_pid_file,
        });
    }

    /// Logs every address change in node `h` to `h.addr` until the lab ends.
    pub fn monitor_addresses(&mut self, h: &str) {
        let out = File::create(self.dir.join(format!("{h}.addr"))).expect("monitor file");
        let child = Command::new("ip")
            .args(["-n", &self.ns(h), "monitor", "address"])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor");
        self.procs.push(Proc {
            name: format!("{h}-monitor"),
            child,
            child_pid_file: None,
        });
    }

    /// Whether the monitor of node `h` ever saw the VIP added.
    pub fn ever_had_vip(&self, h: &str) -> bool {
        let log = std::fs::read_to_string(self.dir.join(format!("{h}.addr"))).unwrap_or_default();
        log.lines()
            .any(|l| !l.starts_with("Deleted") && l.contains(&format!("{VIP}/")))
    }

    fn signal(&mut self, h: &str, sig: nix::sys::signal::Signal) {
        let p = self
            .procs
            .iter_mut()
            .find(|p| p.name == h)
            .expect("process of node");
        p.end(sig);
        self.procs.retain(|p| p.name != h);
    }

    pub fn kill9(&mut self, h: &str) {
        self.signal(h, nix::sys::signal::Signal::SIGKILL);
    }

    /// SIGKILL to node `h`'s children (tenbin's VIP guard) first, then to the node.
    pub fn kill9_with_children(&mut self, h: &str) {
        let p = self
            .procs
            .iter()
            .find(|p| p.name == h)
            .expect("process of node");
        let pid = p.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        assert!(!children.trim().is_empty(), "node {h} has no guard process");
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.kill9(h);
    }

    /// SIGTERM, waiting for the daemon to exit (a graceful stop).
    pub fn stop(&mut self, h: &str) {
        self.signal(h, nix::sys::signal::Signal::SIGTERM);
    }

    pub fn log(&self, h: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{h}.log"))).unwrap_or_default()
    }

    /// The states node `h` reported through the notify hook, in order.
    pub fn states(&self, h: &str) -> Vec<String> {
        self.states_of(h, None)
    }

    /// The states of one instance (all when `None`) of node `h`, in order.
    pub fn states_of(&self, h: &str, instance: Option<&str>) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("notify.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some((f.next()?, f.next()?, f.next()?))
            })
            .filter(|(n, _, i)| *n == h && instance.is_none_or(|want| want == *i))
            .map(|(_, s, _)| s.to_owned())
            .collect()
    }

    pub fn has_vip(&self, h: &str) -> bool {
        self.has_addr(h, VIP)
    }

    pub fn has_addr(&self, h: &str, addr: &str) -> bool {
        sh(&format!("ip -n {} -o addr show dev eth0", self.ns(h))).contains(&format!(" {addr}/"))
    }

    /// Waits (bounded) until `f` holds, panicking with `what` and the logs otherwise.
    pub fn wait(&self, what: &str, limit: Duration, mut f: impl FnMut(&Lab) -> bool) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "timed out waiting for {what}\nnotify: {:?} / {:?}\na: {}\nb: {}",
            self.states("a"),
            self.states("b"),
            self.log("a"),
            self.log("b")
        );
    }

    /// Waits until node `h` reports `state` (its last reported state).
    pub fn wait_state(&self, h: &str, state: &str, limit: Duration) {
        self.wait(&format!("{h} in {state}"), limit, |l| {
            l.states(h).last().is_some_and(|s| s == state)
        });
    }

    /// For `window`, checks that `bad` never holds; returns early with a panic if it does.
    pub fn never(&self, what: &str, window: Duration, mut bad: impl FnMut(&Lab) -> bool) {
        let end = Instant::now() + window;
        while Instant::now() < end {
            assert!(
                !bad(self),
                "{what}\nnotify a {:?} b {:?}",
                self.states("a"),
                self.states("b")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An HTTP responder on port 80 of node `h` answering with the node's name.
    pub fn http_server(&mut self, h: &str) {
        self.http_server_on(h, 80);
    }

    /// An HTTP responder on `port` of node `h` answering with the node's name.
    pub fn http_server_on(&mut self, h: &str, port: u16) {
        let stop = Arc::new(AtomicBool::new(false));
        self.stops.push(stop.clone());
        let ns = self.ns(h);
        let name = h.to_owned();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            enter(&ns);
            // Dual-stack: answers on the IPv4 and the IPv6 VIP.
            let l = TcpListener::bind(format!("[::]:{port}"))
                .or_else(|_| TcpListener::bind(format!("0.0.0.0:{port}")))
                .expect("bind the responder");
            l.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let body = format!("node-{name}");
                        let _ = write!(
                            s,
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("http server ready");
    }

    /// One HTTP GET from the client to the VIP: the answering node's name, or `None`.
    pub fn get_vip(&self) -> Option<String> {
        self.get(SocketAddr::from((
            VIP.parse::<std::net::IpAddr>().ok()?,
            80,
        )))
    }

    /// One HTTP GET from the client to `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<String> {
        let ns = self.ns("c");
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(&ns);
                let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
                c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
                c.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
                let mut r = String::new();
                c.read_to_string(&mut r).ok()?;
                let (head, body) = r.split_once("\r\n\r\n")?;
                head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
            })
            .join()
            .ok()
            .flatten()
        })
    }

    /// Waits until HTTP through the VIP is answered by node `h`.
    pub fn wait_http_from(&self, h: &str, limit: Duration) {
        let want = format!("node-{h}");
        self.wait(&format!("HTTP via the VIP answered by {h}"), limit, |l| {
            l.get_vip().as_deref() == Some(want.as_str())
        });
    }

    /// Drops VRRP towards `port` in the bridge (one-way advert loss).
    pub fn drop_vrrp_to(&self, port: &str) {
        let ns = self.ns("sw");
        sh(&format!(
            "ip netns exec {ns} nft add table bridge f && \
             ip netns exec {ns} nft add chain bridge f fw '{{ type filter hook forward priority 0; }}' && \
             ip netns exec {ns} nft add rule bridge f fw oifname {port} ip protocol 112 drop"
        ));
    }

    /// Drops every frame to and from `port` while its link stays up (a dead switch port).
    pub fn silence_port(&self, port: &str) {
        let ns = self.ns("sw");
        sh(&format!(
            "ip netns exec {ns} nft add table bridge s && \
             ip netns exec {ns} nft add chain bridge s fw '{{ type filter hook forward priority 0; }}' && \
             ip netns exec {ns} nft add rule bridge s fw oifname {port} drop && \
             ip netns exec {ns} nft add rule bridge s fw iifname {port} drop"
        ));
    }

    pub fn unsilence(&self) {
        sh(&format!(
            "ip netns exec {} nft delete table bridge s",
            self.ns("sw")
        ));
    }

    pub fn port_down(&self, port: &str) {
        sh(&format!("ip -n {} link set {port} down", self.ns("sw")));
    }

    pub fn port_up(&self, port: &str) {
        sh(&format!("ip -n {} link set {port} up", self.ns("sw")));
    }

    fn cleanup_namespaces(&self) {
        for h in ["a", "b", "c", "sw"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(h)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &self.stops {
            s.store(true, Ordering::Relaxed);
        }
        for p in &mut self.procs {
            p.end(nix::sys::signal::Signal::SIGTERM);
        }
        self.cleanup_namespaces();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Moves the calling thread into namespace `ns`.
pub fn enter(ns: &str) {
    let fd = File::open(format!("/var/run/netns/{ns}")).expect("netns file");
    nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// A tenbin node's `[vrrp]` config with one instance; `extra` lines go into the instance.
pub fn node_config(notify: &str, priority: u8, interval: &str, extra: &str) -> String {
    format!(
        "[vrrp]\nnotify = \"{notify}\"\n\n[[vrrp.instance]]\nname = \"web\"\ninterface = \"eth0\"\n\
         vrid = 51\npriority = {priority}\ninterval = \"{interval}\"\nvips = [\"{VIP}/24\"]\n\
         vip_lifetime = \"1s\"\n{extra}\n"
    )
}

/// The admin API of a [`run_config`] node, inside its namespace.
pub const ADMIN: &str = "127.0.0.1:9900";

/// The backend port of a [`run_config`] node: [`Lab::http_server_on`] it.
pub const BACKEND_PORT: u16 = 8081;

/// A `tenbin run` node's file: [`node_config`]'s `[vrrp]` and an HTTP frontend on port 80
/// of every address (so on the VIP once it is here) in front of the node's own responder
/// on [`BACKEND_PORT`], with a TCP check, and the admin API on [`ADMIN`].
pub fn run_config(notify: &str, priority: u8, interval: &str, extra: &str) -> String {
    format!(
        "[admin]\nlisten = \"{ADMIN}\"\n\n[[frontend]]\nname = \"web\"\nbind = [\"0.0.0.0:80\"]\n\
         default_pool = \"web\"\n\n[[pool]]\nname = \"web\"\n\
         health = {{ kind = \"tcp\", interval = \"200ms\", rise = 1, fall = 1 }}\n\n\
         [[pool.server]]\nname = \"local\"\naddress = \"127.0.0.1:{BACKEND_PORT}\"\n\n{}",
        node_config(notify, priority, interval, extra)
    )
}
