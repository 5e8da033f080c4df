//! Operator actions as an overlay on the file: the node runs `file + overrides`, so an
//! operator's drain, weight or added server is just another config change, diffed and
//! applied by the same path as a reload.
//!
//! Overrides hold until the operator changes them again, across reloads of the file and
//! whatever health checks say (a drained server stays drained while its checks pass). One
//! that names a pool, server or datacenter the file no longer has is dropped at the next
//! reload; a server an operator added gives way to a server of the same name in the file.

use std::collections::{BTreeMap, BTreeSet};

use tenbin_config::api::{ApplyError, Command, DcAdminState, NewServer};
use tenbin_config::pool::AdminState;
use tenbin_config::Config;
use tenbin_core::Weight;

type Key = (String, String);

/// Everything operators changed on top of the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    state: BTreeMap<Key, AdminState>,
    weight: BTreeMap<Key, u32>,
    added: BTreeMap<Key, NewServer>,
    removed: BTreeSet<Key>,
    dc_admin: BTreeMap<String, Option<DcAdminState>>,
}

impl Overrides {
    /// `file` with every override applied.
    pub fn effective(&self, file: &Config) -> Config {
        let mut c = file.clone();
        for pool in &mut c.pool {
            let name = pool.name.get_ref().clone();
            for ((p, _), s) in &self.added {
                let taken = pool.server.iter().any(|x| x.name.get_ref() == &s.name);
                if *p == name && !taken {
                    pool.server.push(s.to_server());
                }
            }
            pool.server.retain(|s| {
                !self
                    .removed
                    .contains(&(name.clone(), s.name.get_ref().clone()))
            });
            for s in &mut pool.server {
                let key = (name.clone(), s.name.get_ref().clone());
                if let Some(st) = self.state.get(&key) {
                    s.state = *st;
                }
                if let Some(w) = self.weight.get(&key) {
                    *s.weight.get_mut() = *w;
                }
            }
        }
        if let Some(dns) = &mut c.dns {
            for dc in &mut dns.datacenters {
                if let Some(admin) = self.dc_admin.get(&dc.name.to_ascii_lowercase()) {
                    dc.admin = admin.map(Into::into);
                }
            }
        }
        c
    }

    /// The overrides with `cmd` recorded, checked against `current` (the effective config
    /// the node runs now). `Reload` and datacenter loads are not overrides: unchanged.
    pub fn with(&self, cmd: &Command, current: &Config) -> Result<Overrides, ApplyError> {
        let mut next = self.clone();
        match cmd {
            Command::Reload
            | Command::SetDatacenterLoad { .. }
            | Command::DrainMux
            | Command::UndrainMux => {}
            Command::SetServerState {
                pool,
                server,
                state,
            } => {
                server_of(current, pool, server)?;
                next.state.insert((pool.clone(), server.clone()), *state);
            }
            Command::SetWeight {
                pool,
                server,
                weight,
            } => {
                server_of(current, pool, server)?;
                check_weight(*weight)?;
                next.weight.insert((pool.clone(), server.clone()), *weight);
            }
            Command::AddServer { pool, server } => {
                let p = pool_of(current, pool)?;
                if p.server.iter().any(|s| s.name.get_ref() == &server.name) {
                    return Err(ApplyError::rejected(format!(
                        "pool {pool} already has a server named `{}`",
                        server.name
                    )));
                }
                if server.name.is_empty() {
                    return Err(ApplyError::rejected("a server needs a name"));
                }
                check_weight(server.weight)?;
                let key = (pool.clone(), server.name.clone());
                next.removed.remove(&key);
                next.added.insert(key, server.clone());
            }
            Command::RemoveServer { pool, server } => {
                let p = pool_of(current, pool)?;
                server_of(current, pool, server)?;
                if p.server.len() == 1 {
                    return Err(ApplyError::rejected(format!(
                        "`{server}` is the last server of pool {pool}"
                    )));
                }
                let key = (pool.clone(), server.clone());
                next.state.remove(&key);
                next.weight.remove(&key);
                if next.added.remove(&key).is_none() {
                    next.removed.insert(key);
                }
            }
            Command::SetDatacenterAdmin { datacenter, state } => {
                let dns = current
                    .dns
                    .as_ref()
                    .ok_or_else(|| ApplyError::not_found("tier", "dns", Vec::new()))?;
                let dc = datacenter.to_ascii_lowercase();
                if !dns
                    .datacenters
                    .iter()
                    .any(|d| d.name.to_ascii_lowercase() == dc)
                {
                    let known = dns.datacenters.iter().map(|d| d.name.clone());
                    return Err(ApplyError::not_found("datacenter", datacenter, known));
                }
                next.dc_admin.insert(dc, *state);
            }
        }
        Ok(next)
    }

