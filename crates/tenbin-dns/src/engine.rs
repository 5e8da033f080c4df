//! The engine: the current [`State`] behind one `ArcSwap`, so queries read a consistent state
//! without locks while reloads and health updates swap whole states; and the counters.

use crate::counters::{Counters, Stats};
use crate::health::HealthSnapshot;
use crate::state::{State, Transport};
use crate::zone::ZoneError;
use crate::{fast, query};
use arc_swap::ArcSwap;
use rand_core::RngCore;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tenbin_config::dns::DnsSection;

/// The DNS tier's shared core: answer queries, take health, reload config.
#[derive(Debug)]
pub struct Engine {
    state: ArcSwap<State>,
    health: Mutex<Arc<HealthSnapshot>>,
    counters: Counters,
}

impl Engine {
    /// Compiles `cfg` (validating it) with everything healthy.
    pub fn new(cfg: &DnsSection) -> Result<Engine, ZoneError> {
        let health = Arc::new(HealthSnapshot::default());
        let state = State::compile(cfg, &health, None)?;
        Ok(Engine {
            state: ArcSwap::from_pointee(state),
            health: Mutex::new(health),
            counters: Counters::default(),
        })
    }

    /// Swaps in a new configuration atomically; queries in flight finish on the old one. On
    /// error the old configuration stays.
    pub fn reload(&self, cfg: &DnsSection) -> Result<(), ZoneError> {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.state.load();
        let new = State::compile(cfg, &health, Some(&old))?;
        self.state.store(Arc::new(new));
        Ok(())
    }

    /// Publishes a new health snapshot (rebuilds the per-name views off the query path).
    pub fn set_health(&self, snapshot: Arc<HealthSnapshot>) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let new = self.state.load().with_health(&snapshot);
        self.state.store(Arc::new(new));
        *health = snapshot;
    }

    /// The current state (for the crate's tests).
    #[cfg(test)]
    pub(crate) fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// The fast path alone (`None`: it declines). For differential tests and fuzzing.
    #[doc(hidden)]
    pub fn respond_fast(
        &self,
        query: &[u8],
        peer: IpAddr,
        transport: Transport,
        rng: &mut dyn RngCore,
    ) -> Option<Vec<u8>> {
        fast::respond(
            &self.state.load(),
            &self.counters,
            query,
            peer,
            transport,
            rng,
        )
    }

    /// The full path alone, as if the fast path did not exist. For differential tests and
    /// fuzzing.
    #[doc(hidden)]
    pub fn respond_full(
        &self,
        query: &[u8],
        peer: IpAddr,
        transport: Transport,
        rng: &mut dyn RngCore,
    ) -> Option<Vec<u8>> {
        query::respond(
            &self.state.load(),
            &self.counters,
            query,
            peer,
            transport,
            rng,
        )
    }

    /// Answers one DNS message (`None`: send nothing).
    pub fn respond(
        &self,
        query: &[u8],
        peer: IpAddr,
        transport: Transport,
        rng: &mut dyn RngCore,
    ) -> Option<Vec<u8>> {
        let state = self.state.load();
        if let Some(answer) = fast::respond(&state, &self.counters, query, peer, transport, rng) {
            self.counters.answered(transport, true);
            return Some(answer);
        }
        let answer = query::respond(&state, &self.counters, query, peer, transport, rng)?;
        self.counters.answered(transport, false);
        Some(answer)
    }

    /// Counter snapshot, with answers per datacenter name.
    pub fn stats(&self) -> Stats {
        let state = self.state.load();
        let per_dc = state
            .gslb
            .locality
            .datacenters
            .iter()
            .zip(state.dc_answers.iter())
            .map(|(n, c)| (n.clone(), c.load(Relaxed)))
            .collect();
        self.counters.stats(per_dc)
    }
}
