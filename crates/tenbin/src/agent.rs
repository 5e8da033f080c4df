//! `tenbin agent`: the host agent on a backend. Starts [`tenbin_xdp::agent`]'s role from the
//! config's `[agent]` (VIPs on `lo`, DSR sysctls, the decapsulating XDP program, the checks and
//! reports), forwards SIGHUP and edits of the file to it ([`crate::role`]) and undoes the host
//! setup on Ctrl-C, SIGTERM or `--seconds`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tenbin_xdp::TierContext;

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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let agent = tenbin_xdp::agent::start(section.clone(), TierContext::default())?;
        let served = crate::role::serve(
            &agent,
            &args.config,
            section,
            read,
            args.seconds.map(Duration::from_secs),
        )
        .await;
        agent.shutdown().await;
        served
    })
}

fn read(path: &Path) -> anyhow::Result<tenbin_config::mux::AgentSection> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config = tenbin_config::Config::parse(&text, &path.display().to_string())?;
    config.agent.context("the config has no [agent] section")
}
