//! The precomputed half of picking: who is statically eligible, grouped by priority, and each
//! group's consistent-hash table.
//!
//! Static eligibility (the state accepts new sessions, weight and load factor positive) is
//! recomputed after membership, weights, load factors or states change, never per pick. What
//! changes per request (`maxconn` reached, the caller's exclusions) is checked at pick time.
//!
//! Hash tables are built over every server of a group with a positive weight, whatever its
//! state, and rebuilt only when membership, weights or load factors change. A server that
//! goes down, drains or is unchecked keeps its slots; picks walk past it (see `hashed`). So a
//! health change moves only the keys of the server that changed, and they come back when it
//! recovers; a Maglev rebuild would also move a fraction of a percent of everyone else's.

use crate::backend::BackendId;
use crate::ketama::KetamaRing;
use crate::maglev::{MaglevEntry, MaglevTable, DEFAULT_SIZE};

use super::{Algorithm, ServerView};

/// The eligible servers of each priority group, lowest group first, and the hash tables.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    groups: Vec<Group>,
    /// Per group number, for the hashing algorithms.
    tables: Vec<(u8, Table)>,
}

/// One priority group's statically eligible servers.
#[derive(Clone, Debug)]
pub struct Group {
    pub group: u8,
    /// Indices into the balancer's servers, ascending.
    pub members: Vec<usize>,
    /// `weight x load_factor%` of each member, by position.
    pub base: Vec<u64>,
}

/// A group's consistent-hash placement. Slots and points hold server indices (as
/// `BackendId(index)`), not ids.
#[derive(Clone, Debug)]
pub enum Table {
    Maglev(MaglevTable),
    Ketama(KetamaRing),
    /// The table could not be built (more servers than slots): keys fall back to
    /// `mix64(key) % members`.
    Modulo,
}

impl Plan {
    /// Recomputes eligibility; rebuilds the hash tables too when `tables` is set.
    pub fn rebuild(&mut self, algorithm: &Algorithm, servers: &[ServerView], tables: bool) {
        let mut eligible: Vec<(u8, usize)> = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state.accepts_new() && hash_weight(s) > 0)
            .map(|(i, s)| (s.spec.group, i))
            .collect();
        eligible.sort_unstable();
        self.groups.clear();
        for (g, i) in eligible {
            let base = u64::from(servers[i].spec.weight.get()) * u64::from(servers[i].load_factor);
            match self.groups.last_mut() {
                Some(last) if last.group == g => {
                    last.members.push(i);
                    last.base.push(base);
                }
                _ => self.groups.push(Group {
                    group: g,
                    members: vec![i],
                    base: vec![base],
                }),
            }
        }
        if tables {
            self.tables = build_tables(algorithm, servers);
        }
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The hash table of group `g`, if the algorithm hashes and the group has one.
    pub fn table(&self, g: u8) -> Option<&Table> {
        self.tables.iter().find(|(n, _)| *n == g).map(|(_, t)| t)
    }
}

fn build_tables(algorithm: &Algorithm, servers: &[ServerView]) -> Vec<(u8, Table)> {
    let size = match algorithm {
        Algorithm::Maglev { table_size } => *table_size,
        Algorithm::SourceHash => DEFAULT_SIZE,
        Algorithm::Ketama => 0,
        _ => return Vec::new(),
    };
    let mut placed: Vec<(u8, usize)> = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| hash_weight(s) > 0)
        .map(|(i, s)| (s.spec.group, i))
        .collect();
    placed.sort_unstable();
    let mut tables = Vec::new();
    for chunk in placed.chunk_by(|a, b| a.0 == b.0) {
        // The payload is the server's index, so a lookup needs no id map; placement still
        // derives from the key alone.
        let entries: Vec<MaglevEntry<'_>> = chunk
            .iter()
            .map(|&(_, i)| MaglevEntry {
                id: BackendId(i as u32),
                key: servers[i].spec.hash_key.as_bytes(),
                weight: hash_weight(&servers[i]),
            })
            .collect();
        let table = if size == 0 {
            Table::Ketama(KetamaRing::build(&entries))
        } else {
            // A non-prime configured size is a config error the config crate reports;
            // placement still has to work, so fall back to the default size.
            MaglevTable::build(&entries, size)
                .or_else(|_| MaglevTable::build(&entries, DEFAULT_SIZE))
                .map_or(Table::Modulo, Table::Maglev)
        };
        tables.push((chunk[0].0, table));
    }
    tables
}

/// `weight x load_factor%` as a hashing weight: 0 only if either is 0.
fn hash_weight(s: &ServerView) -> u32 {
    let w = u64::from(s.spec.weight.get()) * u64::from(s.load_factor);
    if w == 0 {
        return 0;
    }
    (w / 100).clamp(1, u64::from(u32::MAX)) as u32
}
