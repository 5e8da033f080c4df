//! Session persistence: keeping a user on one server (the seeds' "shopping cart problem").
//!
//! A [`Persistence`] is built per pool from a [`PersistConfig`]. On the L7 path it is two calls
//! around the pool:
//!
//! ```text
//! let d = persist.route(&mut req, client_ip, &servers, now);   // may strip/rewrite cookies
//! let lease = hold(&pool, d.target(&servers), key, &tried).await?;  // NoServer → 503
//! persist.on_response(&d, resp.headers_mut(), resp.status(), server_id, &servers, now);
//! ```
//!
//! L4 (source address) and TLS passthrough (session id) use [`Persistence::lookup`] and
//! [`Persistence::learn`] with a [`PersistKey`] directly.
//!
//! Rules every mode shares: a session pinned to a server that still accepts persisted sessions
//! (active or draining) goes there; a draining server never gets new sessions (the pool and
//! [`ServerSet::place`] only choose active ones); a pinned server that is down is replaced by a
//! fresh choice when `redispatch` is on (then re-stuck by the response) and fails otherwise.
//!
//! `now` is wall-clock time since the Unix epoch ([`Persistence::now`]): cookie dates carry it
//! to the client and back, and the table's idle expiry runs on the same clock.

mod config;
mod cookie;
mod feed;
mod l4;
mod lease;
mod modes;
mod servers;
mod sticky;
mod url;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;

use tenbin_core::persist::{PersistKey, PersistTable};
use tenbin_core::BackendId;

pub use config::{for_pools, from_config};
pub use cookie::SetCookieAttrs;
pub use feed::{Feed, Learned};
pub use l4::L4Sticky;
pub use lease::hold;
pub use servers::{Member, ServerSet};
pub use sticky::{acquire, Sticky};

/// Which property of a request pins it to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistMode {
    /// Source address masked to a prefix.
    Source,
    /// tenbin sets a cookie naming the server.
    CookieInsert,
    /// The server sets the cookie with a placeholder; tenbin writes the server id into it.
    CookieRewrite,
    /// The server's own cookie identifies the session; tenbin learns value → server.
    CookiePassive,
    /// tenbin prefixes the application's session cookie with `server~` and strips it again.
    CookiePrefix,
    /// An application cookie hashed consistently to a server (learn table in front).
    CookieHash,
    /// A query or `;name=` path parameter carrying a server id or a session id.
    UrlParam,
    /// A named request header (terminal or subscriber id).
    Header,
    /// The TLS session id, in passthrough only.
    TlsSession,
}

/// Cookie-insert options (HAProxy's `cookie ... insert` keywords).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertOptions {
    /// Strip our cookie before forwarding; do not re-send it while it is valid and unchanged.
    pub indirect: bool,
    /// Insert only on non-cacheable responses or `content_types`, adding `Cache-Control: private`.
    pub nocache: bool,
    pub content_types: Vec<String>,
    pub attrs: SetCookieAttrs,
    /// A cookie not seen for this long is void; dates travel in the value (`srv|last|first`).
    pub maxidle: Option<Duration>,
    /// A cookie first set this long ago is void, however active the session.
    pub maxlife: Option<Duration>,
}

impl Default for InsertOptions {
    fn default() -> Self {
        InsertOptions {
            indirect: false,
            nocache: false,
            content_types: vec!["text/html".into()],
            attrs: SetCookieAttrs::default(),
            maxidle: None,
            maxlife: None,
        }
    }
}

/// A pool's persistence settings (the binary converts `[pool.persistence]` into this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistConfig {
    pub mode: PersistMode,
    /// Cookie name, URL parameter name or header name, by mode.
    pub name: String,
    pub insert: InsertOptions,
    pub append_to_redirects: bool,
    /// Header / URL session ids: learn value → server (true) or hash consistently (false).
    pub learn: bool,
    pub source_prefix_v4: u8,
    pub source_prefix_v6: u8,
    /// Source: consistent hashing only, no table.
    pub tableless: bool,
    pub table_size: usize,
    pub idle_timeout: Duration,
    pub redispatch: bool,
}

impl PersistConfig {
    pub fn new(mode: PersistMode, name: impl Into<String>) -> Self {
        PersistConfig {
            mode,
            name: name.into(),
            insert: InsertOptions::default(),
            append_to_redirects: false,
            learn: true,
            source_prefix_v4: 32,
            source_prefix_v6: 128,
            tableless: false,
            table_size: 100_000,
            idle_timeout: Duration::from_secs(30 * 60),
            redispatch: true,
        }
    }
}

/// What persistence concluded from a request; hand it back to [`Persistence::on_response`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The server the request is pinned to, if any.
    pub pinned: Option<BackendId>,
    /// The session key (table and hashing modes).
    pub key: Option<PersistKey>,
    /// Place an unpinned key by consistent hashing rather than by the pool's algorithm.
    pub hashed: bool,
    redispatch: bool,
    /// Cookie insert: the valid cookie the client sent (server, last seen, first seen).
    cookie: Option<(BackendId, u64, u64)>,
    /// URL parameter value that was a session id (to carry into redirects).
    session_param: Option<String>,
}

