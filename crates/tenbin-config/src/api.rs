//! The admin-API types: what a running node reports ([`NodeState`]) and what an operator may
//! ask of it ([`Command`] → [`Applied`] or [`ApplyError`]). The node runtime produces and
//! consumes them; the admin API and `tenbin ctl` send them as JSON, so both ends share these
//! definitions and nothing here does I/O.

pub mod bgp;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::pool::AdminState;

mod agent;
mod mux;

pub use agent::{AgentCheckState, AgentState};
pub use mux::{MuxState, MuxVipState};
mod sync;
pub use sync::{SyncPeerState, SyncState};
pub mod vrrp;
pub use vrrp::{VrrpDrops, VrrpInstanceState, VrrpState};

/// Everything a node runs, as the admin API's state endpoint returns it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// The config file the node runs (reloads read it again).
    pub config: String,
    /// Bumped by every applied change (reload or operator action).
    pub generation: u64,
    /// Which tiers run: `proxy`, `dns`, `mux`, `agent`, `sync`, `vrrp`, `admin`.
    pub tiers: Vec<String>,
    pub frontends: Vec<FrontendState>,
    pub pools: Vec<PoolState>,
    pub dns: Option<DnsState>,
    /// The address the admin API is bound to.
    pub admin: Option<SocketAddr>,
    /// The BGP speaker, when the node runs `[bgp]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<bgp::BgpState>,
    /// The XDP Mux role, when `[mux]` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mux: Option<MuxState>,
    /// The host agent role, when `[agent]` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentState>,
    /// Each running tier's readiness, from the node's health bus (what VRRP priority and BGP
    /// announcements follow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readiness: Vec<TierReadiness>,
    /// Session sync with the peers, when `[sync]` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncState>,
    /// `[vrrp]`: each virtual router's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<VrrpState>,
}

/// One tier's readiness on the node's health bus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierReadiness {
    /// `proxy`, `dns` or `mux`.
    pub tier: String,
    pub ready: bool,
    /// Why, in a few words (`1 frontend(s) bound, 0/1 pools usable`).
    pub detail: String,
}

/// One `[[frontend]]` and the addresses it is bound to now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontendState {
    pub name: String,
    /// `http`, `https`, `tcp`, `tls` or `udp`.
    pub mode: String,
    /// Bound addresses (the OS's choice where the file says port 0).
    pub listen: Vec<SocketAddr>,
    /// Pools the frontend sends traffic to.
    pub pools: Vec<String>,
}

/// One `[[pool]]` as its balancer sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolState {
    pub name: String,
    pub algorithm: String,
    /// Callers waiting because every eligible server is at maxconn.
    pub queued: usize,
    /// Health ignored because too few servers are usable (tenbin-health's panic mode).
    pub panic: bool,
    pub servers: Vec<ServerStatus>,
}

/// One server: what the operator asked, what health says, what the balancer does with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub name: String,
    pub address: SocketAddr,
    /// What picking acts on: `active`, `draining`, `down`, `maintenance` or `unchecked`.
    pub state: String,
    /// The operator's (or the file's) intent, combined with health into `state`.
    pub admin: AdminState,
    /// The weight the file (or an operator) gave it.
    pub weight: u32,
    /// Weight as picking uses it now: weight x agent load factor x slow-start ramp.
    pub effective_weight: u32,
    /// Sessions on it now.
    pub active: u32,
    /// Why it is in its health state (last check result), when checked.
    pub check: Option<String>,
    /// Seconds since its health state last changed.
    pub since_change_secs: Option<f64>,
}

/// The GSLB DNS tier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnsState {
    pub listen: Vec<SocketAddr>,
    pub datacenters: Vec<DatacenterState>,
}

/// One datacenter as the DNS tier weighs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatacenterState {
    pub name: String,
    /// The operator's override: `force-up`, `force-down`, `drain`, or none.
    pub admin: Option<DcAdminState>,
    /// The load last pushed for it (in its pools' `capacity` unit).
    pub load: f64,
    /// Its checked VIPs and their state (`up`, `draining`, `down`).
    pub vips: Vec<VipState>,
}

/// One checked VIP of a datacenter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VipState {
    pub address: std::net::IpAddr,
    pub state: String,
}

/// An operator's override of a datacenter's health (`[[dns.datacenters]] admin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DcAdminState {
    ForceUp,
    ForceDown,
    Drain,
}

