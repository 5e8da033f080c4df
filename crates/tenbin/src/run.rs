//! `tenbin run -c FILE`: start every tier the config describes and run until interrupted.
//!
//! Today that is the proxy tier (L4 tcp/udp and L7 http frontends over shared, health-checked
//! pools) and the GSLB DNS tier. The XDP Mux and host agent run as `tenbin mux` / `tenbin
//! agent`.

use std::io;
use std::path::Path;

use anyhow::Context as _;
use tenbin_config::{Config, Mode};
use tenbin_proxy::http::{self, HttpFrontend};
use tenbin_proxy::l4;
use tenbin_proxy::pool::Pool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::wiring::{DnsTier, ProxyHealth};

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = crate::check::load(path)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let pools = l4::pools(&config);
        let _health = ProxyHealth::start(&config, &pools)?;
        let mut tasks = Vec::new();
        for l in l4::serve(
            &config,
            &pools,
            l4::ServeOptions::default(),
            stop_rx.clone(),
        )
        .await?
        {
            tracing::info!(frontend = %l.frontend, addr = %l.addr, "listening (l4)");
            tasks.push(l.task);
        }
        let all_pools: Vec<Pool> = pools.values().cloned().collect();
        tasks.extend(serve_http(&config, &all_pools, &stop_rx).await?);
        let dns = match &config.dns {
            Some(section) => Some(DnsTier::start(section, stop_rx.clone())?),
            None => None,
        };
        if tasks.is_empty() && dns.is_none() {
            anyhow::bail!("{}: no frontend to run", path.display());
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        if let Some(d) = dns {
            let _ = d.task.await;
        }
        Ok(())
    })
}

/// Binds and starts every `mode = "http"` frontend.
async fn serve_http(
    config: &Config,
    pools: &[Pool],
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<io::Result<()>>>> {
    let mut tasks = Vec::new();
    for fe in config.frontend.iter().filter(|f| f.mode == Mode::Http) {
        for addr in fe.bind.iter().map(|a| *a.get_ref()) {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("frontend {}: cannot bind {addr}", fe.name.get_ref()))?;
            let frontend = HttpFrontend::from_config(fe, pools.to_vec())?;
            tracing::info!(frontend = %fe.name.get_ref(), %addr, "listening (http)");
            tasks.push(tokio::spawn(http::serve(
                listener,
                frontend,
                stopped(stop.clone()),
            )));
        }
    }
    Ok(tasks)
}

/// Resolves when the shutdown flag turns true (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
