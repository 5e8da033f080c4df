//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted.
//!
//! The control plane builds a [`MaglevTable`] once per membership/weight change; the data
//! planes (the XDP Mux through a BPF array, the proxies through [`MaglevTable::lookup`]) only
//! index it with `hash % size`.
//!
//! # Placement
//!
//! Each backend owns a permutation of the `M` slots (`M` prime): position `j` is
//! `(offset + j * skip) % M`. `offset` and `skip` derive from [`key_hash`] of the backend's
//! key bytes (normally its socket address as text), never from its id or its place in the
//! input, so every instance given the same set builds a byte-identical table:
//!
//! ```text
//! h      = fnv1a64(key)
//! offset = mix64(h ^ 0x6d61676c65762d6f) % M            ("maglev-o")
//! skip   = mix64(h ^ 0x6d61676c65762d73) % (M - 1) + 1  ("maglev-s")
//! mix64  = the splitmix64 finaliser
//! ```
//!
//! Backends take turns in a canonical order (by `(h, key, id)`), each turn claiming the next
//! still-empty slot of its own permutation. Weights are honoured by quotas: `M` is apportioned
//! to the backends by weight (largest remainder, ties in canonical order), and the fill runs
//! `R = ceil(M / N)` rounds in which backend `i` catches up to `floor(q_i * r / R)` turns. A
//! backend therefore ends with exactly its quota (within one slot of `M * w_i / W`), heavy
//! backends claim several turns per round, and the work stays `O(M log M + N * R)` with no
//! allocation per slot. Weight-0 backends are left out.

use thiserror::Error;

use crate::backend::BackendId;

mod fill;

use fill::{fill, Filler};

/// The default table size: prime, and large enough that 1000 backends each hold ~65 slots.
pub const DEFAULT_SIZE: u32 = 65_537;

/// The largest accepted table size (a BPF array of 4-byte entries stays below 64 MiB).
pub const MAX_SIZE: u32 = 1 << 24;

/// One backend as the table builder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevEntry<'a> {
    pub id: BackendId,
    /// The bytes the permutation derives from (the address as text), shared by every instance.
    pub key: &'a [u8],
    pub weight: u32,
}

/// Why a table could not be built.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MaglevError {
    #[error("maglev table size {0} is not prime (65537 is the usual choice)")]
    NotPrime(u32),
    #[error("maglev table size {0} exceeds the maximum {MAX_SIZE}")]
    TooLarge(u32),
    #[error("{backends} weighted backends do not fit a maglev table of {size} slots")]
    TooManyBackends { backends: usize, size: u32 },
}

/// A filled lookup table: `slots()[hash % size]` is the backend for a flow hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    size: u32,
    /// Empty when no backend has a positive weight; otherwise exactly `size` entries.
    slots: Vec<BackendId>,
}

impl MaglevTable {
    /// Builds the table for `entries` (any order) with a prime `size`.
    pub fn build(entries: &[MaglevEntry<'_>], size: u32) -> Result<MaglevTable, MaglevError> {
        if size > MAX_SIZE {
            return Err(MaglevError::TooLarge(size));
        }
        if !is_prime(size) {
            return Err(MaglevError::NotPrime(size));
        }
        let mut order: Vec<(u64, &MaglevEntry<'_>)> = entries
            .iter()
            .filter(|e| e.weight > 0)
            .map(|e| (key_hash(e.key), e))
            .collect();
        if order.len() > size as usize {
            return Err(MaglevError::TooManyBackends {
                backends: order.len(),
                size,
            });
        }
        if order.is_empty() {
            return Ok(MaglevTable {
                size,
                slots: Vec::new(),
            });
        }
        order.sort_unstable_by(|a, b| (a.0, a.1.key, a.1.id).cmp(&(b.0, b.1.key, b.1.id)));
        let quotas = apportion(order.iter().map(|(_, e)| e.weight), size);
        let mut fillers: Vec<Filler> = order
            .iter()
            .zip(quotas)
            .map(|(&(h, e), quota)| Filler::new(e.id, h, quota, size))
            .collect();
        Ok(MaglevTable {
            size,
            slots: fill(&mut fillers, size),
        })
    }

    /// All slots; empty when the table has no backend.
    pub fn slots(&self) -> &[BackendId] {
        &self.slots
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// The backend for a flow/key hash: `slots[hash % size]`, `None` if there is no backend.
    pub fn lookup(&self, hash: u64) -> Option<BackendId> {
        if self.slots.is_empty() {
            return None;
        }
        Some(self.slots[(hash % u64::from(self.size)) as usize])
    }
}

/// Splits `total` slots in proportion to `weights` (largest remainder; ties to the earlier).
fn apportion(weights: impl Iterator<Item = u32> + Clone, total: u32) -> Vec<u32> {
    let sum: u64 = weights.clone().map(u64::from).sum();
    let exact: Vec<(u32, u64)> = weights
        .map(|w| {
            let num = u64::from(w) * u64::from(total);
            ((num / sum) as u32, num % sum)
        })
        .collect();
    let mut quotas: Vec<u32> = exact.iter().map(|&(q, _)| q).collect();
    let left = total - quotas.iter().sum::<u32>();
    let mut by_remainder: Vec<usize> = (0..exact.len()).collect();
    by_remainder.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &i in by_remainder.iter().take(left as usize) {
        quotas[i] += 1;
    }
    quotas
}

/// The documented, dependency-free hash of a backend key: 64-bit FNV-1a.
pub fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Trial division; table sizes are built rarely and stay below [`MAX_SIZE`].
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = u64::from(n);
    (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

#[cfg(test)]
mod tests;
