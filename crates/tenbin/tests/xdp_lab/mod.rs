//! A network namespace for the XDP roles' binary tests: one veth pair inside it for a
//! program to attach to, removed on drop; code run inside it; the binary run inside it.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f` on a thread inside namespace `ns`; sockets made there stay there.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = File::open(format!("/var/run/netns/{ns}")).expect("netns");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// The namespace, deleted on drop (also when an assertion fails).
pub struct Lab(pub String);

impl Lab {
    /// `tag` names the test; the pid keeps runs apart.
    pub fn new(tag: &str) -> Lab {
        let ns = format!("{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        sh(&format!("ip netns add {ns}"));
        let lab = Lab(ns);
        let ns = &lab.0;
        sh(&format!("ip -n {ns} link set lo up"));
        // The decapsulating program needs an interface to sit on.
        sh(&format!(
            "ip -n {ns} link add eth0 type veth peer name eth1"
        ));
        sh(&format!(
            "ip -n {ns} link set eth0 up && ip -n {ns} link set eth1 up"
        ));
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// `tenbin ARGS` in the namespace, stopped with SIGTERM (killed if it ignores it).
pub struct Tenbin(pub Child);

impl Tenbin {
    pub fn start(ns: &str, args: &[&str], config: &Path, log: &Path) -> Tenbin {
        Tenbin(
            Command::new("ip")
                .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_tenbin")])
                .args(args)
                .arg("-c")
                .arg(config)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(File::create(log).expect("log file"))
                .spawn()
                .expect("tenbin starts"),
        )
    }

    /// SIGTERM and the exit status, waited for with a bound.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).ok()?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Tenbin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