/// Where a request should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// This server (pinned, or placed by hashing).
    Server(BackendId),
    /// Whatever the pool's algorithm picks.
    Any,
    /// Pinned to a server that cannot take it and redispatch is off: answer 503.
    Unavailable,
}

impl Decision {
    /// A session whose server is gone goes elsewhere (passthrough has nobody to answer 503).
    pub fn redispatch_always(&mut self) {
        self.redispatch = true;
    }

    pub fn target(&self, servers: &ServerSet) -> Target {
        if let Some(id) = self.pinned {
            if servers.accepts_persisted(id) {
                return Target::Server(id);
            }
            if !self.redispatch {
                return Target::Unavailable;
            }
        }
        match self.key {
            Some(key) if self.hashed => servers.place(key.0).map_or(Target::Any, Target::Server),
            _ => Target::Any,
        }
    }
}

/// A source of wall-clock time (tests inject their own).
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// One pool's persistence: its configuration, its table and its clock.
pub struct Persistence {
    config: PersistConfig,
    table: Mutex<PersistTable>,
    clock: Clock,
    counts: Counts,
    /// Session sync's change feed with this table's name (see `feed`).
    feed: ArcSwapOption<(Arc<str>, Feed)>,
}

/// Lookups and evictions, counted beside the table (its lock already serialises them).
#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// A persistence table's size and counters, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistStats {
    pub entries: usize,
    pub capacity: usize,
    /// Lookups that found a pinned server, and those that did not.
    pub hits: u64,
    pub misses: u64,
    /// Entries pushed out by a full table (idle expiry is not counted).
    pub evictions: u64,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("config", &self.config)
            .field("table_len", &self.table_len())
            .finish_non_exhaustive()
    }
}

impl Persistence {
    pub fn new(config: PersistConfig) -> Self {
        Self::with_clock(config, Arc::new(Persistence::now))
    }

    /// Persistence reading time from `clock` (what [`Persistence::current`] returns).
    pub fn with_clock(config: PersistConfig, clock: Clock) -> Self {
        let table = PersistTable::new(config.table_size, config.idle_timeout);
        Persistence {
            config,
            table: Mutex::new(table),
            clock,
            counts: Counts::default(),
            feed: ArcSwapOption::empty(),
        }
    }

    /// The time of this persistence's clock (wall clock unless injected).
    pub fn current(&self) -> Duration {
        (self.clock)()
    }

    pub fn config(&self) -> &PersistConfig {
        &self.config
    }

    /// Wall-clock time since the Unix epoch: the clock cookie dates and the table use.
    pub fn now() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    /// The table key of a client address masked to the configured prefix.
    pub fn source_key(&self, ip: IpAddr) -> PersistKey {
        source_key(
            ip,
            self.config.source_prefix_v4,
            self.config.source_prefix_v6,
        )
    }

    /// The server `key` is pinned to, refreshing it.
    pub fn lookup(&self, key: PersistKey, now: Duration) -> Option<BackendId> {
        let found = self.table().lookup(&key, now);
        let c = if found.is_some() {
            &self.counts.hits
        } else {
            &self.counts.misses
        };
        c.fetch_add(1, Relaxed);
        found
    }

    /// Pins `key` to `server`.
    pub fn learn(&self, key: PersistKey, server: BackendId, now: Duration) {
        self.learn_and_report(key, server, now);
    }

    /// The table's size and counters now.
    pub fn stats(&self) -> PersistStats {
        let (entries, capacity) = {
            let t = self.table();
            (t.len(), t.capacity())
        };
        PersistStats {
            entries,
            capacity,
            hits: self.counts.hits.load(Relaxed),
            misses: self.counts.misses.load(Relaxed),
            evictions: self.counts.evictions.load(Relaxed),
        }
    }

    /// Drops idle entries; returns how many.
    pub fn expire(&self, now: Duration) -> usize {
        self.table().expire(now)
    }

    /// Entries in the table now.
    pub fn table_len(&self) -> usize {
        self.table().len()
    }

    /// A copy of the table (for replication to peers and the admin API).
    pub fn snapshot(&self) -> PersistTable {
        self.table().clone()
    }

    /// Forgets the sessions of a server removed from the pool.
    pub fn forget_server(&self, server: BackendId) -> usize {
        self.table().remove_backend(server)
    }

    fn table(&self) -> MutexGuard<'_, PersistTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The persistence key of `ip` masked to `/v4` or `/v6` (the prefix length is part of the key):
/// the same masked-address hash the hashing algorithms place clients by.
pub fn source_key(ip: IpAddr, v4: u8, v6: u8) -> PersistKey {
    PersistKey(tenbin_core::pick::source_key(ip, v4, v6))
}

#[cfg(test)]
mod tests;
