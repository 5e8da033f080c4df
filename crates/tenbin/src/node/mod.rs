//! The node runtime: one process that owns every tier it runs and applies every change live.
//!
//! - `bgp`: the `[bgp]` role, announcing the Mux's VIPs and (`anycast`) the DNS tier's
//!   listen addresses while they serve; withdrawn before the node stops.
//! - `control`: [`Control`], the one handle to read the node ([`Control::state`]) and change
//!   it ([`Control::apply`]); SIGHUP, the file watcher and the admin API all go through it.
//! - `mux`, `agent`: the XDP roles `[mux]` and `[agent]` (tenbin-xdp's handles, started and
//!   followed like `tenbin mux run` and `tenbin agent` do) and their state.
//! - `overlay`: operator actions as overrides on top of the file, so they take the same
//!   diff-and-apply path as a reload and survive the next health snapshot.
//! - `state`: the admin API's view of the tiers.
//! - `stats`: [`NodeStats`], every tier's counters for `/metrics`.
//! - `sync`: `[sync]`, the persistence tables replicated to and from the peers.
//! - `vrrp`: the `[vrrp]` role (virtual routers, VIP guard, tracked tier health).
//! - `watch`: the config and certificate file watcher (`notify`).
//!
//! The tiers publish their health to one `tenbin_health::bus::HealthBus` (typed keys, and
//! each tier's readiness as `NodeHealth`, which [`Control::health`] hands out).
//!
//! Every long-lived task runs on one `TaskTracker`; one `CancellationToken` (`shutdown`)
//! stops them. SIGTERM or SIGINT cancels it: listeners close, HTTP connections finish the
//! request in flight and close, TCP sessions run on; the host agent and then the Mux stop
//! (`Control::stop`); after the grace period (`--grace`,
//! default 10 s) a second token (`abort`) cuts whatever is left, and the process exits 0.
//! Ten seconds because process managers usually wait that long (systemd 90 s, Kubernetes
//! 30 s) between SIGTERM and SIGKILL: it finishes ordinary requests and fits inside them.

mod agent;
mod anycast;
pub(crate) mod bgp;
mod control;
mod mux;
mod overlay;
mod state;
mod stats;
mod sync;
pub mod vrrp;
mod watch;

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tenbin_config::api::Command;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use control::{AdminServe, Control, NodeContext};
pub use stats::NodeStats;
#[cfg(test)]
pub use stats::ProcessStats;

/// What `tenbin run` may set beyond the file.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// How long in-flight requests may take to finish at shutdown, and a removed
    /// frontend's connections after a reload.
    pub grace: Duration,
    /// Watch the config and certificate files (SIGHUP works either way).
    pub watch: bool,
    /// The admin API served on `[admin].listen`.
    pub admin: AdminServe,
    /// The proxy tier's worker threads, thread per core (count 0: it runs on the node's
    /// runtime).
    pub threads: tenbin_proxy::tier::Threads,
}

/// Runs the node `path` describes until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(path: &Path, options: RunOptions) -> anyhow::Result<()> {
    let config = crate::check::load(path)?;
    let ctx = NodeContext {
        shutdown: CancellationToken::new(),
        abort: CancellationToken::new(),
        tracker: TaskTracker::new(),
        grace: options.grace,
        admin: options.admin,
        threads: options.threads,
    };
    let control = Control::start(path, config, ctx.clone()).await?;
    if options.watch {
        watch::start(control.clone(), ctx.shutdown.clone(), &ctx.tracker)
            .await
            .context("cannot watch the config file")?;
    }
    tracing::info!(config = %path.display(), "node running");
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    loop {
        tokio::select! {
            r = stop_signal() => { r?; break; }
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = control.apply(Command::Reload).await;
            }
        }
    }
    // The VIPs go first, so the backup serves new requests at once while this node's
    // listeners still finish what arrived before; BGP withdraws and lingers (while still
    // serving) at the same time, so routers move traffic before sockets close.
    tokio::join!(control.stop_vrrp(), control.stop_bgp());
    tracing::info!(grace = ?ctx.grace, "shutting down: listeners closed, draining");
    ctx.shutdown.cancel();
    control.stop().await;
    drop(control);
    ctx.tracker.close();
    if tokio::time::timeout(ctx.grace, ctx.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = ctx.tracker.len(),
            "grace period over, closing what is left"
        );
        ctx.abort.cancel();
        // Aborted tasks end at their next poll; do not hang on one that will not.
        let _ = tokio::time::timeout(Duration::from_secs(1), ctx.tracker.wait()).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, the signal process managers stop services with.
async fn stop_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
