//! The tier's session tables as session sync sees them: every pool's persistence table as
//! `pool/NAME` and every UDP frontend's session table as `udp/NAME`, with servers by
//! their configured names (internal ids differ between nodes), ages instead of times (so
//! peers' clocks need not agree), and one change feed installed on every table, including
//! tables created by a later apply.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tenbin_core::persist::{Entry, PersistKey};
use tenbin_core::BackendId;
use tokio::sync::mpsc;

use super::build::PoolSlot;
use crate::persist::{Feed, Learned, Persistence};
use crate::pool::Pool;

/// One persisted session as it travels between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncEntry {
    pub key: u64,
    /// The server's configured name.
    pub server: String,
    /// How long ago the session was last seen.
    pub age: Duration,
}

/// A cheap handle on the tier's persistence tables (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct SyncTables {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tables: ArcSwap<BTreeMap<String, Table>>,
    feed: Mutex<Option<Feed>>,
}

#[derive(Debug)]
struct Table {
    persistence: Arc<Persistence>,
    names: HashMap<BackendId, String>,
    ids: HashMap<String, BackendId>,
}

impl SyncTables {
    /// Installs a change feed of `bound` changes on every table, now and after each apply.
    pub fn subscribe(&self, bound: usize) -> (Feed, mpsc::Receiver<Learned>) {
        let (feed, rx) = Feed::channel(bound);
        *self.inner.feed.lock().unwrap_or_else(|e| e.into_inner()) = Some(feed.clone());
        for (name, t) in self.inner.tables.load().iter() {
            t.persistence.set_feed(name, feed.clone());
        }
        (feed, rx)
    }

    /// Every table's name (`pool/NAME`, `udp/NAME`).
    pub fn names(&self) -> Vec<String> {
        self.inner.tables.load().keys().cloned().collect()
    }

    /// The configured name of server `id` in `table`.
    pub fn server_name(&self, table: &str, id: BackendId) -> Option<String> {
        self.inner.tables.load().get(table)?.names.get(&id).cloned()
    }

    /// Every table's live entries.
    pub fn snapshot(&self) -> Vec<(String, Vec<SyncEntry>)> {
        let tables = self.inner.tables.load();
        tables
            .iter()
            .map(|(name, t)| {
                let now = t.persistence.current();
                let idle = t.persistence.config().idle_timeout;
                let copy = t.persistence.snapshot();
                let entries = copy
                    .iter()
                    .filter_map(|(k, e)| {
                        let age = now.saturating_sub(e.last_seen);
                        let server = t.names.get(&e.backend)?;
                        (age < idle).then(|| SyncEntry {
                            key: k.0,
                            server: server.clone(),
                            age,
                        })
                    })
                    .collect();
                (name.clone(), entries)
            })
            .collect()
    }

    /// Folds a peer's entries into `table`. Entries naming a server this node does not have
    /// are skipped. Returns how many were taken (0 for an unknown table).
    pub fn merge(&self, table: &str, entries: Vec<SyncEntry>) -> usize {
        let tables = self.inner.tables.load();
        let Some(t) = tables.get(table) else {
            return 0;
        };
        let now = t.persistence.current();
        let local: Vec<(PersistKey, Entry)> = entries
            .into_iter()
            .filter_map(|e| {
                let backend = *t.ids.get(&e.server)?;
                let last_seen = now.checked_sub(e.age)?;
                Some((PersistKey(e.key), Entry { backend, last_seen }))
            })
            .collect();
        t.persistence.merge(local, now)
    }

    /// The tier after an apply: its pools' tables and `udp` (frontend, pool, table), with
    /// server names as they are now.
    pub(super) fn refresh(
        &self,
        pools: &BTreeMap<String, PoolSlot>,
        udp: Vec<(String, Pool, Arc<Persistence>)>,
    ) {
        let feed = self
            .inner
            .feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let pooled = pools.iter().filter_map(|(name, slot)| {
            let p = slot.persistence.clone()?;
            Some((format!("pool/{name}"), slot.pool.clone(), p))
        });
        let udp = udp
            .into_iter()
            .map(|(name, pool, p)| (format!("udp/{name}"), pool, p));
        let tables = pooled
            .chain(udp)
            .map(|(name, pool, persistence)| {
                if let Some(f) = &feed {
                    persistence.set_feed(&name, f.clone());
                }
                let servers = pool.servers();
                let names = servers.iter().map(|(s, _, _)| (s.id, s.name.clone()));
                let ids = servers.iter().map(|(s, _, _)| (s.name.clone(), s.id));
                let table = Table {
                    persistence,
                    names: names.collect(),
                    ids: ids.collect(),
                };
                (name, table)
            })
            .collect();
        self.inner.tables.store(Arc::new(tables));
    }
}
