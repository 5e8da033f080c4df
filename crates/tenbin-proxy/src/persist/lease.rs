//! Turning a persistence [`Target`] into a lease on the pool.
//!
//! A pinned server is leased with [`Pool::acquire_pinned`], which also admits *draining*
//! servers (persisted sessions only) and respects maxconn; when it cannot take the session
//! (full, or gone since the decision) the pool picks as for a new session.

use tenbin_core::BackendId;

use super::Target;
use crate::pool::{Lease, Pool, PoolError};

/// Leases the server `target` names, or any server the pool picks (`key` feeds its hashing;
/// `exclude` lists servers this request already tried). `Target::Unavailable` is `NoServer`.
pub async fn hold(
    pool: &Pool,
    target: Target,
    key: Option<u64>,
    exclude: &[BackendId],
) -> Result<Lease, PoolError> {
    match target {
        Target::Unavailable => Err(PoolError::NoServer(pool.name().into())),
        Target::Server(id) if !exclude.contains(&id) => match pool.acquire_pinned(id) {
            Some(lease) => Ok(lease),
            None => pool.acquire(key, exclude).await,
        },
        _ => pool.acquire(key, exclude).await,
    }
}
