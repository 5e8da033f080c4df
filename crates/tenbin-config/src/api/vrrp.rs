//! `vrrp` in [`super::NodeState`]: each virtual router the node runs.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The node's `[vrrp]` virtual routers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpState {
    pub instances: Vec<VrrpInstanceState>,
}

/// One `[[vrrp.instance]]` as its driver last saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstanceState {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// `initialize`, `backup`, `master` or `fault`.
    pub state: String,
    /// The priority in force: configured minus the weights of failed tracked objects.
    pub priority: u8,
    pub configured_priority: u8,
    /// The master's primary address (this node's own while master), when known.
    pub master: Option<IpAddr>,
    /// Tracked objects (`pool/NAME`, `frontend/NAME`, `proxy`) that are down now.
    pub tracked_down: Vec<String>,
    /// State changes since the driver started.
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub drops: VrrpDrops,
}

/// Received advertisements dropped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpDrops {
    /// TTL or hop limit not 255.
    pub ttl: u64,
    pub malformed: u64,
    pub checksum: u64,
    /// For another virtual router on the same link.
    pub other_vrid: u64,
}
