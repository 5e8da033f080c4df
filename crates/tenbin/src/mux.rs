//! `tenbin mux` (stub until its tier lands).

/// Arguments of `tenbin mux`.
#[derive(clap::Args, Debug)]
pub struct MuxArgs {}

pub fn run(_args: MuxArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tenbin mux` is not built yet")
}
