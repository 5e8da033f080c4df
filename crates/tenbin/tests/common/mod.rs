//! Helpers shared by the tests that run the real `tenbin` binary as a user would.
//!
//! A [`Daemon`] is `tenbin --log-json run` on a config written to its own temporary directory.
//! Its log goes to a file there, which is printed when the test fails; the test learns the
//! addresses the daemon bound (configs bind port 0) from the log's `listening` events, so no
//! port is guessed.
// Each test file uses a subset of these.
#![allow(dead_code)]

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

    /// The address the daemon bound for `listening (KIND)` (`http`, `l4`, `dns`, `admin`, …),
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
