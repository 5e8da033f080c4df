//! `tenbin run -c FILE`: start every tier the config describes and run until interrupted.

use std::path::Path;

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = crate::check::load(path)?;
    tracing::info!(
        frontends = config.frontend.len(),
        pools = config.pool.len(),
        "config loaded"
    );
    anyhow::bail!("no tier is wired into `tenbin run` yet")
}
