//! `bgp` in [`NodeState`](super::NodeState): the speaker's neighbours and what it announces,
//! as plain data (states as lowercase strings, counters as integers) for the admin API,
//! `tenbin ctl status` and `/metrics`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The node's BGP speaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgpState {
    pub router_id: std::net::Ipv4Addr,
    pub local_as: u32,
    pub neighbors: Vec<BgpNeighborState>,
    /// Prefixes the node wants announced now, each with why (`mux` VIP or `dns` listen
    /// address), whatever each session has sent.
    pub prefixes: Vec<BgpPrefix>,
    /// `tenbin ctl drain-mux`: the Mux's VIPs are withdrawn while it keeps forwarding.
    pub mux_drained: bool,
}

/// One `[[bgp.neighbor]]`'s session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgpNeighborState {
    pub address: IpAddr,
    pub remote_as: u32,
    /// `idle`, `connect`, `active`, `opensent`, `openconfirm` or `established`.
    pub state: String,
    /// Seconds since the session reached Established; `None` while it is not.
    pub uptime_secs: Option<f64>,
    /// The hold time negotiated (seconds; 0 before a session or with none).
    pub hold_time_secs: u64,
    /// Prefixes this neighbour has from us.
    pub prefixes_announced: u64,
    /// Times the session left Established.
    pub flaps: u64,
    pub updates_sent: u64,
    pub updates_received: u64,
    /// Why the session last went down, kept after it comes back.
    pub last_error: Option<String>,
}

/// A prefix the node announces and the source that asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpPrefix {
    pub prefix: String,
    /// `mux` (a VIP the Mux can serve) or `dns` (a DNS listen address that answers).
    pub source: String,
    pub address: IpAddr,
}
