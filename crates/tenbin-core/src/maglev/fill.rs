//! The fill loop of [`super::MaglevTable::build`]: weighted rounds of turns, each claiming
//! the next empty slot of a backend's permutation.
//!
//! Probes test an occupancy bitmap; when only [`TAIL`] slots are left empty, a turn finds
//! its slot by searching the empty slots by permutation position instead of walking (the
//! same slot, found in `empty` multiplications instead of `M / empty` probes).

use crate::backend::BackendId;

use super::mix64;

/// Per-backend fill state, in canonical order.
pub(super) struct Filler {
    id: BackendId,
    offset: u32,
    next: u32,
    skip: u32,
    quota: u32,
}

/// Runs the weighted rounds. Quotas sum to `size`, so every slot ends up owned.
pub(super) fn fill(fillers: &mut [Filler], size: u32) -> Vec<BackendId> {
    let mut owner = vec![BackendId(0); size as usize];
    let mut taken = Bitmap(vec![0u64; (size as usize).div_ceil(64)]);
    let rounds = size.div_ceil(fillers.len() as u32);
    // Per round a backend gains `quota / rounds` turns plus a Bresenham carry of the
    // remainder, which reaches `floor(quota * r / rounds)` after round `r` without a division
    // in the loop.
    let steps: Vec<(u32, u32)> = fillers
        .iter()
        .map(|f| (f.quota / rounds, f.quota % rounds))
        .collect();
    let mut carry = vec![0u32; fillers.len()];
    let mut left = size;
    let mut tail: Option<Vec<u32>> = None;
    for _ in 0..rounds {
        for ((f, &(whole, rem)), acc) in fillers.iter_mut().zip(&steps).zip(&mut carry) {
            let mut turns = whole;
            *acc += rem;
            if *acc >= rounds {
                *acc -= rounds;
                turns += 1;
            }
            for _ in 0..turns {
                let p = if left > TAIL {
                    f.claim(&mut taken, size)
                } else {
                    f.claim_among(tail.get_or_insert_with(|| taken.free_slots(size)), size)
                };
                if let Some(p) = p {
                    owner[p as usize] = f.id;
                    left -= 1;
                }
            }
        }
    }
    owner
}

/// How many empty slots are left when turns stop walking permutations (see
/// [`Filler::claim_among`]). Walking finds the last few slots only after `M / empty` probes
/// each, which is about half of all probes; searching the empty slots costs `empty`
/// multiplications instead.
const TAIL: u32 = 256;

/// Occupied slots, one bit each: 8 KiB at M=65537, so probes stay in L1.
struct Bitmap(Vec<u64>);

impl Bitmap {
    fn is_free(&self, p: u32) -> bool {
        self.0[p as usize / 64] & (1 << (p % 64)) == 0
    }

    fn free_slots(&self, size: u32) -> Vec<u32> {
        (0..size).filter(|&p| self.is_free(p)).collect()
    }
}

impl Filler {
    pub(super) fn new(id: BackendId, h: u64, quota: u32, size: u32) -> Self {
        let next = (mix64(h ^ 0x6d61_676c_6576_2d6f) % u64::from(size)) as u32;
        let skip = (mix64(h ^ 0x6d61_676c_6576_2d73) % u64::from(size - 1)) as u32 + 1;
        Filler {
            id,
            offset: next,
            next,
            skip,
            quota,
        }
    }

    /// Takes, among the `empty` slots, the one earliest in this backend's permutation: the
    /// slot [`Filler::claim`] would reach, because every slot before its position is taken
    /// and taken slots never empty again. Position of slot `p` is
    /// `(p - offset) * skip^-1 mod size`.
    fn claim_among(&mut self, empty: &mut Vec<u32>, size: u32) -> Option<u32> {
        let inverse = u64::from(mod_inverse(self.skip, size));
        let position = |p: u32| {
            let d = if p >= self.offset {
                p - self.offset
            } else {
                p + (size - self.offset)
            };
            u64::from(d) * inverse % u64::from(size)
        };
        let (k, _) = empty
            .iter()
            .enumerate()
            .min_by_key(|&(_, &p)| position(p))?;
        let p = empty.swap_remove(k);
        self.next = add_mod(p, self.skip, size);
        Some(p)
    }

    /// Takes the next free slot of this backend's permutation. A full permutation of a
    /// non-full table finds one within `size` probes; the bound only guards against a broken
    /// invariant.
    fn claim(&mut self, taken: &mut Bitmap, size: u32) -> Option<u32> {
        for _ in 0..size {
            let p = self.next;
            self.next = add_mod(p, self.skip, size);
            if taken.is_free(p) {
                taken.0[p as usize / 64] |= 1 << (p % 64);
                return Some(p);
            }
        }
        None
    }
}

/// The inverse of `a` modulo the prime `m` (extended Euclid; `0 < a < m`).
fn mod_inverse(a: u32, m: u32) -> u32 {
    let (mut t, mut next_t) = (0i64, 1i64);
    let (mut r, mut next_r) = (i64::from(m), i64::from(a));
    while next_r != 0 {
        let q = r / next_r;
        (t, next_t) = (next_t, t - q * next_t);
        (r, next_r) = (next_r, r - q * next_r);
    }
    t.rem_euclid(i64::from(m)) as u32
}

/// `(a + b) % m` for `a, b < m <= MAX_SIZE`, without division and without a branch (the
/// wrap is a coin toss the predictor would lose).
fn add_mod(a: u32, b: u32, m: u32) -> u32 {
    let t = a + b;
    t - (m & u32::from(t >= m).wrapping_neg())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maglev::DEFAULT_SIZE;

    #[test]
    fn searching_the_empty_slots_finds_what_walking_finds() {
        let size = 1009;
        for seed in 0..50u64 {
            let mut taken = Bitmap(vec![0; (size as usize).div_ceil(64)]);
            // Fill all but a few slots, pseudo-randomly.
            let mut free = 0;
            for p in 0..size {
                if mix64(seed ^ u64::from(p)) % 100 < 97 {
                    taken.0[p as usize / 64] |= 1 << (p % 64);
                } else {
                    free += 1;
                }
            }
            if free == 0 {
                continue;
            }
            let mut walker = Filler::new(BackendId(1), mix64(seed), 1, size);
            let mut searcher = Filler::new(BackendId(1), mix64(seed), 1, size);
            let mut empty = taken.free_slots(size);
            for _ in 0..free {
                let a = walker.claim(&mut taken, size);
                let b = searcher.claim_among(&mut empty, size);
                assert_eq!(a, b, "seed {seed}");
            }
            assert!(empty.is_empty());
        }
    }

    #[test]
    fn inverses_invert() {
        for a in [1u32, 2, 3, 1000, 65_536] {
            assert_eq!(
                u64::from(a) * u64::from(mod_inverse(a, DEFAULT_SIZE)) % 65_537,
                1
            );
        }
    }
}