    /// Drops what `file` no longer has (after a reload), and added servers the file now
    /// defines itself.
    pub fn prune(&mut self, file: &Config) {
        let has_pool = |p: &str| file.pool(p).is_some();
        let in_file = |(p, s): &Key| {
            file.pool(p)
                .is_some_and(|pool| pool.server.iter().any(|x| x.name.get_ref() == s))
        };
        self.added.retain(|k, _| has_pool(&k.0) && !in_file(k));
        let added = self.added.clone();
        let known = |k: &Key| in_file(k) || added.contains_key(k);
        self.state.retain(|k, _| known(k));
        self.weight.retain(|k, _| known(k));
        self.removed.retain(in_file);
        let dcs: BTreeSet<String> = file
            .dns
            .iter()
            .flat_map(|d| d.datacenters.iter().map(|dc| dc.name.to_ascii_lowercase()))
            .collect();
        self.dc_admin.retain(|dc, _| dcs.contains(dc));
    }
}

fn pool_of<'a>(c: &'a Config, pool: &str) -> Result<&'a tenbin_config::Pool, ApplyError> {
    c.pool(pool).ok_or_else(|| {
        let known = c.pool.iter().map(|p| p.name.get_ref().clone());
        ApplyError::not_found("pool", pool, known)
    })
}

fn server_of<'a>(
    c: &'a Config,
    pool: &str,
    server: &str,
) -> Result<&'a tenbin_config::Server, ApplyError> {
    let p = pool_of(c, pool)?;
    p.server
        .iter()
        .find(|s| s.name.get_ref() == server)
        .ok_or_else(|| {
            let known = p.server.iter().map(|s| s.name.get_ref().clone());
            ApplyError::not_found(&format!("server in pool {pool}"), server, known)
        })
}

fn check_weight(w: u32) -> Result<(), ApplyError> {
    if Weight::new(w).is_none() {
        return Err(ApplyError::rejected(format!(
            "weight must be within 0..={}",
            Weight::MAX
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
default_pool = "app"

[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "127.0.0.1:9001"
[[pool.server]]
name = "b"
address = "127.0.0.1:9002"
"#;

    fn file() -> Config {
        Config::parse(FILE, "t.toml").unwrap()
    }

    fn server<'a>(c: &'a Config, name: &str) -> Option<&'a tenbin_config::Server> {
        c.pool[0].server.iter().find(|s| s.name.get_ref() == name)
    }

    #[test]
    fn actions_overlay_the_file_and_survive_a_reload() {
        let f = file();
        let drain = Command::SetServerState {
            pool: "app".into(),
            server: "a".into(),
            state: AdminState::Draining,
        };
        let o = Overrides::default().with(&drain, &f).unwrap();
        let weight = Command::SetWeight {
            pool: "app".into(),
            server: "b".into(),
            weight: 7,
        };
        let mut o = o.with(&weight, &o.effective(&f)).unwrap();
        let e = o.effective(&f);
        assert_eq!(server(&e, "a").unwrap().state, AdminState::Draining);
        assert_eq!(*server(&e, "b").unwrap().weight.get_ref(), 7);
        // The same file read again: the overrides still apply.
        o.prune(&f);
        assert!(tenbin_config::diff::ConfigDiff::between(&o.effective(&f), &e).is_empty());
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let f = file();
        let cmd = Command::SetServerState {
            pool: "app".into(),
            server: "zz".into(),
            state: AdminState::Draining,
        };
        match Overrides::default().with(&cmd, &f) {
            Err(ApplyError::NotFound { name, known, .. }) => {
                assert_eq!(name, "zz");
                assert_eq!(known, ["a", "b"]);
            }
            other => panic!("{other:?}"),
        }
        let cmd = Command::SetWeight {
            pool: "app".into(),
            server: "a".into(),
            weight: u32::MAX,
        };
        assert!(matches!(
            Overrides::default().with(&cmd, &f),
            Err(ApplyError::Rejected { .. })
        ));
    }

    #[test]
    fn added_and_removed_servers() {
        let f = file();
        let add = Command::AddServer {
            pool: "app".into(),
            server: NewServer {
                name: "c".into(),
                address: "127.0.0.1:9003".parse().unwrap(),
                weight: 2,
                group: 0,
                maxconn: None,
            },
        };
        let o = Overrides::default().with(&add, &f).unwrap();
        assert!(o.with(&add, &o.effective(&f)).is_err(), "duplicate name");
        let rm = Command::RemoveServer {
            pool: "app".into(),
            server: "a".into(),
        };
        let o = o.with(&rm, &o.effective(&f)).unwrap();
        let e = o.effective(&f);
        let names: Vec<&str> = e.pool[0]
            .server
            .iter()
            .map(|s| s.name.get_ref().as_str())
            .collect();
        assert_eq!(names, ["b", "c"]);
        // The file now defines `c` itself: the file's wins.
        let f2 = Config::parse(
            &format!("{FILE}[[pool.server]]\nname = \"c\"\naddress = \"127.0.0.1:9999\"\n"),
            "t.toml",
        )
        .unwrap();
        let mut o = o;
        o.prune(&f2);
        let e = o.effective(&f2);
        assert_eq!(server(&e, "c").unwrap().address.get_ref().port(), 9999);
    }
}
