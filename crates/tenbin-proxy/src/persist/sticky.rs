//! The L7 hook: one [`Sticky`] per request carries persistence from the request to the
//! response, so the HTTP path needs three short calls.
//!
//! ```text
//! let sticky = Sticky::begin(&persistence, &pool, &mut req, client_ip);   // before forwarding
//! let lease = persist::acquire(sticky.as_ref(), &pool, key, &tried).await; // each attempt
//! sticky.on_response(resp.headers_mut(), resp.status(), lease.id());      // on the answer
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Request, StatusCode};
use tenbin_core::BackendId;

use super::{hold, Decision, Persistence, ServerSet, Target};
use crate::pool::{Lease, Pool, PoolError};

/// Persistence state of one request in flight.
#[derive(Debug)]
pub struct Sticky {
    persist: Arc<Persistence>,
    decision: Decision,
    servers: ServerSet,
    now: Duration,
}

impl Sticky {
    /// Reads (and edits) the request's persistence information against `pool`'s servers.
    pub fn begin<B>(
        persist: &Arc<Persistence>,
        pool: &Pool,
        req: &mut Request<B>,
        client: IpAddr,
    ) -> Sticky {
        let servers = ServerSet::from_pool(pool);
        let now = persist.current();
        let decision = persist.route(req, client, &servers, now);
        Sticky {
            persist: Arc::clone(persist),
            decision,
            servers,
            now,
        }
    }

    pub fn target(&self) -> Target {
        self.decision.target(&self.servers)
    }

    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Learns where the request went and edits the response (cookies, redirects).
    pub fn on_response(&self, headers: &mut HeaderMap, status: StatusCode, server: BackendId) {
        self.persist.on_response(
            &self.decision,
            headers,
            status,
            server,
            &self.servers,
            self.now,
        );
    }
}

/// One attempt's lease: the persisted server when there is one (and it was not tried yet),
/// otherwise the pool's pick.
pub async fn acquire(
    sticky: Option<&Sticky>,
    pool: &Pool,
    key: Option<u64>,
    exclude: &[BackendId],
) -> Result<Lease, PoolError> {
    match sticky {
        Some(s) => hold(pool, s.target(), key, exclude).await,
        None => pool.acquire(key, exclude).await,
    }
}
