//! What changed between two configs, so a running node applies only that (Sōzu-style: config
//! changes are data). Every [`Change`] that adds or changes something carries the new
//! section, so whoever applies it needs nothing but the change; the node runtime applies the
//! same values whether they came from a reload of the file or from an operator's command.

use crate::dns::DnsSection;
use crate::mux::{AgentSection, MuxSection};
use crate::sync::SyncSection;
use crate::vrrp::VrrpSection;
use crate::{Admin, Config, Frontend, Pool, Server};

/// One unit of change. Servers are compared by name inside a pool, so a changed address or
/// weight is a `ServerChanged`, and a renamed server is a removal plus an addition.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    FrontendAdded(Box<Frontend>),
    FrontendRemoved(String),
    FrontendChanged(Box<Frontend>),
    /// A new pool, with its servers (they are not listed again as `ServerAdded`).
    PoolAdded(Box<Pool>),
    PoolRemoved(String),
    /// Algorithm, checks or other pool-wide settings changed (the section carries the
    /// servers too, as they are after the change).
    PoolSettingsChanged(Box<Pool>),
    ServerAdded {
        pool: String,
        server: Box<Server>,
    },
    ServerRemoved {
        pool: String,
        server: String,
    },
    ServerChanged {
        pool: String,
        server: Box<Server>,
    },
    /// `[admin]` as it is now (`None`: removed).
    Admin(Option<Admin>),
    Dns(Option<Box<DnsSection>>),
    Mux(Option<Box<MuxSection>>),
    Agent(Option<Box<AgentSection>>),
    Sync(Option<Box<SyncSection>>),
    Vrrp(Option<Box<VrrpSection>>),
}

impl Change {
    /// One line for logs and for the caller of a reload.
    pub fn describe(&self) -> String {
        let set = |what: &str, some: bool| {
            if some {
                format!("[{what}] changed")
            } else {
                format!("[{what}] removed")
            }
        };
        match self {
            Change::FrontendAdded(f) => format!("frontend {} added", f.name.get_ref()),
            Change::FrontendRemoved(n) => format!("frontend {n} removed"),
            Change::FrontendChanged(f) => format!("frontend {} changed", f.name.get_ref()),
            Change::PoolAdded(p) => format!("pool {} added", p.name.get_ref()),
            Change::PoolRemoved(n) => format!("pool {n} removed"),
            Change::PoolSettingsChanged(p) => format!("pool {} settings changed", p.name.get_ref()),
            Change::ServerAdded { pool, server } => {
                format!("pool {pool}: server {} added", server.name.get_ref())
            }
            Change::ServerRemoved { pool, server } => {
                format!("pool {pool}: server {server} removed")
            }
            Change::ServerChanged { pool, server } => {
                format!("pool {pool}: server {} changed", server.name.get_ref())
            }
            Change::Admin(a) => set("admin", a.is_some()),
            Change::Dns(d) => set("dns", d.is_some()),
            Change::Mux(m) => set("mux", m.is_some()),
            Change::Agent(a) => set("agent", a.is_some()),
            Change::Sync(s) => set("sync", s.is_some()),
            Change::Vrrp(v) => set("vrrp", v.is_some()),
        }
    }

    /// The pool this change is about, if any.
    pub fn pool(&self) -> Option<&str> {
        match self {
            Change::PoolAdded(p) | Change::PoolSettingsChanged(p) => Some(p.name.get_ref()),
            Change::PoolRemoved(n) => Some(n),
            Change::ServerAdded { pool, .. }
            | Change::ServerRemoved { pool, .. }
            | Change::ServerChanged { pool, .. } => Some(pool),
            _ => None,
        }
    }
}

/// The ordered list of changes from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigDiff {
    pub changes: Vec<Change>,
}

impl ConfigDiff {
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        let mut changes = Vec::new();
        let name = |f: &Frontend| f.name.get_ref().clone();
        for o in &old.frontend {
            if !new.frontend.iter().any(|n| name(n) == name(o)) {
                changes.push(Change::FrontendRemoved(name(o)));
            }
        }
        for n in &new.frontend {
            match old.frontend.iter().find(|o| name(o) == name(n)) {
                None => changes.push(Change::FrontendAdded(Box::new(n.clone()))),
                Some(o) if o != n => changes.push(Change::FrontendChanged(Box::new(n.clone()))),
                Some(_) => {}
            }
        }
        for p in &old.pool {
            if new.pool(p.name.get_ref()).is_none() {
                changes.push(Change::PoolRemoved(p.name.get_ref().clone()));
            }
        }
        for p in &new.pool {
            match old.pool(p.name.get_ref()) {
                None => changes.push(Change::PoolAdded(Box::new(p.clone()))),
                Some(o) => diff_pool(o, p, &mut changes),
            }
        }
        if old.admin != new.admin {
            changes.push(Change::Admin(new.admin.clone()));
        }
        if old.dns != new.dns {
            changes.push(Change::Dns(new.dns.clone().map(Box::new)));
        }
        if old.mux != new.mux {
            changes.push(Change::Mux(new.mux.clone().map(Box::new)));
        }
        if old.agent != new.agent {
            changes.push(Change::Agent(new.agent.clone().map(Box::new)));
        }
        if old.sync != new.sync {
            changes.push(Change::Sync(new.sync.clone().map(Box::new)));
        }
        if old.vrrp != new.vrrp {
            changes.push(Change::Vrrp(new.vrrp.clone().map(Box::new)));
        }
        ConfigDiff { changes }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn diff_pool(old: &Pool, new: &Pool, changes: &mut Vec<Change>) {
    let pool = new.name.get_ref();
    let settings = |p: &Pool| Pool {
        server: Vec::new(),
        ..p.clone()
    };
    if settings(old) != settings(new) {
        changes.push(Change::PoolSettingsChanged(Box::new(new.clone())));
    }
    let name = |s: &Server| s.name.get_ref().clone();
    for o in &old.server {
        if !new.server.iter().any(|n| name(n) == name(o)) {
            changes.push(Change::ServerRemoved {
                pool: pool.clone(),
                server: name(o),
            });
        }
    }
    for n in &new.server {
        let server = Box::new(n.clone());
        match old.server.iter().find(|o| name(o) == name(n)) {
            None => changes.push(Change::ServerAdded {
                pool: pool.clone(),
                server,
            }),
            Some(o) if o != n => changes.push(Change::ServerChanged {
                pool: pool.clone(),
                server,
            }),
            Some(_) => {}
        }
    }
}
