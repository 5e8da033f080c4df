//! `tenbin demo` (stub until its tier lands).

/// Arguments of `tenbin demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tenbin demo` is not built yet")
}
