//! The Mux control plane: a desired [`MuxSpec`] (from config and health) is turned into map
//! writes. Backend and VIP ids are stable across applies; a VIP's ring is rebuilt and swapped
//! whole only when its eligible member set changes, so flows of unaffected backends stay put.
//!
//! Which backends a ring holds: `Active` with weight > 0. `Draining` backends keep their
//! record, so flows already in the flow table keep reaching them, but get no new flows.
//! `Down`, `Maintenance` and `Unchecked` backends lose their record too: the data plane
//! re-picks their flows from the ring.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tenbin_core::maglev::{MaglevEntry, MaglevError, MaglevTable};
use tenbin_core::{BackendId, ServerState};

use crate::abi::{BackendRec, Mode, VipInfo, VipKey, MAX_BACKENDS, MAX_VIPS, RING_SIZE};
use crate::writer::{MapWriter, WriteError};

mod check;
use check::{config_abi, validate};

/// One member of a ring, as consistent hashing sees it.
#[derive(Clone, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub struct RingMember {
    /// The data plane's backend id (the value stored in ring slots).
    pub id: u32,
    /// What its position derives from: the backend address as text, identical on every Mux.
    pub key: String,
    pub weight: u32,
}

/// Builds a ring of exactly [`RING_SIZE`] slots from members (non-empty, positive weights).
pub trait RingBuilder {
    fn build(&self, members: &[RingMember]) -> Result<Vec<u32>, MaglevError>;
}

/// tenbin-core's weighted Maglev, the same table every Mux (and the proxies) build.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaglevRings;

impl RingBuilder for MaglevRings {
    fn build(&self, members: &[RingMember]) -> Result<Vec<u32>, MaglevError> {
        let entries: Vec<MaglevEntry<'_>> = members
            .iter()
            .map(|m| MaglevEntry {
                id: BackendId(m.id),
                key: m.key.as_bytes(),
                weight: m.weight,
            })
            .collect();
        let table = MaglevTable::build(&entries, RING_SIZE)?;
        Ok(table.slots().iter().map(|b| b.0).collect())
    }
}

/// Desired state of one Mux.
#[derive(Clone, PartialEq, Debug)]
pub struct MuxSpec {
    pub seed: u32,
    /// Largest outer packet; larger ones are answered with ICMP too-big.
    pub mtu: u32,
    pub udp_idle: Duration,
    /// New flow entries per second per CPU; 0: unlimited.
    pub flow_cap: u64,
    /// Outer IPv4 source prefix; host bits vary per flow.
    pub src4: (Ipv4Addr, u8),
    /// Outer IPv6 source prefix, at least /96 (only the last 32 bits vary).
    pub src6: (Ipv6Addr, u8),
    /// Two arms: forwarded frames leave through this interface (index, MAC) by
    /// XDP_REDIRECT; `None`: one arm, out of the receiving interface (XDP_TX).
    pub egress: Option<(u32, [u8; 6])>,
    pub vips: Vec<VipSpec>,
}

#[derive(Clone, PartialEq, Debug)]
pub struct VipSpec {
    pub addr: IpAddr,
    /// 0: every port.
    pub port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub mode: Mode,
    pub backends: Vec<BackendSpec>,
}

#[derive(Clone, PartialEq, Debug)]
pub struct BackendSpec {
    pub addr: IpAddr,
    /// Next-hop MAC on the Mux's segment (the backend itself in one-arm and DSR setups).
    pub mac: [u8; 6],
    pub weight: u32,
    pub state: ServerState,
}

