//! A ketama-style consistent-hash ring, kept beside Maglev for comparison.
//!
//! Each backend places points on a 64-bit ring in proportion to its weight (160 per backend
//! of average weight, at least one); a key belongs to the first point at or after its hash,
//! wrapping. Point positions derive from the backend's key bytes only (as in Maglev, never
//! the id or input order), so any instance builds the same ring:
//!
//! ```text
//! point(k) = mix64(fnv1a64(key) ^ mix64(k + 1))     for k in 0..points
//! ```
//!
//! This is not byte-compatible with libketama (which uses MD5); it keeps ketama's shape:
//! removing a backend moves only the keys of its own arcs. Lookups are a binary search and
//! allocate nothing; [`KetamaRing::successor`] walks on when the owner cannot take the key.

use crate::backend::BackendId;
use crate::maglev::{key_hash, mix64, MaglevEntry};

/// Points for a backend of average weight (libketama's 40 MD5 digests x 4).
pub const POINTS_PER_BACKEND: u64 = 160;

/// The ring's input is the same as Maglev's: id, key bytes, weight.
pub type RingEntry<'a> = MaglevEntry<'a>;

/// A built ring: points sorted by position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KetamaRing {
    points: Vec<(u64, BackendId)>,
}

impl KetamaRing {
    /// Builds the ring; weight-0 entries get no points.
    pub fn build(entries: &[RingEntry<'_>]) -> KetamaRing {
        let live: Vec<&RingEntry<'_>> = entries.iter().filter(|e| e.weight > 0).collect();
        let total: u64 = live.iter().map(|e| u64::from(e.weight)).sum();
        let n = live.len() as u64;
        let mut points = Vec::new();
        for e in &live {
            let share = POINTS_PER_BACKEND * n * u64::from(e.weight);
            let count = (share + total / 2) / total.max(1);
            let h = key_hash(e.key);
            for k in 0..count.max(1) {
                points.push((mix64(h ^ mix64(k + 1)), e.key, e.id));
            }
        }
        // Equal positions (astronomically rare) resolve by key, then id: order-independent.
        points.sort_unstable();
        KetamaRing {
            points: points.into_iter().map(|(p, _, id)| (p, id)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// All points, sorted by position.
    pub fn points(&self) -> &[(u64, BackendId)] {
        &self.points
    }

    /// The index of the point owning `hash`: the first at or after it, wrapping.
    pub fn position(&self, hash: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|&(p, _)| p < hash);
        Some(if i == self.points.len() { 0 } else { i })
    }

    /// The backend owning `hash`.
    pub fn lookup(&self, hash: u64) -> Option<BackendId> {
        self.position(hash).map(|i| self.points[i].1)
    }

    /// The first backend clockwise from `hash` that `accept` takes, checking each point
    /// once; `None` if no backend is accepted.
    pub fn successor(
        &self,
        hash: u64,
        mut accept: impl FnMut(BackendId) -> bool,
    ) -> Option<BackendId> {
        let start = self.position(hash)?;
        let n = self.points.len();
        (0..n)
            .map(|step| self.points[(start + step) % n].1)
            .find(|&id| accept(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[String], weights: &[u32]) -> KetamaRing {
        let entries: Vec<RingEntry<'_>> = keys
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (k, &w))| RingEntry {
                id: BackendId(i as u32),
                key: k.as_bytes(),
                weight: w,
            })
            .collect();
        KetamaRing::build(&entries)
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("192.0.2.{i}:80")).collect()
    }

    #[test]
    fn points_follow_weights() {
        let r = ring(&keys(3), &[1, 2, 3]);
        let count = |id| r.points().iter().filter(|p| p.1 == BackendId(id)).count();
        assert_eq!((count(0), count(1), count(2)), (80, 160, 240));
        assert!(r.points().windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn empty_ring_finds_nothing() {
        let r = ring(&keys(2), &[0, 0]);
        assert!(r.is_empty());
        assert_eq!(r.lookup(5), None);
        assert_eq!(r.successor(5, |_| true), None);
    }

    #[test]
    fn lookup_wraps_past_the_last_point() {
        let r = ring(&keys(4), &[1, 1, 1, 1]);
        let last = r.points().last().unwrap().0;
        assert_eq!(r.lookup(last.wrapping_add(1)), Some(r.points()[0].1));
        assert_eq!(r.lookup(0), Some(r.points()[0].1));
    }

    #[test]
    fn removal_moves_only_the_removed_backends_keys() {
        let k = keys(10);
        let full = ring(&k, &[1; 10]);
        let mut w = [1; 10];
        w[3] = 0;
        let less = ring(&k, &w);
        for i in 0..10_000u64 {
            let h = mix64(i);
            let before = full.lookup(h).unwrap();
            if before != BackendId(3) {
                assert_eq!(less.lookup(h), Some(before));
            }
        }
    }

    #[test]
    fn successor_skips_refused_backends() {
        let r = ring(&keys(5), &[1; 5]);
        let h = 12345;
        let owner = r.lookup(h).unwrap();
        let next = r.successor(h, |id| id != owner).unwrap();
        assert_ne!(next, owner);
        assert_eq!(r.successor(h, |_| false), None);
    }
}
