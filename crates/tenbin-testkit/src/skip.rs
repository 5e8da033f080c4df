//! Skips that cannot hide in CI.
//!
//! A test that needs root or an external tool calls [`skip`] when it is missing. Outside CI
//! that prints `skipped: REASON` and the test returns early; when `TENBIN_REQUIRE_PRIVILEGED=1`
//! (`.ci/run` sets it: CI runs as root with every tool installed) it panics instead, so a
//! missing prerequisite fails the run rather than passing it silently.
//!
//! ```no_run
//! if !tenbin_testkit::skip::have_tool("dig") {
//!     return tenbin_testkit::skip::skip("needs dig (scripts/install-deps)");
//! }
//! ```

use std::path::Path;

/// The variable under which every skip fails.
pub const REQUIRE_VAR: &str = "TENBIN_REQUIRE_PRIVILEGED";

/// Whether skips must fail (the variable is set to `1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// Records that this test cannot run here: prints the reason, or panics under CI.
#[track_caller]
pub fn skip(reason: &str) {
    if required() {
        panic!("{REQUIRE_VAR}=1 but this test would skip: {reason}");
    }
    println!("skipped: {reason}");
}

/// Whether the process runs as root (effective uid 0), read from /proc without libc.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Whether `name` is an executable on `PATH`.
pub fn have_tool(name: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name)))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `true` when the test may go on: root is there, or [`skip`] was called.
#[track_caller]
pub fn need_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(&format!("needs root ({what})"));
    false
}

/// `true` when every tool is on `PATH`; otherwise [`skip`] names the missing ones.
#[track_caller]
pub fn need_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have_tool(t)).collect();
    if missing.is_empty() {
        return true;
    }
    skip(&format!(
        "needs {} (scripts/install-deps installs it)",
        missing.join(", ")
    ));
    false
}
