//! `tenbin mux`: the XDP VIP Mux. `run` starts [`tenbin_xdp::mux`]'s role from the config's
//! `[mux]`, forwards SIGHUP and edits of the file to it ([`crate::role`]), serves its counters
//! with `--metrics` and stops it on SIGTERM; with `[bgp]` it announces the VIPs the Mux's
//! readiness calls announceable ([`crate::bgp`]) and withdraws them before it detaches; `explain` shows where a 5-tuple goes and why.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use tenbin_config::mux::MuxSection;
use tenbin_core::flow::FlowKey;
use tenbin_xdp::control::{Controller, MaglevRings};
use tenbin_xdp::loader::{is_root, Program};
use tenbin_xdp::mux::{spec, MuxHandle};
use tenbin_xdp::writer::MemWriter;
use tenbin_xdp::TierContext;

/// Arguments of `tenbin mux`.
#[derive(clap::Args, Debug)]
pub struct MuxArgs {
    #[command(subcommand)]
    command: MuxCommand,
}

#[derive(Subcommand, Debug)]
enum MuxCommand {
    /// Attach the Mux and serve the config's VIPs until interrupted.
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// Stop after this many seconds instead of waiting for Ctrl-C / SIGTERM.
        #[arg(long)]
        seconds: Option<u64>,
        /// Serve the counters as Prometheus text on http://ADDR/metrics.
        #[arg(long)]
        metrics: Option<SocketAddr>,
    },
    /// Run a flow's first packet through the real program (BPF_PROG_TEST_RUN) and say which
    /// backend it chose and why. Example: `explain -c tenbin.toml tcp 198.51.100.7:40000 10.0.0.1:80`
    Explain {
        #[arg(short, long)]
        config: PathBuf,
        /// tcp or udp
        protocol: String,
        /// client address:port
        source: SocketAddr,
        /// VIP address:port
        destination: SocketAddr,
    },
}

pub fn run(args: MuxArgs) -> anyhow::Result<()> {
    match args.command {
        MuxCommand::Run {
            config,
            seconds,
            metrics,
        } => serve(&config, seconds.map(Duration::from_secs), metrics),
        MuxCommand::Explain {
            config,
            protocol,
            source,
            destination,
        } => explain(&config, &protocol, source, destination),
    }
}

/// Reads `[mux]` from the config file and validates it.
fn section(path: &Path) -> anyhow::Result<MuxSection> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config = tenbin_config::Config::parse(&text, &path.display().to_string())?;
    let mux = config.mux.context("the config has no [mux] section")?;
    mux.validate()?;
    Ok(mux)
}

/// Attaches the Mux, serves until stopped (SIGHUP and file edits apply), detaches.
fn serve(path: &Path, limit: Option<Duration>, metrics: Option<SocketAddr>) -> anyhow::Result<()> {
    let m = section(path)?;
    // The speaker runs its own runtime; start it outside this one.
    let bgp = crate::bgp::start(path)?.map(|a| Arc::new(Mutex::new(a)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mux = Arc::new(tenbin_xdp::mux::start(m.clone(), TierContext::default())?);
        let announcing = bgp.clone().map(|b| tokio::spawn(announce(mux.readiness(), b)));
        let exported = match metrics {
            Some(addr) => Some(tokio::spawn(metrics_endpoint(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr}"))?,
                mux.clone(),
                bgp.clone(),
            ))),
            None => None,
        };
        let served = crate::role::serve(&*mux, path, m, section, limit).await;
        for t in [exported, announcing].into_iter().flatten() {
            t.abort();
            let _ = t.await;
        }
        // Withdraw, let the routers move the flows, close: all while the data plane still
        // forwards, so a graceful stop loses nothing. The speaker blocks on its own runtime,
        // so it stops on a thread of its own.
        if let Some(b) = bgp.and_then(|b| Arc::try_unwrap(b).ok()) {
            let b = b.into_inner().unwrap_or_else(|e| e.into_inner());
            let _ = std::thread::spawn(move || b.stop()).join();
        }
        match mux.stats() {
            Ok(s) => tracing::info!(counters = ?s.counters.verdicts, loop_counts = ?s.loop_counts, "mux stopping"),
            Err(e) => tracing::warn!("reading counters: {e}"),
        }
        if let Ok(mux) = Arc::try_unwrap(mux) {
            mux.shutdown().await;
        }
        tracing::info!("detached");
        served
    })
}

/// Follows the Mux's readiness: every change re-announces what is announceable.
async fn announce(
    mut ready: tokio::sync::watch::Receiver<tenbin_xdp::mux::MuxReadiness>,
    bgp: Arc<Mutex<crate::bgp::Announcer>>,
) {
    loop {
        let healthy = ready.borrow_and_update().announceable();
        bgp.lock()
            .unwrap_or_else(|e| e.into_inner())
            .follow(healthy);
        if ready.changed().await.is_err() {
            return;
        }
    }
}

/// A minimal HTTP endpoint answering every request with the counters, read when asked.
async fn metrics_endpoint(
    listener: tokio::net::TcpListener,
    mux: Arc<MuxHandle>,
    bgp: Option<Arc<Mutex<crate::bgp::Announcer>>>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving counters at /metrics");
    }
    while let Ok((mut conn, _)) = listener.accept().await {
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await;
        let mut body = match mux.stats() {
            Ok(s) => s.counters.render(),
            Err(e) => {
                tracing::warn!("collecting metrics: {e}");
                String::new()
            }
        };
        if let Some(b) = &bgp {
            b.lock()
                .unwrap_or_else(|e| e.into_inner())
                .metrics(&mut body);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(head.as_bytes()).await;
        let _ = conn.write_all(body.as_bytes()).await;
    }
}

fn explain(path: &Path, protocol: &str, src: SocketAddr, dst: SocketAddr) -> anyhow::Result<()> {
    let m = section(path)?;
    let proto = match protocol {
        "tcp" => 6,
        "udp" => 17,
        other => anyhow::bail!("protocol must be tcp or udp, not {other}"),
    };
    let key = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => FlowKey::v4(s, src.port(), d, dst.port(), proto),
        (IpAddr::V6(s), IpAddr::V6(d)) => FlowKey::v6(s, src.port(), d, dst.port(), proto),
        _ => anyhow::bail!("source and destination must be of the same address family"),
    };
    let spec = spec(&m)?;
    let mut model = Controller::new(MemWriter::new(), MaglevRings);
    model.apply(&spec)?;
    let program = if is_root() {
        // A private copy of the program, never attached: explaining does not touch a live Mux.
        let mut c = Controller::new(Program::mux(1024)?, MaglevRings);
        c.apply(&spec)?;
        Some(c)
    } else {
        None
    };
    let e =
        tenbin_xdp::explain::explain(model.writer(), program.as_ref().map(|c| c.writer()), &key)?;
    print!("{e}");
    anyhow::ensure!(
        e.agrees() != Some(false),
        "the program and the model disagree"
    );
    Ok(())
}
