//! `tenbin agent` (stub until its tier lands).

/// Arguments of `tenbin agent`.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {}

pub fn run(_args: AgentArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tenbin agent` is not built yet")
}
