//! What `/metrics` reads from the node: every tier's `stats()` and the node's state as plain
//! data, gathered under the node's lock at one moment, plus the process's own counters.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tenbin_config::api::NodeState;
use tenbin_proxy::tier::ProxyStats;

use super::control::Node;

/// Everything the metrics endpoint renders.
#[derive(Clone, Debug)]
pub struct NodeStats {
    pub state: NodeState,
    pub proxy: ProxyStats,
    /// The DNS tier's counters, when `[dns]` runs.
    pub dns: Option<tenbin_dns::Stats>,
    /// The Mux data plane's counters, when `[mux]` runs.
    pub mux: Option<tenbin_xdp::metrics::MuxCounters>,
    pub process: ProcessStats,
}

/// The node process: when it started, its reloads, the config it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// Seconds since the Unix epoch.
    pub started: f64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// A hash of the config file's bytes as last loaded successfully: equal on nodes that
    /// run the same file.
    pub config_hash: u64,
    pub generation: u64,
}

/// The node's own counters, kept in [`Node`].
#[derive(Debug)]
pub(super) struct NodeCounters {
    started: f64,
    reloads_ok: u64,
    reloads_failed: u64,
    config_hash: u64,
}

impl NodeCounters {
    pub(super) fn new(path: &Path) -> Self {
        NodeCounters {
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            reloads_ok: 0,
            reloads_failed: 0,
            config_hash: file_hash(path),
        }
    }

    /// A reload from the file ended; after a good one the file is hashed again (as read
    /// now, a moment after the reload read it).
    pub(super) fn reloaded(&mut self, ok: bool, path: &Path) {
        if ok {
            self.reloads_ok += 1;
            self.config_hash = file_hash(path);
        } else {
            self.reloads_failed += 1;
        }
    }
}

fn file_hash(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |b| tenbin_core::persist::stable_hash(b'c', &b))
}

impl Node {
    pub(super) fn stats(&self) -> NodeStats {
        let c = &self.counters;
        NodeStats {
            state: self.state(),
            proxy: self.proxy.stats(),
            dns: self.dns.as_ref().map(|d| d.stats().counters),
            mux: self.mux.counters(),
            process: ProcessStats {
                started: c.started,
                reloads_ok: c.reloads_ok,
                reloads_failed: c.reloads_failed,
                config_hash: c.config_hash,
                generation: self.generation,
            },
        }
    }
}
