//! `tenbin agent`: the host agent on a backend. Puts the `[agent]` VIPs on `lo`, sets the ARP
//! sysctls of DSR, attaches the decapsulating XDP program (this kernel has no tunnel modules
//! and the agent must not depend on them) and undoes the VIPs and the attachment on exit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    config.agent.context("the config has no [agent] section")
}

fn attach_and_wait(
    section: &tenbin_config::mux::AgentSection,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let mut decap = Program::decap().context("loading the decapsulation program")?;
    decap.set_locals(&section.tunnel_addresses)?;
    if decap.attach(&section.interface)? == Attached::Generic {
        tracing::warn!(interface = %section.interface, "decapsulation runs in generic (skb) XDP mode");
    }
    tracing::info!(interface = %section.interface, vips = ?section.vips, "agent up: decapsulating IPIP/GRE, VIPs on lo");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    });
    let started = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed)
        && limit.is_none_or(|l| started.elapsed() < l)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
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
