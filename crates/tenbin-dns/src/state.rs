//! What a query reads: one immutable [`State`] (zones, GSLB pipeline, per-name health views,
//! the fast path's name table), compiled from a `[dns]` section and a health snapshot, and the
//! [`Transport`] a query came over. The engine swaps whole states; both query paths read one.

use crate::fasthash::FastMap;
use crate::geoip::GeoIp;
use crate::gslb::locality::Locality;
use crate::gslb::{view, Gslb, NameView};
use crate::health::HealthSnapshot;
use crate::zone::{ZoneError, Zones};
use hickory_proto::rr::LowerName;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tenbin_config::dns::DnsSection;

/// UDP payload without EDNS (RFC 1035 §4.2.1).
pub const CLASSIC_UDP: usize = 512;

/// How the query arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// GSLB names in lower-case wire form → GSLB id.
pub type FastNames = FastMap<Box<[u8]>, usize>;

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

impl State {
    /// Compiles `cfg` (validating it) under `health`; answer counts carry over from `old` by
    /// datacenter name.
    pub fn compile(
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
        let fast = Arc::new(names(zones.gslb_names()));
        Ok(State {
            zones: Arc::new(zones),
            gslb: Arc::new(gslb),
            views,
            edns_udp_max: cfg.edns_udp_max,
            dc_answers: Arc::new(dc_answers),
            fast,
        })
    }

    /// The same configuration under a new health snapshot (only the views are rebuilt).
    pub fn with_health(&self, health: &HealthSnapshot) -> State {
        State {
            zones: self.zones.clone(),
            gslb: self.gslb.clone(),
            views: view::build(&self.gslb, health),
            edns_udp_max: self.edns_udp_max,
            dc_answers: self.dc_answers.clone(),
            fast: self.fast.clone(),
        }
    }
}

/// Builds the fast path's table from the names the zones route to the GSLB.
pub fn names(gslb: impl IntoIterator<Item = (LowerName, usize)>) -> FastNames {
    gslb.into_iter()
        .filter_map(|(name, id)| {
            let mut wire = Vec::with_capacity(64);
            for label in name.iter() {
                wire.push(u8::try_from(label.len()).ok()?);
                wire.extend(label.iter().map(u8::to_ascii_lowercase));
            }
            wire.push(0);
            Some((wire.into_boxed_slice(), id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::names;
    use hickory_proto::rr::{LowerName, Name};

    #[test]
    fn names_are_lower_case_wire_form() {
        let n = names([(
            LowerName::from(Name::from_ascii("WWW.Example.test.").unwrap()),
            3,
        )]);
        assert_eq!(n.get(&b"\x03www\x07example\x04test\x00"[..]), Some(&3));
        assert_eq!(n.len(), 1);
    }
}
