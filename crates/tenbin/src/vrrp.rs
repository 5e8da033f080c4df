//! `tenbin vrrp -c FILE`: the node's `[vrrp]` role (`node::vrrp`) on its own, with nothing
//! tracked, until SIGINT/SIGTERM (a graceful stop: masters send priority 0 and hand the
//! VIPs over). `tenbin run` runs the same role beside the other tiers.
//!
//! `--guard` is the role's VIP guard process: it waits for its stdin (a pipe from the role)
//! to close, then removes the VIPs, so they go even when the role's process is SIGKILLed.

use std::path::Path;

use anyhow::Context as _;
use tenbin_ha::vrrp::driver::guard_until_eof;

use crate::node::vrrp as role;

pub fn run(path: &Path, guard: bool) -> anyhow::Result<()> {
    let config = crate::check::load(path)?;
    let section = config
        .vrrp
        .with_context(|| format!("{}: no [vrrp] section", path.display()))?;
    if guard {
        return Ok(guard_until_eof(
            std::io::stdin(),
            &role::instances(&section),
        )?);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let routers = role::start(&section, path, &[])?;
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        routers.shutdown().await;
        Ok(())
    })
}
