//! The precomputed half of picking: who is statically eligible, grouped by priority, and each
//! group's consistent-hash table.
//!
//! Rebuilt by the [`super::Balancer`] only after membership, weights, load factors or states
//! change, never per pick. Static eligibility is: the state accepts new sessions and the
//! weight and load factor are positive. What changes per request (`maxconn` reached, the
//! caller's exclusions) is checked at pick time.

use crate::backend::BackendId;
use crate::ketama::KetamaRing;
use crate::maglev::{MaglevEntry, MaglevTable, DEFAULT_SIZE};

use super::{Algorithm, ServerView};

/// The eligible servers of each priority group, lowest group first.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    groups: Vec<Group>,
}

/// One priority group.
#[derive(Clone, Debug)]
pub struct Group {
    pub group: u8,
    /// Indices into the balancer's servers, ascending.
    pub members: Vec<usize>,
    pub table: Table,
}

/// A group's consistent-hash placement, for the hashing algorithms. Slots and points hold
/// server indices (as `BackendId(index)`), not ids.
#[derive(Clone, Debug)]
pub enum Table {
    /// Not a hashing algorithm.
    None,
    Maglev(MaglevTable),
    Ketama(KetamaRing),
    /// The table could not be built (more servers than slots): keys fall back to
    /// `mix64(key) % members`, which is stable while membership is.
    Modulo,
}

impl Plan {
    pub fn build(algorithm: &Algorithm, servers: &[ServerView]) -> Plan {
        let mut eligible: Vec<(u8, usize)> = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state.accepts_new() && s.spec.weight.get() > 0 && s.load_factor > 0)
            .map(|(i, s)| (s.spec.group, i))
            .collect();
        eligible.sort_unstable();
        let mut groups: Vec<Group> = Vec::new();
        for (g, i) in eligible {
            match groups.last_mut() {
                Some(last) if last.group == g => last.members.push(i),
                _ => groups.push(Group {
                    group: g,
                    members: vec![i],
                    table: Table::None,
                }),
            }
        }
        for g in &mut groups {
            g.table = build_table(algorithm, servers, &g.members);
        }
        Plan { groups }
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }
}

fn build_table(algorithm: &Algorithm, servers: &[ServerView], members: &[usize]) -> Table {
    let size = match algorithm {
        Algorithm::Maglev { table_size } => *table_size,
        Algorithm::SourceHash => DEFAULT_SIZE,
        Algorithm::Ketama => 0,
        _ => return Table::None,
    };
    let entries: Vec<MaglevEntry<'_>> = members
        .iter()
        .map(|&i| {
            let s = &servers[i];
            // The payload is the server's index, so a lookup needs no id map; placement
            // still derives from the key alone.
            MaglevEntry {
                id: BackendId(i as u32),
                key: s.spec.hash_key.as_bytes(),
                weight: hash_weight(s),
            }
        })
        .collect();
    if size == 0 {
        return Table::Ketama(KetamaRing::build(&entries));
    }
    // A non-prime configured size is a config error the config crate reports; placement
    // still has to work, so fall back to the default size rather than to no table.
    MaglevTable::build(&entries, size)
        .or_else(|_| MaglevTable::build(&entries, DEFAULT_SIZE))
        .map_or(Table::Modulo, Table::Maglev)
}

/// `weight x load_factor%`, at least 1 for an eligible server: the hashing weight.
fn hash_weight(s: &ServerView) -> u32 {
    let w = u64::from(s.spec.weight.get()) * u64::from(s.load_factor) / 100;
    w.clamp(1, u64::from(u32::MAX)) as u32
}
