//! The view of a pool persistence decides over: which servers exist, the id each carries in
//! cookies and URLs, and which may take persisted or new sessions.

use tenbin_core::persist::rendezvous;
use tenbin_core::{BackendId, ServerState};

use crate::pool::Pool;

/// One server as persistence sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: BackendId,
    /// What tenbin writes into cookies and URLs for this server (its configured name).
    pub cookie: String,
    /// Consistent hashing input (the socket address), so every instance places keys alike.
    pub hash_key: String,
    pub weight: u32,
    pub state: ServerState,
}

/// A snapshot of a pool's servers; rebuild it when servers or their health change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSet {
    members: Vec<Member>,
}

impl ServerSet {
    pub fn new(members: Vec<Member>) -> Self {
        ServerSet { members }
    }

    /// The pool's servers as they stand now, named by their configured names.
    pub fn from_pool(pool: &Pool) -> Self {
        let members = pool
            .servers()
            .into_iter()
            .map(|(s, state, _active)| Member {
                id: s.id,
                cookie: s.name,
                hash_key: s.addr.to_string(),
                weight: 1,
                state,
            })
            .collect();
        ServerSet { members }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn by_cookie(&self, value: &str) -> Option<BackendId> {
        self.members
            .iter()
            .find(|m| m.cookie == value)
            .map(|m| m.id)
    }

    pub fn cookie_of(&self, id: BackendId) -> Option<&str> {
        self.member(id).map(|m| m.cookie.as_str())
    }

    /// Active or draining: a persisted session may still go there.
    pub fn accepts_persisted(&self, id: BackendId) -> bool {
        self.member(id).is_some_and(|m| m.state.accepts_persisted())
    }

    pub fn accepts_new(&self, id: BackendId) -> bool {
        self.member(id).is_some_and(|m| m.state.accepts_new())
    }

    /// Consistent placement of `key` among the servers taking new sessions.
    pub fn place(&self, key: u64) -> Option<BackendId> {
        rendezvous(
            key,
            self.members
                .iter()
                .filter(|m| m.state.accepts_new())
                .map(|m| (m.id, m.hash_key.as_bytes(), m.weight)),
        )
    }

    fn member(&self, id: BackendId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}
