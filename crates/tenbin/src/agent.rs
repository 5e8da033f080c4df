//! `tenbin agent`: the host agent on a backend. Puts the `[agent]` VIPs on `lo`, sets the ARP
//! sysctls of DSR, attaches the decapsulating XDP program (this kernel has no tunnel modules
//! and the agent must not depend on them) and undoes the VIPs and the attachment on exit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tenbin_xdp::loader::{is_root, Attached, Program};

/// Arguments of `tenbin agent`.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    #[arg(short, long)]
    config: PathBuf,
    /// Stop after this many seconds instead of waiting for Ctrl-C / SIGTERM.
    #[arg(long)]
    seconds: Option<u64>,
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let section = read(&args.config)?;
    anyhow::ensure!(
        is_root(),
        "`tenbin agent` needs root (XDP attach, addresses, sysctls)"
    );
    tenbin_xdp::agent::configure(&section.interface, &section.vips)?;
    let result = attach_and_wait(&section, args.seconds.map(Duration::from_secs));
    tenbin_xdp::agent::unconfigure(&section.vips);
    result
}

fn read(path: &Path) -> anyhow::Result<tenbin_config::mux::AgentSection> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config = tenbin_config::Config::parse(&text, &path.display().to_string())?;
    let agent = config.agent.context("the config has no [agent] section")?;
    agent.validate()?;
    Ok(agent)
}

/// Checks the local services with tenbin-health's TCP prober (rise/fall 2) and sends signed
/// reports to the Muxes every interval, until `stop`.
async fn report_loop(
    section: tenbin_config::mux::AgentSection,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    use tenbin_core::health::{HealthState, Hysteresis};
    use tenbin_health::spec::CheckKind;
    use tenbin_xdp::report::{Report, ServiceHealth};

    let (Some(backend), Some(secret)) = (section.backend_address, section.report_key.as_deref())
    else {
        return Ok(());
    };
    if section.report_to.is_empty() {
        return Ok(());
    }
    let key = tenbin_xdp::report::key(secret.as_bytes()).context("report_key too short")?;
    let any: std::net::IpAddr = if section.report_to[0].is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = tokio::net::UdpSocket::bind((any, 0)).await?;
    let mut states: Vec<Hysteresis> = section
        .check
        .iter()
        .map(|_| Hysteresis::new(2, 2))
        .collect();
    // Wall-clock microseconds: strictly increasing across agent restarts too.
    let mut seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(1);
    let mut tick = tokio::time::interval(section.report_interval);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        let mut services = Vec::new();
        for (c, h) in section.check.iter().zip(&mut states) {
            let addr = std::net::SocketAddr::new(c.vip, c.port);
            let passed =
                tenbin_health::probe::run(&CheckKind::Tcp, addr, Duration::from_millis(500))
                    .await
                    .is_ok();
            if let Some(state) = h.observe(passed) {
                tracing::info!(%addr, ?state, "local service changed");
            }
            services.push(ServiceHealth {
                vip: c.vip,
                port: c.port,
                proto: c.protocol.number(),
                healthy: h.state() == HealthState::Up,
            });
        }
        seq += 1;
        let datagram = Report {
            seq,
            backend,
            services,
        }
        .encode(&key)?;
        for to in &section.report_to {
            if let Err(e) = socket.send_to(&datagram, to).await {
                tracing::warn!(%to, "sending report: {e}");
            }
        }
    }
    Ok(())
}

fn attach_and_wait(
    section: &tenbin_config::mux::AgentSection,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let mut decap =
        Program::decap().with_context(|| crate::mux::load_failed("the decapsulation program"))?;
    decap.set_locals(&section.tunnel_addresses)?;
    if decap.attach(&section.interface)? == Attached::Generic {
        tracing::warn!(interface = %section.interface, "decapsulation runs in generic (skb) XDP mode");
    }
    tracing::info!(interface = %section.interface, vips = ?section.vips, "agent up: decapsulating IPIP/GRE, VIPs on lo");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reporter = tokio::spawn(report_loop(section.clone(), stop.clone()));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let until = async {
            match limit {
                Some(l) => tokio::time::sleep(l).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = until => {}
            r = reporter => {
                if let Ok(Err(e)) = r {
                    tracing::error!("agent reports stopped: {e:#}");
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        anyhow::Ok(())
    })?;
    let s = decap.decap_stats()?;
    tracing::info!(
        decapsulated = s[0],
        passed = s[1],
        dropped = s[2],
        not_local = s[3],
        "agent stopping"
    );
    Ok(())
}
