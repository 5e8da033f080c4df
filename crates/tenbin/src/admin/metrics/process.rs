//! The process's families: build, start time, reloads, the config it runs.

use prometheus_client::encoding::DescriptorEncoder;

use super::{counter, gauge, label, Labels};
use crate::node::NodeStats;

pub(super) fn encode(
    s: &NodeStats,
    enc: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let p = &s.process;
    gauge(
        enc,
        "tenbin_build_info",
        "The running tenbin's version (always 1).",
        [(label("version", env!("CARGO_PKG_VERSION")), 1u64)],
    )?;
    gauge(
        enc,
        "tenbin_start_time_seconds",
        "When the node started, in seconds since the Unix epoch.",
        [(Labels::new(), p.started)],
    )?;
    counter(
        enc,
        "tenbin_config_reloads",
        "Reloads of the config file (SIGHUP, file watcher, admin API) by result.",
        [
            (label("result", "ok"), p.reloads_ok),
            (label("result", "failed"), p.reloads_failed),
        ],
    )?;
    gauge(
        enc,
        "tenbin_config_info",
        "The hash of the config file last loaded (always 1; equal hashes, equal files).",
        [(label("hash", format!("{:016x}", p.config_hash)), 1u64)],
    )?;
    gauge(
        enc,
        "tenbin_config_generation",
        "Changes applied since start (reloads and operator actions), starting at 1.",
        [(Labels::new(), p.generation)],
    )
}
