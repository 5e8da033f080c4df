//! Checking a [`MuxSpec`] before anything is written, and its program-wide settings as the
//! `config` map value.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use tenbin_core::ServerState;

use super::{ControlError, MuxSpec};
use crate::abi::{Mode, MuxConfigAbi, VipKey, MAX_BACKENDS, MAX_VIPS};

pub(super) type BackendSet = BTreeMap<IpAddr, ([u8; 6], ServerState)>;

/// Checks the spec and merges backends shared between VIPs (the best state wins, so a backend
/// active for one VIP keeps its record while draining from another).
pub(super) fn validate(spec: &MuxSpec) -> Result<BackendSet, ControlError> {
    let mut keys = BTreeSet::new();
    let mut all: BackendSet = BTreeMap::new();
    if spec.vips.len() > MAX_VIPS as usize {
        return Err(ControlError::Capacity("VIPs"));
    }
    for v in &spec.vips {
        if !keys.insert(VipKey::new(v.addr, v.port, v.proto)) {
            return Err(ControlError::DuplicateVip {
                addr: v.addr,
                port: v.port,
                proto: v.proto,
            });
        }
        for b in &v.backends {
            if v.mode == Mode::Dsr && b.addr.is_ipv4() != v.addr.is_ipv4() {
                return Err(ControlError::DsrFamily {
                    vip: v.addr,
                    backend: b.addr,
                });
            }
            let e = all.entry(b.addr).or_insert((b.mac, b.state));
            if e.0 != b.mac {
                return Err(ControlError::MacConflict(b.addr));
            }
            if b.state.accepts_new() || (b.state.accepts_persisted() && !e.1.accepts_persisted()) {
                e.1 = b.state;
            }
        }
    }
    if all.len() > MAX_BACKENDS as usize {
        return Err(ControlError::Capacity("backends"));
    }
    Ok(all)
}

pub(super) fn config_abi(spec: &MuxSpec) -> Result<MuxConfigAbi, ControlError> {
    let (a4, p4) = spec.src4;
    if p4 > 32 {
        return Err(ControlError::SourcePrefix(p4));
    }
    let (a6, p6) = spec.src6;
    if !(96..=128).contains(&p6) {
        return Err(ControlError::SourcePrefix(p6));
    }
    let mask = |bits: u8| -> u32 { u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0) };
    let (src6, _) = crate::abi::addr_words(IpAddr::V6(a6));
    Ok(MuxConfigAbi {
        seed: spec.seed,
        mtu: spec.mtu,
        udp_idle_ns: u64::try_from(spec.udp_idle.as_nanos()).unwrap_or(u64::MAX),
        flow_cap: spec.flow_cap,
        src4: u32::from(a4),
        src4_mask: mask(p4),
        src6,
        src6_mask: mask(p6 - 96),
        egress: u32::from(spec.egress.is_some()),
        egress_mac: spec.egress.map(|e| e.1).unwrap_or_default(),
        _pad: [0; 2],
    })
}
