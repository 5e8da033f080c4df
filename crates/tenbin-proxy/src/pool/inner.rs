//! The state behind a pool's lock: the balancer, server records, the wait queue.

use std::collections::HashMap;

/// A map keyed by server, read on every request: foldhash, not SipHash (the keys are the
/// operator's, not a client's).
pub(super) type ServerMap<V> = HashMap<BackendId, V, foldhash::fast::RandomState>;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use tenbin_core::pick::{Balancer, PickContext};
use tenbin_core::{BackendId, ServerSpec};

use super::counters::ServerCounters;
use super::queue::WaitQueue;
use super::{Lease, Server, ServerConfig, Shared, SignalSink};

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) balancer: Balancer,
    pub(super) servers: ServerMap<Server>,
    /// Ids are assigned by server name so they survive reconfiguration.
    pub(super) ids: HashMap<String, BackendId>,
    pub(super) next_id: u32,
    pub(super) queue: WaitQueue,
    pub(super) queue_size: usize,
    pub(super) queue_timeout: Duration,
    pub(super) rng: StdRng,
    pub(super) sink: Option<Arc<dyn SignalSink>>,
    /// maxconn as configured, and as an agent asked for it (which wins while present).
    pub(super) configured_maxconn: HashMap<BackendId, Option<u32>>,
    pub(super) agent_maxconn: HashMap<BackendId, u32>,
    /// Traffic counters by id, kept while the server stays in the pool.
    pub(super) counters: ServerMap<Arc<ServerCounters>>,
}

impl Inner {
    pub(super) fn set_servers(&mut self, servers: Vec<ServerConfig>, now: Duration) {
        let mut specs = Vec::with_capacity(servers.len());
        let mut records = ServerMap::with_capacity_and_hasher(servers.len(), Default::default());
        let mut fresh = Vec::new();
        for s in servers {
            let id = match self.ids.get(&s.name) {
                Some(&id) => id,
                None => {
                    let id = BackendId(self.next_id);
                    self.next_id += 1;
                    self.ids.insert(s.name.clone(), id);
                    id
                }
            };
            if !self.servers.contains_key(&id) {
                fresh.push((id, s.state));
            }
            let mut spec = ServerSpec::new(id.0, s.addr.to_string())
                .weight(s.weight.min(tenbin_core::Weight::MAX))
                .group(s.group);
            self.configured_maxconn.insert(id, s.maxconn);
            spec.maxconn = self.agent_maxconn.get(&id).copied().or(s.maxconn);
            specs.push(spec);
            records.insert(
                id,
                Server {
                    id,
                    name: s.name,
                    addr: s.addr,
                },
            );
        }
        self.balancer.update_servers(specs);
        for (id, state) in fresh {
            self.balancer.set_state(id, state, now);
        }
        self.configured_maxconn
            .retain(|id, _| records.contains_key(id));
        self.agent_maxconn.retain(|id, _| records.contains_key(id));
        self.counters.retain(|id, _| records.contains_key(id));
        for id in records.keys() {
            self.counters.entry(*id).or_default();
        }
        self.servers = records;
    }

    /// Sets (or with `None` clears) an agent's connection limit for `id`; returns whether
    /// the effective limit changed (the balancer is only touched then).
    pub(super) fn set_agent_maxconn(&mut self, id: BackendId, limit: Option<u32>) -> bool {
        let Some(&configured) = self.configured_maxconn.get(&id) else {
            return false;
        };
        match limit {
            Some(m) => self.agent_maxconn.insert(id, m),
            None => self.agent_maxconn.remove(&id),
        };
        let effective = limit.or(configured);
        if self
            .balancer
            .server(id)
            .is_none_or(|s| s.spec.maxconn == effective)
        {
            return false;
        }
        let specs = self
            .balancer
            .servers()
            .iter()
            .map(|v| {
                let mut spec = v.spec.clone();
                if spec.id == id {
                    spec.maxconn = effective;
                }
                spec
            })
            .collect();
        self.balancer.update_servers(specs);
        true
    }

    pub(super) fn pick(
        &mut self,
        key: Option<u64>,
        exclude: &[BackendId],
        now: Duration,
    ) -> Option<BackendId> {
        let mut ctx = PickContext {
            now,
            key,
            exclude,
            rng: &mut self.rng,
        };
        self.balancer.pick(&mut ctx)
    }

    pub(super) fn dispatch(&mut self, shared: &Arc<Shared>, id: BackendId) -> Lease {
        self.balancer.on_dispatch(id);
        let server = self.servers.get(&id).cloned().unwrap_or(Server {
            id,
            name: String::new(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        });
        let counters = self.counters.get(&id).cloned().unwrap_or_default();
        counters.dispatched();
        Lease::new(Arc::clone(shared), server, self.sink.clone(), counters)
    }

    /// Some server outside `exclude` takes new sessions, free slot or not.
    pub(super) fn usable(&self, exclude: &[BackendId]) -> bool {
        self.balancer.servers().iter().any(|s| {
            s.state.accepts_new()
                && s.spec.weight.get() > 0
                && s.load_factor > 0
                && !exclude.contains(&s.spec.id)
        })
    }

    /// Some server outside `exclude` takes new sessions and has a free slot.
    pub(super) fn could_serve(&self, exclude: &[BackendId]) -> bool {
        self.balancer.servers().iter().any(|s| {
            s.state.accepts_new()
                && s.spec.weight.get() > 0
                && s.load_factor > 0
                && s.spec.maxconn.is_none_or(|m| s.active < m)
                && !exclude.contains(&s.spec.id)
        })
    }

    /// Hands free slots to waiters, oldest first; a waiter that cannot use any free slot
    /// (it excludes them) keeps its place.
    pub(super) fn serve_waiters(&mut self, shared: &Arc<Shared>, now: Duration) {
        let mut i = 0;
        while i < self.queue.len() && self.could_serve(&[]) {
            let Some(w) = self.queue.get(i) else { break };
            if w.is_closed() {
                self.queue.take(i);
                continue;
            }
            let (key, exclude) = (w.key, w.exclude.clone());
            let Some(id) = self.pick(key, &exclude, now) else {
                i += 1;
                continue;
            };
            let lease = self.dispatch(shared, id);
            let Some(w) = self.queue.take(i) else { break };
            if let Err(mut lease) = w.send(lease) {
                // The waiter left just now: undo without re-entering the lock.
                lease.defuse();
                self.balancer.on_complete(id, None, now);
            }
        }
    }
}
