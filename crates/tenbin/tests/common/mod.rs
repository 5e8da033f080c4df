//! Helpers shared by the tests that run the real `tenbin` binary as a user would.
// Each test file uses a subset of these.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `tenbin run` process, killed even when an assertion fails.
pub struct Daemon(pub Child);

impl Daemon {
    /// Starts `tenbin run -c config_file` with its output discarded.
    pub fn run(config_file: &Path) -> Daemon {
        Daemon(
            Command::new(env!("CARGO_BIN_EXE_tenbin"))
                .args(["run", "-c"])
                .arg(config_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the tenbin binary starts"),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `dig +short` for `name`'s A records at 127.0.0.1:`port`.
pub fn dig(port: u16, name: &str) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), name, "A", "+short"])
        .args(["+time=1", "+tries=2"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether `dig` is installed (scripts/install-deps installs it).
pub fn have_dig() -> bool {
    Command::new("dig").arg("-v").output().is_ok()
}

/// A `tenbin run --log-json` process whose log goes to a file: tests read the addresses it
/// bound from the log (configs say port 0), and the log is printed when the test fails.
pub struct LoggedDaemon {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl LoggedDaemon {
    /// Starts `tenbin --log-json run -c config_file EXTRA...`, logging to `log`.
    pub fn run(config_file: &Path, log: &Path, extra: &[&str]) -> LoggedDaemon {
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tenbin"))
            .args(["--log-json", "run", "-c"])
            .arg(config_file)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("the tenbin binary starts");
        LoggedDaemon {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Every JSON log line so far.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (bounded, 10 s) for a log line whose fields satisfy `pred`, and returns them.
    pub fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..200 {
            if let Some(l) = self.lines().into_iter().find(|l| pred(&l["fields"])) {
                return l["fields"].clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no log line for {what}");
    }

    /// The `nth` (0-based) address frontend `name` bound, waiting for it (bounded, 10 s).
    pub fn listening(&self, name: &str, nth: usize) -> std::net::SocketAddr {
        for _ in 0..200 {
            let all: Vec<std::net::SocketAddr> = self
                .lines()
                .iter()
                .map(|l| &l["fields"])
                .filter(|f| f["message"] == "listening" && f["frontend"] == name)
                .filter_map(|f| f["addr"].as_str()?.parse().ok())
                .collect();
            if let Some(a) = all.get(nth) {
                return *a;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("frontend {name} never bound address #{nth}");
    }

    /// The admin API's address.
    pub fn admin(&self) -> std::net::SocketAddr {
        let f = self.wait_for("the admin listener", |f| {
            f["message"] == "listening (admin)"
        });
        f["addr"].as_str().unwrap().parse().unwrap()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "tenbin did not exit");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for LoggedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "---- tenbin log ({}) ----\n{log}---- end of log ----",
                self.log.display()
            );
        }
    }
}

/// One request to the admin API (HTTP/1.0, so the server closes): status and body.
pub fn admin_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    // The connect is retried for up to 5 s while the daemon starts.
    let mut conn = None;
    for _ in 0..100 {
        if let Ok(c) = std::net::TcpStream::connect(addr) {
            conn = Some(c);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut s = conn.expect("the admin API listens");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: admin\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// A directory of its own for one test, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("tenbin-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    /// Writes `name` atomically (a rename), as deploy tools do, so readers never see half.
    pub fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Waits (bounded, 2 s) until `addr` refuses connections: its listener closed.
pub async fn wait_refused(addr: std::net::SocketAddr) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}