/// A server an operator adds at run time (the fields of `[[pool.server]]` that make sense
/// without a file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewServer {
    pub name: String,
    pub address: SocketAddr,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub group: u8,
    #[serde(default)]
    pub maxconn: Option<u32>,
}

fn one() -> u32 {
    1
}

/// What may be asked of a running node. Every command goes through the node's one apply
/// path, the same a reload of the file takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Read the config file again and apply what changed.
    Reload,
    /// Set a server's admin state: `active` (enable), `draining`, `maintenance`. It holds
    /// until the operator changes it again, whatever health checks report meanwhile.
    SetServerState {
        pool: String,
        server: String,
        state: AdminState,
    },
    /// Set a server's weight (0 takes it out of new-session picking).
    SetWeight {
        pool: String,
        server: String,
        weight: u32,
    },
    AddServer {
        pool: String,
        server: NewServer,
    },
    RemoveServer {
        pool: String,
        server: String,
    },
    /// A datacenter's current load, in the unit of its GSLB pools' `capacity`.
    SetDatacenterLoad {
        datacenter: String,
        load: f64,
    },
    /// A datacenter's admin override; `None` returns it to health.
    SetDatacenterAdmin {
        datacenter: String,
        state: Option<DcAdminState>,
    },
    /// Withdraw every Mux VIP from the routers (BGP sessions stay up, the Mux keeps
    /// forwarding what still arrives) until `undrain-mux`. Not kept across a restart.
    DrainMux,
    /// Announce the Mux's servable VIPs again.
    UndrainMux,
}

/// What a command changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The node's generation after the change.
    pub generation: u64,
    /// One line per applied change (`pool app: server a changed`); empty for a no-op.
    pub changes: Vec<String>,
}

/// Why a command changed nothing. The admin API maps `NotFound` to 404 and the others to
/// 400.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "kebab-case")]
pub enum ApplyError {
    /// The file does not parse or validate; the message names file:line:column and key.
    #[error("{message}")]
    InvalidConfig { message: String },
    /// A pool, server or datacenter that does not exist; `known` lists those that do.
    #[error("no {kind} named `{name}`; known: {}", known.join(", "))]
    NotFound {
        kind: String,
        name: String,
        known: Vec<String>,
    },
    /// A command that cannot apply as asked (a duplicate server, a weight out of range...).
    #[error("{reason}")]
    Rejected { reason: String },
    /// The new config is valid but the node could not run it (an address in use, an
    /// unreadable certificate); nothing changed.
    #[error("{reason}")]
    Failed { reason: String },
}

impl ApplyError {
    pub fn not_found(kind: &str, name: &str, known: impl IntoIterator<Item = String>) -> Self {
        ApplyError::NotFound {
            kind: kind.to_string(),
            name: name.to_string(),
            known: known.into_iter().collect(),
        }
    }

    pub fn rejected(reason: impl Into<String>) -> Self {
        ApplyError::Rejected {
            reason: reason.into(),
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        ApplyError::Failed {
            reason: reason.into(),
        }
    }
}

impl NewServer {
    /// The `[[pool.server]]` this describes (no spans: it never was in a file).
    pub fn to_server(&self) -> crate::Server {
        use serde_spanned::Spanned;
        crate::Server {
            name: Spanned::new(0..0, self.name.clone()),
            address: Spanned::new(0..0, self.address),
            weight: Spanned::new(0..0, self.weight),
            group: self.group,
            maxconn: self.maxconn.map(|m| Spanned::new(0..0, m)),
            state: AdminState::Active,
        }
    }
}

impl From<DcAdminState> for crate::dns::DcAdmin {
    fn from(s: DcAdminState) -> Self {
        match s {
            DcAdminState::ForceUp => crate::dns::DcAdmin::ForceUp,
            DcAdminState::ForceDown => crate::dns::DcAdmin::ForceDown,
            DcAdminState::Drain => crate::dns::DcAdmin::Drain,
        }
    }
}

impl From<crate::dns::DcAdmin> for DcAdminState {
    fn from(s: crate::dns::DcAdmin) -> Self {
        match s {
            crate::dns::DcAdmin::ForceUp => DcAdminState::ForceUp,
            crate::dns::DcAdmin::ForceDown => DcAdminState::ForceDown,
            crate::dns::DcAdmin::Drain => DcAdminState::Drain,
        }
    }
}
