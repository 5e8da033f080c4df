//! The key of a checked target. Generic on purpose: the proxy keys by pool and server name, DNS
//! by datacenter and address, the Mux by VIP and real; all of them are "a group and a member".

use std::fmt;
use std::sync::Arc;

/// A checked thing: the group it belongs to (a pool, a datacenter) and its name in that group.
/// Cheap to clone: both names are shared strings.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TargetKey {
    pub pool: Arc<str>,
    pub server: Arc<str>,
}

impl TargetKey {
    pub fn new(pool: &str, server: &str) -> Self {
        TargetKey {
            pool: Arc::from(pool),
            server: Arc::from(server),
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.pool, self.server)
    }
}
