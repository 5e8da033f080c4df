//! Helpers shared by the tests that run the real `tenbin` binary as a user would.
//!
//! A [`Daemon`] is `tenbin --log-json run` on a config written to its own temporary directory.
//! Its log goes to a file there, which is printed when the test fails; the test learns the
//! addresses the daemon bound (configs bind port 0) from the log's `listening` events, so no
//! port is guessed.
// Each test file uses a subset of these.
#![allow(dead_code)]

pub mod admin;
pub mod sync;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a test waits for the daemon to log an event before it fails.
pub const LOG_WAIT: Duration = Duration::from_secs(30);

/// A `tenbin run` process, killed (its log printed if the test failed) even when an assertion
/// fails.
pub struct Daemon {
    child: Mutex<Child>,
    dir: PathBuf,
    /// The config file; rewrite it and [`Daemon::hup`] to reload.
    pub config: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Writes `config` to a fresh temporary directory and starts `tenbin run` on it.
    pub fn start(config: &str, tag: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("tenbin-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tenbin.toml");
        std::fs::write(&file, config).unwrap();
        let log = dir.join("tenbin.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tenbin"))
            .args(["--log-json", "run", "-c"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("the tenbin binary starts");
        Daemon {
            child: Mutex::new(child),
            dir,
            config: file,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's JSON events whose message starts with `prefix`, in order.
    pub fn events(&self, prefix: &str) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| {
                e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(prefix))
            })
            .collect()
    }

    /// Waits (bounded by [`LOG_WAIT`]) until at least `n` events start with `prefix`, failing
    /// at once if the daemon exited.
    pub fn wait_events(&self, prefix: &str, n: usize) -> Vec<serde_json::Value> {
        self.wait_for(&format!("{n} x {prefix:?}"), || {
            let found = self.events(prefix);
            (found.len() >= n).then_some(found)
        })
    }

    /// The address the daemon bound for `listening (KIND)` (`http`, `https`, `tcp`, `tls`, `udp`, `dns`, `admin`),
    /// of `frontend` when given: port 0 in the config comes back resolved.
    pub fn bound(&self, kind: &str, frontend: Option<&str>) -> SocketAddr {
        let prefix = format!("listening ({kind})");
        let event = self.wait_for(&format!("{prefix} of {frontend:?}"), || {
            self.events(&prefix)
                .into_iter()
                .find(|e| frontend.is_none_or(|f| e["fields"]["frontend"].as_str() == Some(f)))
        });
        let addr = event["fields"]["addr"]
            .as_str()
            .expect("listening has an addr");
        addr.parse().expect("a socket address")
    }

    /// Polls `f` until it returns `Some`, bounded by [`LOG_WAIT`], failing at once when the
    /// daemon has exited (its log is printed then).
    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            if let Some(v) = f() {
                return v;
            }
            self.assert_running();
            assert!(Instant::now() < deadline, "{what}: not within {LOG_WAIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails the test when the daemon has exited (its log is printed then).
    pub fn assert_running(&self) {
        if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
            panic!("tenbin exited ({status})");
        }
    }

    /// Sends SIGHUP (reload the config file).
    pub fn hup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP");
    }

    /// A path in the daemon's temporary directory, for files a test writes beside the config.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- tenbin log ({}) ----\n{}---- end of tenbin log ----",
                self.log.display(),
                self.log()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `dig +short` for `name`'s A records at `server`.
pub fn dig(server: SocketAddr, name: &str) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), name, "A", "+short"])
        .args(["+time=1", "+tries=2"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The text of a file under the repository's `examples/`.
pub fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name),
    )
    .unwrap()
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
                .filter(|f| {
                    f["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("listening ("))
                        && f["frontend"] == name
                })
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
