//! What changed between two configs, so a running node applies only that (Sōzu-style: config
//! changes are data). The admin API sends the same [`Change`] values.

use crate::{Config, Frontend, Pool};

/// One unit of change. Servers are compared by name inside a pool, so a changed address or
/// weight is a `ServerChanged`, and a renamed server is a removal plus an addition.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    FrontendAdded(String),
    FrontendRemoved(String),
    FrontendChanged(String),
    PoolAdded(String),
    PoolRemoved(String),
    /// Algorithm, checks or other pool-wide settings changed: rebuild the pool's balancer.
    PoolSettingsChanged(String),
    ServerAdded {
        pool: String,
        server: String,
    },
    ServerRemoved {
        pool: String,
        server: String,
    },
    ServerChanged {
        pool: String,
        server: String,
    },
    /// A section handled by another tier (`dns`, `mux`, `agent`, `admin`).
    SectionChanged(&'static str),
}

/// The ordered list of changes from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigDiff {
    pub changes: Vec<Change>,
}

impl ConfigDiff {
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        let mut changes = Vec::new();
        diff_named(
            &old.frontend,
            &new.frontend,
            |f: &Frontend| f.name.get_ref().clone(),
            |a, b| a == b,
            Change::FrontendAdded,
            Change::FrontendRemoved,
            Change::FrontendChanged,
            &mut changes,
        );
        for p in &old.pool {
            if new.pool(p.name.get_ref()).is_none() {
                changes.push(Change::PoolRemoved(p.name.get_ref().clone()));
            }
        }
        for p in &new.pool {
            match old.pool(p.name.get_ref()) {
                None => changes.push(Change::PoolAdded(p.name.get_ref().clone())),
                Some(o) => diff_pool(o, p, &mut changes),
            }
        }
        if old.admin != new.admin {
            changes.push(Change::SectionChanged("admin"));
        }
        if old.dns != new.dns {
            changes.push(Change::SectionChanged("dns"));
        }
        if old.mux != new.mux {
            changes.push(Change::SectionChanged("mux"));
        }
        if old.agent != new.agent {
            changes.push(Change::SectionChanged("agent"));
        }
        ConfigDiff { changes }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn diff_pool(old: &Pool, new: &Pool, changes: &mut Vec<Change>) {
    let pool = new.name.get_ref().clone();
    let settings = |p: &Pool| Pool {
        server: Vec::new(),
        ..p.clone()
    };
    if settings(old) != settings(new) {
        changes.push(Change::PoolSettingsChanged(pool.clone()));
    }
    let (p1, p2, p3) = (pool.clone(), pool.clone(), pool);
    diff_named(
        &old.server,
        &new.server,
        |s| s.name.get_ref().clone(),
        |a, b| a == b,
        move |server| Change::ServerAdded {
            pool: p1.clone(),
            server,
        },
        move |server| Change::ServerRemoved {
            pool: p2.clone(),
            server,
        },
        move |server| Change::ServerChanged {
            pool: p3.clone(),
            server,
        },
        changes,
    );
}

#[allow(clippy::too_many_arguments)]
fn diff_named<T>(
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> String,
    same: impl Fn(&T, &T) -> bool,
    added: impl Fn(String) -> Change,
    removed: impl Fn(String) -> Change,
    changed: impl Fn(String) -> Change,
    out: &mut Vec<Change>,
) {
    for o in old {
        if !new.iter().any(|n| name(n) == name(o)) {
            out.push(removed(name(o)));
        }
    }
    for n in new {
        match old.iter().find(|o| name(o) == name(n)) {
            None => out.push(added(name(n))),
            Some(o) if !same(o, n) => out.push(changed(name(n))),
            Some(_) => {}
        }
    }
}
