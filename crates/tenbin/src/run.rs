//! `tenbin run -c FILE`: start every tier the config describes and run until interrupted.
//!
//! Today that is the proxy tier (L4 tcp/udp and L7 http frontends over shared, health-checked
//! pools) and the GSLB DNS tier. The XDP Mux and host agent run as `tenbin mux` / `tenbin
//! agent`.

use std::io;
use std::path::Path;

use anyhow::Context as _;
use tenbin_config::diff::{Change, ConfigDiff};
use tenbin_config::{Config, Mode};
use tenbin_proxy::http::{self, HttpFrontend, HttpService};
use tenbin_proxy::l4;
use tenbin_proxy::pool::Pool;
use tenbin_proxy::tls::server::serve_https;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::wiring::{DnsTier, ProxyHealth};

/// `--threads`, else the `TENBIN_THREADS` environment variable, else none: one worker per
/// core (tokio's default). On the 2-core bench host (wrk, backends and proxy sharing the
/// cores) one multi-thread worker did not beat two (mode http 32k/42k req/s vs 46k/41k).
fn worker_threads(flag: Option<usize>) -> anyhow::Result<Option<usize>> {
    let n = match flag {
        Some(n) => n,
        None => match std::env::var("TENBIN_THREADS") {
            Ok(v) => v
                .trim()
                .parse()
                .with_context(|| format!("TENBIN_THREADS={v:?}: not a number"))?,
            Err(_) => return Ok(None),
        },
    };
    anyhow::ensure!(n >= 1, "worker threads must be at least 1");
    Ok(Some(n))
}

pub fn run(path: &Path, threads: Option<usize>) -> anyhow::Result<()> {
    let config = crate::check::load(path)?;
    // One thread: a current-thread runtime, which drives its I/O itself instead of handing
    // wakeups between a worker and the driver. Alone on loopback (wrk -c64, 3 nginx
    // backends) that served mode http at 60-62k req/s, p99 1.5-2.3 ms, where a multi-thread
    // runtime with one or two workers served 51k, p99 2.2-4.5 ms. Inside bench/proxy.sh,
    // sharing 2 cores with every peer, it was not steadier (20k and 47k), so it is not the
    // default.
    let mut builder = match worker_threads(threads)? {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
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
        let mut dns = match &config.dns {
            Some(section) => Some(DnsTier::start(section, stop_rx.clone())?),
            None => None,
        };
        if tasks.is_empty() && dns.is_none() {
            anyhow::bail!("{}: no frontend to run", path.display());
        }
        if let Some(admin) = &config.admin {
            let listener = TcpListener::bind(admin.listen)
                .await
                .with_context(|| format!("admin: cannot bind {}", admin.listen))?;
            let bound = listener.local_addr().unwrap_or(admin.listen);
            tracing::info!(addr = %bound, "listening (admin)");
            let state = crate::admin::AdminState {
                dns_loads: dns.as_ref().map(DnsTier::loads),
            };
            tasks.push(tokio::spawn(crate::admin::serve(
                listener,
                state,
                stop_rx.clone(),
            )));
        }
        let mut config = config;
        let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        loop {
            tokio::select! {
                r = stop_signal() => { r?; break; }
                _ = hangup.recv() => reload(path, &mut config, dns.as_mut()),
            }
        }
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

/// Binds and starts every `mode = "http"` frontend: plain HTTP, or HTTPS when it has a
/// `[frontend.tls]`; with the pools' persistence and re-encryption to servers.
async fn serve_http(
    config: &Config,
    pools: &[Pool],
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<io::Result<()>>>> {
    let persistence = tenbin_proxy::persist::from_config(config);
    let mut tasks = Vec::new();
    for fe in config.frontend.iter().filter(|f| f.mode == Mode::Http) {
        let name = fe.name.get_ref();
        let tls = fe
            .tls
            .as_ref()
            .map(tenbin_proxy::tls::l4::terminate_config)
            .transpose()
            .with_context(|| format!("frontend {name}: tls"))?;
        if let Some((_, certs)) = &tls {
            // A renewed certificate is served without dropping connections.
            certs.watch(tenbin_proxy::tls::l4::RELOAD_POLL);
        }
        for addr in fe.bind.iter().map(|a| *a.get_ref()) {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("frontend {name}: cannot bind {addr}"))?;
            let mut frontend = HttpFrontend::from_config(fe, pools.to_vec())?;
            frontend.persistence = tenbin_proxy::persist::for_pools(&persistence, &frontend.pools);
            frontend.upstream_tls = tenbin_proxy::tls::upstream::for_pools(config, &frontend.pools)
                .with_context(|| format!("frontend {name}: re-encryption to servers"))?;
            // The bound address (port 0 resolved): tests and operators read it from the log.
            let addr = listener.local_addr().unwrap_or(addr);
            let stop = stopped(stop.clone());
            let task = match &tls {
                Some((server_config, _certs)) => {
                    tracing::info!(frontend = %name, %addr, "listening (https)");
                    let service = HttpService::new(frontend);
                    let handshake = fe.timeouts.client_header;
                    let server_config = server_config.clone();
                    tokio::spawn(async move {
                        serve_https(listener, service, server_config, handshake, stop).await;
                        Ok(())
                    })
                }
                None => {
                    tracing::info!(frontend = %name, %addr, "listening (http)");
                    tokio::spawn(http::serve(listener, frontend, stop))
                }
            };
            tasks.push(task);
        }
    }
    Ok(tasks)
}

/// SIGHUP: read the file again and apply what can change live. Today that is the `[dns]`
/// section (zones, names, policy, VIP checks); other changes are logged and wait for a
/// restart. A file that does not validate changes nothing.
fn reload(path: &Path, current: &mut Config, dns: Option<&mut DnsTier>) {
    let new = match crate::check::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused, still running the previous config: {e:#}");
            return;
        }
    };
    let diff = ConfigDiff::between(current, &new);
    if diff.is_empty() {
        tracing::info!("reload: no change");
        return;
    }
    for change in &diff.changes {
        match (change, &new.dns, &dns) {
            (Change::SectionChanged("dns"), Some(_), Some(_)) => {}
            _ => tracing::warn!(?change, "reload: applied at the next restart"),
        }
    }
    if let (Some(tier), Some(section)) = (dns, &new.dns) {
        if diff.changes.contains(&Change::SectionChanged("dns")) {
            match tier.reload(section) {
                Ok(()) => {
                    tracing::info!("reload: dns applied");
                    // Only what was applied becomes current; the rest keeps being reported.
                    current.dns = new.dns;
                }
                Err(e) => tracing::error!("reload: {e:#}"),
            }
        }
    }
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

/// Resolves when the shutdown flag turns true (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn threads_flag_wins_and_zero_is_refused() {
        assert_eq!(worker_threads(Some(3)).unwrap(), Some(3));
        assert!(worker_threads(Some(0)).is_err());
    }
}
