//! `[sync]`: session sync between proxy nodes (tenbin-ha's `sync`): where this node listens
//! for its peers' pushes, which peers it pushes its persistence tables to, and the shared
//! key every frame is authenticated with.
//!
//! ```toml
//! [sync]
//! listen = "10.0.0.1:7400"
//! peers = ["10.0.0.2:7400"]
//! key_file = "/etc/tenbin/sync.key"   # or key = "..." (at least 16 bytes)
//! queue = 65536                       # changes waiting for a slow peer before a full resync
//! ```
//!
//! The key is written inline or read from a file (first line, trimmed) like `[admin]`'s
//! token; this crate does no I/O: [`Config::load_sync_key`] is handed the reader.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::{Config, ConfigError};

/// Shortest shared secret for session sync.
pub const MIN_SYNC_KEY: usize = 16;

/// `[sync]`. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    /// Where peers connect to push their tables (none: this node only pushes).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The peers this node pushes its tables to.
    #[serde(default)]
    pub peers: Vec<Spanned<SocketAddr>>,
    #[serde(default)]
    pub key: Option<SyncKey>,
    #[serde(default)]
    pub key_file: Option<Spanned<PathBuf>>,
    /// This node's name in the peers' logs and state (default `tenbin`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Changes queued for one peer beyond this are dropped for a full resync.
    #[serde(default = "default_queue")]
    pub queue: Spanned<usize>,
    /// Idle time after which a keepalive is sent.
    #[serde(default = "default_keepalive", with = "humantime_serde")]
    pub keepalive: Duration,
    /// Silence after which a peer is given up (and redialled).
    #[serde(default = "default_dead_after", with = "humantime_serde")]
    pub dead_after: Duration,
    /// Pause before redialling a peer.
    #[serde(default = "default_reconnect", with = "humantime_serde")]
    pub reconnect: Duration,
}

/// The shared secret. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SyncKey(Spanned<String>);

impl SyncKey {
    pub fn new(value: impl Into<String>) -> SyncKey {
        SyncKey(Spanned::new(0..0, value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.get_ref()
    }

    pub(crate) fn spanned(&self) -> &Spanned<String> {
        &self.0
    }
}

impl fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncKey(<redacted>)")
    }
}

fn default_name() -> String {
    "tenbin".into()
}

fn default_queue() -> Spanned<usize> {
    Spanned::new(0..0, 65_536)
}

fn default_keepalive() -> Duration {
    Duration::from_secs(1)
}

fn default_dead_after() -> Duration {
    Duration::from_secs(3)
}

fn default_reconnect() -> Duration {
    Duration::from_secs(1)
}

impl Config {
    /// Reads `[sync].key_file` with `read` into `[sync].key`. The error names the file's
    /// position of `key_file`.
    pub fn load_sync_key(
        &mut self,
        text: &str,
        file: &str,
        read: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Result<(), ConfigError> {
        let Some(sync) = self.sync.as_mut() else {
            return Ok(());
        };
        let Some(path) = &sync.key_file else {
            return Ok(());
        };
        let key = crate::admin::read_secret(text, file, path, "sync.key_file", MIN_SYNC_KEY, read)?;
        sync.key = Some(SyncKey::new(key));
        Ok(())
    }
}
