//! The hashing algorithms inside a group: Maglev, ketama and source-address hashing.
//!
//! The caller's key is mixed once more (`mix64`) so weak keys (a cookie's FNV, a counter)
//! still spread, then looked up in the group's table. If the owner cannot take the session
//! (down, draining, at `maxconn` or excluded by a retry), the choice walks on
//! deterministically, so every instance and every retry of the same key agrees and a
//! server's keys return to it when it recovers:
//! - Maglev: the owners of `mix64(h ^ k)` for `k = 1..8`, then the first open member from
//!   position `h % n` in group order;
//! - ketama: the next points clockwise.
//!
//! Without a key the choice is uniform over open members.

use std::net::IpAddr;

use rand_core::RngCore;

use crate::maglev::mix64;

use super::plan::Table;
use super::Scope;

/// How many alternative slots Maglev tries before walking the group in order.
const REHASHES: u64 = 8;

pub(super) fn pick(
    scope: &Scope<'_>,
    table: Option<&Table>,
    key: Option<u64>,
    rng: &mut dyn RngCore,
) -> Option<usize> {
    let n = scope.members.len() as u64;
    let walk = |start: u64| {
        scope
            .open_from((start % n) as usize)
            .map(|p| scope.members[p])
    };
    let Some(key) = key else {
        return walk(rng.next_u64());
    };
    let h = mix64(key);
    // Tables also hold servers that are down or draining (see `plan`): check the state too.
    let takes = |i: usize| scope.servers[i].state.accepts_new() && scope.open(i);
    match table {
        Some(Table::Maglev(t)) => (0..REHASHES)
            .filter_map(|k| t.lookup(if k == 0 { h } else { mix64(h ^ k) }))
            .map(|slot| slot.0 as usize)
            .find(|&i| takes(i))
            .or_else(|| walk(h)),
        Some(Table::Ketama(r)) => r
            .successor(h, |slot| takes(slot.0 as usize))
            .map(|slot| slot.0 as usize),
        Some(Table::Modulo) | None => walk(h),
    }
}

/// The hashing key of a client address: the first `v4_prefix` bits of an IPv4 address (an
/// IPv4-mapped IPv6 address counts as IPv4) or the first `v6_prefix` bits of an IPv6 one,
/// hashed with the family and prefix length. Clients of one proxy farm behind a /24 share a
/// key, so they stay on one server; placing the key through Maglev keeps that stable under
/// membership change.
///
/// ```text
/// key = mix64(mix64(high64(masked) ^ (family << 8 | prefix)) ^ low64(masked))
/// ```
/// where `masked` is the address as a 128-bit integer (IPv4 in the low 32 bits) with the bits
/// past the prefix cleared, `family` is 4 or 6 and `mix64` is [`crate::maglev::mix64`].
pub fn source_key(addr: IpAddr, v4_prefix: u8, v6_prefix: u8) -> u64 {
    let v4 = |a: std::net::Ipv4Addr| (u128::from(u32::from(a)), 32, v4_prefix.min(32), 4u64);
    let (bits, width, prefix, family) = match addr {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => v4(m),
            None => (u128::from(a), 128, v6_prefix.min(128), 6),
        },
    };
    let prefix = u32::from(prefix);
    let keep = if prefix == 0 {
        0
    } else {
        (u128::MAX >> (128 - prefix)) << (width - prefix)
    };
    let masked = bits & keep;
    let tag = (family << 8) | u64::from(prefix);
    mix64(mix64((masked >> 64) as u64 ^ tag) ^ masked as u64)
}
