//! `tenbin run -c FILE`: start every tier the config describes and run until interrupted.
//!
//! Today that is the proxy tier's L4 frontends (tcp/udp) with their pools and health checks;
//! each later tier adds itself here.

use std::path::Path;

use anyhow::Context as _;
use tenbin_proxy::l4;
use tokio::sync::watch;

use crate::wiring::ProxyHealth;

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = crate::check::load(path)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let pools = l4::pools(&config);
        let _health = ProxyHealth::start(&config, &pools)?;
        let listeners = l4::serve(&config, &pools, l4::ServeOptions::default(), stop_rx).await?;
        for l in &listeners {
            tracing::info!(frontend = %l.frontend, addr = %l.addr, "listening");
        }
        if listeners.is_empty() {
            anyhow::bail!(
                "{}: nothing to run (no frontend this build can serve)",
                path.display()
            );
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        for l in listeners {
            let _ = l.task.await;
        }
        Ok(())
    })
}
