//! The whole file: [`Config`], one optional section per tier, and `[admin]`.

use serde::Deserialize;

use crate::admin::Admin;
use crate::frontend::Frontend;
use crate::pool::Pool;
use crate::{bgp, dns, mux, sync, vrrp};

/// The configuration of a whole tenbin node. Each tier's section is optional: a node may run
/// only the proxy, only the Mux, only the DNS, or any mix.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub admin: Option<Admin>,
    #[serde(default)]
    pub frontend: Vec<Frontend>,
    #[serde(default)]
    pub pool: Vec<Pool>,
    pub dns: Option<dns::DnsSection>,
    pub mux: Option<mux::MuxSection>,
    pub agent: Option<mux::AgentSection>,
    pub bgp: Option<bgp::BgpSection>,
    pub vrrp: Option<vrrp::VrrpSection>,
    pub sync: Option<sync::SyncSection>,
}

impl Config {
    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pool.iter().find(|p| p.name.get_ref() == name)
    }
}
