//! The `mux` field of [`super::NodeState`]: the XDP Mux role `tenbin run` started from
//! `[mux]`, as plain data (states as lowercase strings, counters as `u64`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The Mux role: where it is attached, what it offers and what it counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MuxState {
    pub interface: String,
    /// The program is attached and the last desired state was written.
    pub attached: bool,
    /// One per `[[mux.vip]]`, in config order.
    pub vips: Vec<MuxVipState>,
    /// The data plane's verdict counters by name (`rx`, `tx`, `pass_not_vip`...), summed
    /// over CPUs; empty when they could not be read.
    pub packets: BTreeMap<String, u64>,
    /// Desired states written that changed something.
    pub updates: u64,
    /// Writes that failed (the previous state stayed in the maps).
    pub apply_errors: u64,
    pub reports_accepted: u64,
    /// Stale or replayed agent reports.
    pub reports_ignored: u64,
    /// Datagrams that were not valid agent reports.
    pub reports_refused: u64,
}

/// One VIP of the Mux.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MuxVipState {
    pub address: IpAddr,
    /// 0: every port.
    pub port: u16,
    /// `tcp`, `udp` or `ip`.
    pub protocol: String,
    /// A backend takes new flows once the agents' reports are overlaid.
    pub healthy: bool,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}
