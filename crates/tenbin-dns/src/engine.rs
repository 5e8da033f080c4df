//! The engine: compiled config plus health views behind one `ArcSwap`, so queries read a
//! consistent state without locks while reloads and health updates swap whole states.

use crate::counters::{Counters, Stats};
use crate::fast::{self, FastNames};
use crate::geoip::GeoIp;
use crate::gslb::locality::Locality;
use crate::gslb::{view, Gslb, NameView};
use crate::health::HealthSnapshot;
use crate::query::{self, Transport};
use crate::zone::{ZoneError, Zones};
use arc_swap::ArcSwap;
use rand_core::RngCore;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tenbin_config::dns::DnsSection;

/// Everything a query reads, immutable once published.
#[derive(Debug)]
pub struct State {
    pub zones: Arc<Zones>,
    pub gslb: Arc<Gslb>,
    pub views: Vec<NameView>,
    pub edns_udp_max: u16,
    /// Answers per datacenter id (shared across health updates, carried over reloads).
    pub dc_answers: Arc<Vec<AtomicU64>>,
    /// GSLB names for the fast path.
    pub fast: Arc<FastNames>,
}

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
        let state = compile(cfg, &health, None)?;
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
        let new = compile(cfg, &health, Some(&old))?;
        self.state.store(Arc::new(new));
        Ok(())
    }

    /// Publishes a new health snapshot (rebuilds the per-name views off the query path).
    pub fn set_health(&self, snapshot: Arc<HealthSnapshot>) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.state.load_full();
        let views = view::build(&old.gslb, &snapshot);
        self.state.store(Arc::new(State {
            zones: old.zones.clone(),
            gslb: old.gslb.clone(),
            views,
            edns_udp_max: old.edns_udp_max,
            dc_answers: old.dc_answers.clone(),
            fast: old.fast.clone(),
        }));
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
        fast::respond(&state, &self.counters, query, peer, transport, rng)
            .or_else(|| query::respond(&state, &self.counters, query, peer, transport, rng))
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

fn compile(
    cfg: &DnsSection,
    health: &HealthSnapshot,
    old: Option<&State>,
) -> Result<State, ZoneError> {
    let zones = Zones::new(cfg)?;
    let geoip = cfg
        .geoip
        .as_ref()
        .map(|g| GeoIp::open(g, |r| Locality::region_id(cfg, r)))
        .transpose()
        .map_err(|e| ZoneError::GeoIp(e.to_string()))?;
    let gslb = Gslb::with_geoip(cfg, geoip.map(Arc::new));
    let views = view::build(&gslb, health);
    let dc_answers = gslb
        .locality
        .datacenters
        .iter()
        .map(|name| {
            let before = old
                .and_then(|o| {
                    let i = o.gslb.locality.dc_id(name)?;
                    o.dc_answers.get(i).map(|c| c.load(Relaxed))
                })
                .unwrap_or(0);
            AtomicU64::new(before)
        })
        .collect();
    let fast = Arc::new(fast::names(zones.gslb_names()));
    Ok(State {
        zones: Arc::new(zones),
        gslb: Arc::new(gslb),
        views,
        edns_udp_max: cfg.edns_udp_max,
        dc_answers: Arc::new(dc_answers),
        fast,
    })
}
