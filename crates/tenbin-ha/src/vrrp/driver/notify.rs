//! The notify hook: keepalived's calling convention, `SCRIPT INSTANCE NAME STATE PRIORITY`,
//! run without waiting (a slow script must not delay adverts) and reaped on its own thread.

use std::path::Path;
use std::process::Command;

use crate::vrrp::State;

pub fn run(script: &Path, instance: &str, state: State, priority: u8) {
    let spawned = Command::new(script)
        .arg("INSTANCE")
        .arg(instance)
        .arg(state.name())
        .arg(priority.to_string())
        .spawn();
    match spawned {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => {
            tracing::warn!(script = %script.display(), error = %e, "vrrp notify script did not start");
        }
    }
}
