//! `tenbin mux`: the XDP VIP Mux. `run` starts [`tenbin_xdp::mux`]'s role from the config's
//! `[mux]`, forwards SIGHUP and edits of the file to it ([`crate::role`]), serves its counters
//! with `--metrics` and stops it on SIGTERM; with `[bgp]` it announces the VIPs the Mux's
//! readiness calls announceable ([`crate::node::bgp`], the role `tenbin run` runs too) and
//! withdraws them before it detaches; `explain` shows where a 5-tuple goes and why.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

fn read(path: &Path) -> anyhow::Result<tenbin_config::Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(tenbin_config::Config::parse(
        &text,
        &path.display().to_string(),
    )?)
}

/// Reads `[mux]` from the config file and validates it.
fn section(path: &Path) -> anyhow::Result<MuxSection> {
    let mux = read(path)?.mux.context("the config has no [mux] section")?;
    mux.validate()?;
    Ok(mux)
}

/// Attaches the Mux, serves until stopped (SIGHUP and file edits apply), detaches.
fn serve(path: &Path, limit: Option<Duration>, metrics: Option<SocketAddr>) -> anyhow::Result<()> {
    let m = section(path)?;
    // Read once at start, like `tenbin run` does.
    let bgp_section = read(path)?.bgp;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mux = Arc::new(tenbin_xdp::mux::start(m.clone(), TierContext::default())?);
        let bgp = match &bgp_section {
            Some(s) => {
                let mut role = crate::node::bgp::start(s).await?;
                role.follow_mux(Some(mux.readiness()));
                Some(Arc::new(role))
            }
            None => None,
        };
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
        if let Some(t) = exported {
            t.abort();
            let _ = t.await;
        }
        // Withdraw, let the routers move the flows, close: all while the data plane still
        // forwards, so a graceful stop loses nothing.
        if let Some(b) = bgp.and_then(|b| Arc::try_unwrap(b).ok()) {
            b.stop().await;
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

/// A minimal HTTP endpoint answering every request with the counters, read when asked.
async fn metrics_endpoint(
    listener: tokio::net::TcpListener,
    mux: Arc<MuxHandle>,
    bgp: Option<Arc<crate::node::bgp::BgpRole>>,
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
            match crate::admin::metrics::render_bgp(&b.state()) {
                Ok(text) => body.push_str(&text),
                Err(e) => tracing::warn!("rendering BGP metrics: {e}"),
            }
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
