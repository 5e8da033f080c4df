//! The map-writer seam: everything the control plane does to the data plane goes through
//! [`MapWriter`]. The kernel implementation lives in [`crate::loader`]; [`MemWriter`] keeps the
//! same maps in memory so control-plane tests run without root, and [`MemWriter::pick`]
//! replays the data plane's stateless choice (VIP lookup, `flow_hash % RING_SIZE`, backend).

use std::collections::BTreeMap;

use tenbin_core::flow::{flow_hash, FlowKey};

use crate::abi::{BackendRec, MuxConfigAbi, VipInfo, VipKey, MAX_BACKENDS, NO_BACKEND, RING_SIZE};

/// A map write that failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("ring for VIP id {vip_id} has {len} slots, the program expects {RING_SIZE}")]
    RingSize { vip_id: u32, len: usize },
    #[error("backend id {0} is beyond the program's table ({MAX_BACKENDS})")]
    BackendId(u32),
    #[error("device map: {0}")]
    DevMap(#[from] aya::maps::xdp::XdpMapError),
    #[error("BPF map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// What the control plane needs from a Mux's maps. Rings are only ever replaced whole.
pub trait MapWriter {
    fn set_config(&mut self, cfg: &MuxConfigAbi) -> Result<(), WriteError>;
    /// Two arms: the interface index forwarded frames are redirected to (`None`: clear).
    fn set_egress(&mut self, ifindex: Option<u32>) -> Result<(), WriteError>;
    fn set_vip(&mut self, key: VipKey, info: VipInfo) -> Result<(), WriteError>;
    fn remove_vip(&mut self, key: &VipKey) -> Result<(), WriteError>;
    fn set_backend(&mut self, id: u32, rec: BackendRec) -> Result<(), WriteError>;
    fn clear_backend(&mut self, id: u32) -> Result<(), WriteError>;
    /// Installs `slots` (exactly [`RING_SIZE`] backend ids) as the ring of `vip_id`, in one
    /// atomic swap: a packet sees the old ring or the new one, never a mix.
    fn swap_ring(&mut self, vip_id: u32, slots: &[u32]) -> Result<(), WriteError>;
    /// Removes the ring: the VIP's packets without a flow entry are dropped and counted.
    fn clear_ring(&mut self, vip_id: u32) -> Result<(), WriteError>;
}

/// The stateless part of the data plane's decision for one flow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pick {
    /// Not a VIP: the program passes the packet to the stack.
    NotVip,
    /// The VIP has no ring (no eligible backend): dropped.
    NoRing { vip_id: u32 },
    /// The ring slot holds a backend id without a record: dropped.
    NoBackend { vip_id: u32, slot: u32 },
    Backend {
        vip_id: u32,
        hash: u32,
        slot: u32,
        backend: u32,
    },
}

/// In-memory maps with the same semantics as the BPF ones.
#[derive(Debug, Default, Clone)]
pub struct MemWriter {
    pub config: MuxConfigAbi,
    pub vips: BTreeMap<VipKey, VipInfo>,
    pub backends: BTreeMap<u32, BackendRec>,
    pub rings: BTreeMap<u32, Vec<u32>>,
    /// Number of whole-ring swaps per VIP id, for tests of "only changed rings are swapped".
    pub swaps: BTreeMap<u32, u32>,
    pub egress: Option<u32>,
}

impl MemWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// What the program would do with a flow that has no flow-table entry.
    pub fn pick(&self, key: &FlowKey) -> Pick {
        let mut vk = VipKey::of_flow(key);
        let info = match self.vips.get(&vk) {
            Some(i) => i,
            None => {
                vk.port = 0;
                match self.vips.get(&vk) {
                    Some(i) => i,
                    None => return Pick::NotVip,
                }
            }
        };
        let vip_id = info.vip_id;
        let Some(ring) = self.rings.get(&vip_id) else {
            return Pick::NoRing { vip_id };
        };
        let hash = flow_hash(key, self.config.seed);
        let slot = hash % RING_SIZE;
        let backend = ring[slot as usize];
        if backend == NO_BACKEND || !self.backends.contains_key(&backend) {
            return Pick::NoBackend { vip_id, slot };
        }
        Pick::Backend {
            vip_id,
            hash,
            slot,
            backend,
        }
    }
}

impl MapWriter for MemWriter {
    fn set_config(&mut self, cfg: &MuxConfigAbi) -> Result<(), WriteError> {
        self.config = *cfg;
        Ok(())
    }

    fn set_egress(&mut self, ifindex: Option<u32>) -> Result<(), WriteError> {
        self.egress = ifindex;
        Ok(())
    }

    fn set_vip(&mut self, key: VipKey, info: VipInfo) -> Result<(), WriteError> {
        self.vips.insert(key, info);
        Ok(())
    }

    fn remove_vip(&mut self, key: &VipKey) -> Result<(), WriteError> {
        self.vips.remove(key);
        Ok(())
    }

    fn set_backend(&mut self, id: u32, rec: BackendRec) -> Result<(), WriteError> {
        if id >= MAX_BACKENDS {
            return Err(WriteError::BackendId(id));
        }
        self.backends.insert(id, rec);
        Ok(())
    }

    fn clear_backend(&mut self, id: u32) -> Result<(), WriteError> {
        self.backends.remove(&id);
        Ok(())
    }

    fn swap_ring(&mut self, vip_id: u32, slots: &[u32]) -> Result<(), WriteError> {
        if slots.len() != RING_SIZE as usize {
            return Err(WriteError::RingSize {
                vip_id,
                len: slots.len(),
            });
        }
        self.rings.insert(vip_id, slots.to_vec());
        *self.swaps.entry(vip_id).or_default() += 1;
        Ok(())
    }

    fn clear_ring(&mut self, vip_id: u32) -> Result<(), WriteError> {
        self.rings.remove(&vip_id);
        Ok(())
    }
}
