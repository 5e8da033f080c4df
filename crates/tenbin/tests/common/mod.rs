//! Helpers shared by the tests that run the real `tenbin` binary as a user would.
// Each test file uses a subset of these.
#![allow(dead_code)]

pub mod admin;

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
