//! Source-address persistence for `mode tcp` connections: the L4 path has no headers, so only
//! the client address can pin a session.
//!
//! ```text
//! let sticky = persistence.source_session(peer.ip());     // None unless mode = source
//! let pinned = sticky.as_ref().and_then(|s| s.target(&pool));
//! ... lease pinned with Pool::acquire_pinned, else the pool's pick ...
//! sticky.learn(lease.id());                               // table mode re-sticks
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use tenbin_core::persist::PersistKey;
use tenbin_core::BackendId;

use super::{PersistMode, Persistence, ServerSet};
use crate::pool::Pool;

/// Source persistence of one L4 connection.
#[derive(Debug)]
pub struct L4Sticky {
    persist: Arc<Persistence>,
    key: PersistKey,
}

impl Persistence {
    /// The session of a client address; `None` unless this is source persistence.
    pub fn source_session(self: &Arc<Self>, client: IpAddr) -> Option<L4Sticky> {
        (self.config.mode == PersistMode::Source).then(|| L4Sticky {
            persist: Arc::clone(self),
            key: self.source_key(client),
        })
    }
}

impl L4Sticky {
    /// The server this client is pinned to (table), or placed on (table-less hashing over
    /// the servers taking new sessions).
    pub fn target(&self, pool: &Pool) -> Option<BackendId> {
        let p = &self.persist;
        if p.config.tableless {
            ServerSet::from_pool(pool).place(self.key.0)
        } else {
            p.lookup(self.key, p.current())
        }
    }

    /// The connection went to `server`: (re-)stick the client there (table mode).
    pub fn learn(&self, server: BackendId) {
        let p = &self.persist;
        if !p.config.tableless {
            p.learn(self.key, server, p.current());
        }
    }
}
