//! Turning a persistence [`Target`] into a connection slot on the pool.
//!
//! The pool's algorithm only hands out servers that take new sessions; a persisted session to
//! a *draining* server must still get through. Until the pool offers a lease for a named
//! server, a pinned active server is leased by excluding every other one, and a pinned
//! draining server is used without a lease (it is not counted in its active sessions).

use tenbin_core::BackendId;

use super::{ServerSet, Target};
use crate::pool::{Lease, Pool, PoolError, Server};

/// A server to connect to, with its lease when the pool could give one.
#[derive(Debug)]
pub enum Held {
    Leased(Lease),
    Unleased(Server),
}

impl Held {
    pub fn server(&self) -> &Server {
        match self {
            Held::Leased(l) => l.server(),
            Held::Unleased(s) => s,
        }
    }

    pub fn id(&self) -> BackendId {
        self.server().id
    }

    pub fn lease(&self) -> Option<&Lease> {
        match self {
            Held::Leased(l) => Some(l),
            Held::Unleased(_) => None,
        }
    }
}

/// Leases the server `target` names, or any server the pool picks (`key` feeds its hashing).
/// `Target::Unavailable` and a pinned server that vanished are `NoServer`.
pub async fn hold(
    pool: &Pool,
    servers: &ServerSet,
    target: Target,
    key: Option<u64>,
) -> Result<Held, PoolError> {
    let id = match target {
        Target::Any => return pool.acquire(key, &[]).await.map(Held::Leased),
        Target::Unavailable => return Err(PoolError::NoServer(pool.name().into())),
        Target::Server(id) => id,
    };
    let others: Vec<BackendId> = servers
        .members()
        .iter()
        .map(|m| m.id)
        .filter(|&m| m != id)
        .collect();
    if servers.accepts_new(id) {
        if let Ok(lease) = pool.try_acquire(None, &others) {
            return Ok(Held::Leased(lease));
        }
    }
    pool.servers()
        .into_iter()
        .find(|(s, state, _)| s.id == id && state.accepts_persisted())
        .map(|(s, _, _)| Held::Unleased(s))
        .ok_or_else(|| PoolError::NoServer(pool.name().into()))
}