/// Why a spec was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("VIP {addr} port {port} proto {proto} is listed twice")]
    DuplicateVip { addr: IpAddr, port: u16, proto: u8 },
    #[error("backend {0} appears with two different MAC addresses")]
    MacConflict(IpAddr),
    #[error("L2 DSR VIP {vip} cannot reach backend {backend} of another address family")]
    DsrFamily { vip: IpAddr, backend: IpAddr },
    #[error("too many {0} for the compiled program")]
    Capacity(&'static str),
    #[error("outer source prefix /{0} is not usable (IPv4: 0..=32, IPv6: 96..=128)")]
    SourcePrefix(u8),
    #[error("building a ring: {0}")]
    Ring(#[from] MaglevError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What an apply changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub vips_added: Vec<u32>,
    pub vips_removed: Vec<u32>,
    pub rings_swapped: Vec<u32>,
    pub rings_cleared: Vec<u32>,
    pub backends_added: Vec<u32>,
    pub backends_removed: Vec<u32>,
}

/// Owns the id spaces and what was last written, and drives a [`MapWriter`].
#[derive(Debug)]
pub struct Controller<W, R> {
    writer: W,
    rings: R,
    vip_ids: BTreeMap<VipKey, (u32, VipInfo)>,
    backend_ids: BTreeMap<IpAddr, u32>,
    /// Backend records currently written (ids with a record).
    written: BTreeMap<u32, BackendRec>,
    members: BTreeMap<u32, Vec<RingMember>>,
    egress: Option<u32>,
}

impl<W: MapWriter, R: RingBuilder> Controller<W, R> {
    pub fn new(writer: W, rings: R) -> Self {
        Controller {
            writer,
            rings,
            vip_ids: BTreeMap::new(),
            backend_ids: BTreeMap::new(),
            written: BTreeMap::new(),
            members: BTreeMap::new(),
            egress: None,
        }
    }

    pub fn writer(&self) -> &W {
        &self.writer
    }

    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// The stable data-plane id of a backend address, if it has one.
    pub fn backend_id(&self, addr: IpAddr) -> Option<u32> {
        self.backend_ids.get(&addr).copied()
    }

    /// Every configured VIP as ((address, port, protocol), id).
    pub fn vips(&self) -> Vec<((IpAddr, u16, u8), u32)> {
        self.vip_ids
            .iter()
            .map(|(k, (id, _))| {
                (
                    (crate::abi::key_addr(k.addr, k.family), k.port, k.proto),
                    *id,
                )
            })
            .collect()
    }

    /// Every backend address with its id.
    pub fn backends(&self) -> Vec<(IpAddr, u32)> {
        self.backend_ids.iter().map(|(a, id)| (*a, *id)).collect()
    }

    /// The stable id of a VIP, if configured.
    pub fn vip_id(&self, addr: IpAddr, port: u16, proto: u8) -> Option<u32> {
        self.vip_ids
            .get(&VipKey::new(addr, port, proto))
            .map(|v| v.0)
    }

    /// Brings the maps to `spec`. On error nothing about the refused spec is written, except
    /// for a failed kernel write in the middle (then the next apply converges again).
    pub fn apply(&mut self, spec: &MuxSpec) -> Result<ApplyReport, ControlError> {
        let cfg = config_abi(spec)?;
        let backends = validate(spec)?;
        let mut report = ApplyReport::default();
        if self.egress != spec.egress.map(|e| e.0) {
            self.writer.set_egress(spec.egress.map(|e| e.0))?;
            self.egress = spec.egress.map(|e| e.0);
        }
        self.writer.set_config(&cfg)?;

        // Ids: keep the old ones, give new addresses the lowest free id.
        let stale: Vec<IpAddr> = self
            .backend_ids
            .keys()
            .filter(|a| !backends.contains_key(*a))
            .copied()
            .collect();
        let mut used: BTreeSet<u32> = self.backend_ids.values().copied().collect();
        for (addr, _) in backends.iter() {
            if !self.backend_ids.contains_key(addr) {
                let id = (0..MAX_BACKENDS)
                    .find(|i| !used.contains(i))
                    .ok_or(ControlError::Capacity("backends"))?;
                used.insert(id);
                self.backend_ids.insert(*addr, id);
                report.backends_added.push(id);
            }
        }
        // Records first, so that no ring ever points at a missing record.
        for (addr, (mac, state)) in &backends {
            let id = self.backend_ids[addr];
            let rec = BackendRec::new(*addr, *mac);
            if state.accepts_persisted() {
                if self.written.get(&id) != Some(&rec) {
                    self.writer.set_backend(id, rec)?;
                    self.written.insert(id, rec);
                }
            } else if self.written.remove(&id).is_some() {
                self.writer.clear_backend(id)?;
            }
        }

        let wanted: BTreeSet<VipKey> = spec
            .vips
            .iter()
            .map(|v| VipKey::new(v.addr, v.port, v.proto))
            .collect();
        let mut vip_used: BTreeSet<u32> = self.vip_ids.values().map(|v| v.0).collect();
        for v in &spec.vips {
            let key = VipKey::new(v.addr, v.port, v.proto);
            let vip_id = match self.vip_ids.get(&key) {
                Some((id, _)) => *id,
                None => {
                    let id = (0..MAX_VIPS)
                        .find(|i| !vip_used.contains(i))
                        .ok_or(ControlError::Capacity("VIPs"))?;
                    vip_used.insert(id);
                    report.vips_added.push(id);
                    id
                }
            };
            let mut members: Vec<RingMember> = v
                .backends
                .iter()
                .filter(|b| b.state.accepts_new() && b.weight > 0)
                .map(|b| RingMember {
                    id: self.backend_ids[&b.addr],
                    key: b.addr.to_string(),
                    weight: b.weight,
                })
                .collect();
            members.sort();
            members.dedup_by_key(|m| m.id);
            let before = self.members.get(&vip_id);
            if members.is_empty() {
                if before.is_some() {
                    self.writer.clear_ring(vip_id)?;
                    self.members.remove(&vip_id);
                    report.rings_cleared.push(vip_id);
                }
            } else if before != Some(&members) {
                let slots = self.rings.build(&members)?;
                self.writer.swap_ring(vip_id, &slots)?;
                self.members.insert(vip_id, members);
                report.rings_swapped.push(vip_id);
            }
            let info = VipInfo {
                vip_id,
                mode: v.mode as u8,
                ..VipInfo::default()
            };
            if self.vip_ids.get(&key).map(|v| v.1) != Some(info) {
                self.writer.set_vip(key, info)?;
                self.vip_ids.insert(key, (vip_id, info));
            }
        }

        let gone: Vec<(VipKey, u32)> = self
            .vip_ids
            .iter()
            .filter(|(k, _)| !wanted.contains(*k))
            .map(|(k, v)| (*k, v.0))
            .collect();
        for (key, id) in gone {
            self.writer.remove_vip(&key)?;
            if self.members.remove(&id).is_some() {
                self.writer.clear_ring(id)?;
            }
            self.vip_ids.remove(&key);
            report.vips_removed.push(id);
        }
        for addr in stale {
            if let Some(id) = self.backend_ids.remove(&addr) {
                if self.written.remove(&id).is_some() {
                    self.writer.clear_backend(id)?;
                }
                report.backends_removed.push(id);
            }
        }
        Ok(report)
    }
}

/// Number of ring slots that differ between two rings (for disruption measurements).
pub fn ring_moves(a: &[u32], b: &[u32]) -> usize {
    debug_assert_eq!(a.len(), RING_SIZE as usize);
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}
