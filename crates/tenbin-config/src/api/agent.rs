//! The `agent` field of [`super::NodeState`]: the host agent role `tenbin run` started from
//! `[agent]`, as plain data (states as lowercase strings, counters as `u64`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The host agent: its checks, the reports it sent and what it decapsulated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub interface: String,
    /// The VIPs it put on `lo`.
    pub vips: Vec<IpAddr>,
    /// One per `[[agent.check]]`, in config order.
    pub checks: Vec<AgentCheckState>,
    pub reports_sent: u64,
    pub send_errors: u64,
    /// Packets the decapsulating program handled, by verdict; zero when unreadable.
    pub decapsulated: u64,
    pub passed: u64,
    pub dropped: u64,
    pub not_local: u64,
}

/// One `[[agent.check]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentCheckState {
    pub vip: IpAddr,
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// After rise/fall: `unchecked`, `up` or `down` (unchecked services are not reported).
    pub state: String,
    pub probes: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}
