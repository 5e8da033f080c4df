//! Property tests of the Maglev table (issue 2): weight shares, disruption on removal and
//! order independence. Debug builds run fewer cases; each case builds M=65537 tables.

use proptest::prelude::*;
use tenbin_core::maglev::{MaglevEntry, MaglevTable, DEFAULT_SIZE};
use tenbin_core::BackendId;

const M: u32 = DEFAULT_SIZE;

fn cases(debug: u32, release: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(debug_assertions) {
            debug
        } else {
            release
        },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn keys(n: usize, salt: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.{}:8080", salt % 200, i / 250, i % 250))
        .collect()
}

fn entries<'a>(keys: &'a [String], weights: &[u32]) -> Vec<MaglevEntry<'a>> {
    keys.iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (k, &w))| MaglevEntry {
            id: BackendId(i as u32),
            key: k.as_bytes(),
            weight: w,
        })
        .collect()
}

fn counts(t: &MaglevTable, n: usize) -> Vec<u64> {
    let mut c = vec![0u64; n];
    for s in t.slots() {
        c[s.0 as usize] += 1;
    }
    c
}

/// Among slots whose owner survives the removal of `gone`, the fraction that changed owner.
fn moved_fraction(before: &MaglevTable, after: &MaglevTable, gone: BackendId) -> f64 {
    let (mut kept, mut moved) = (0u64, 0u64);
    for (a, b) in before.slots().iter().zip(after.slots()) {
        if *a != gone {
            kept += 1;
            moved += u64::from(a != b);
        }
    }
    moved as f64 / kept as f64
}

fn weights_strategy() -> impl Strategy<Value = (Vec<u32>, u32)> {
    (1usize..=1000, any::<bool>(), any::<u32>()).prop_flat_map(|(n, equal, salt)| {
        let w = if equal { 1u32..=1 } else { 1u32..=100 };
        (prop::collection::vec(w, n), Just(salt))
    })
}

proptest! {
    #![proptest_config(cases(16, 64))]

    /// Every backend's slot share is within 1% of its weight share (or one slot, for
    /// backends whose share is under 100 slots) at M=65537 for N up to 1000.
    #[test]
    fn shares_track_weights((weights, salt) in weights_strategy()) {
        let k = keys(weights.len(), salt);
        let t = MaglevTable::build(&entries(&k, &weights), M).unwrap();
        prop_assert_eq!(t.slots().len(), M as usize);
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        for (i, c) in counts(&t, weights.len()).into_iter().enumerate() {
            let want = f64::from(M) * f64::from(weights[i]) / total as f64;
            let err = (c as f64 - want).abs();
            prop_assert!(err <= (0.01 * want).max(1.0), "backend {} has {} slots, wants {:.2}", i, c, want);
        }
    }

    /// The same set in any order builds a byte-identical table.
    #[test]
    fn order_does_not_matter(
        (weights, salt) in weights_strategy(),
        seed in any::<u64>(),
    ) {
        let k = keys(weights.len(), salt);
        let e = entries(&k, &weights);
        let mut shuffled = e.clone();
        // A seeded Fisher-Yates keeps the permutation reproducible from the case.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let a = MaglevTable::build(&e, M).unwrap();
        let b = MaglevTable::build(&shuffled, M).unwrap();
        prop_assert!(a.slots() == b.slots());
    }

    /// Removing one of N backends moves only a small fraction of the other backends' slots.
    #[test]
    fn removal_moves_little((weights, salt) in weights_strategy(), pick in any::<prop::sample::Index>()) {
        prop_assume!(weights.len() >= 2);
        let k = keys(weights.len(), salt);
        let e = entries(&k, &weights);
        let gone = pick.index(e.len());
        let mut less = e.clone();
        less.remove(gone);
        let before = MaglevTable::build(&e, M).unwrap();
        let after = MaglevTable::build(&less, M).unwrap();
        let f = moved_fraction(&before, &after, BackendId(gone as u32));
        println!("maglev removal: N={} moved {:.4} of surviving slots", e.len(), f);
        prop_assert!(f <= MAX_MOVED, "N={} moved {:.4}", e.len(), f);
    }
}

/// The bound on the fraction of surviving slots that may move when one backend leaves.
const MAX_MOVED: f64 = 0.03;

/// Prints the measured disruption at the sizes the issue names, with equal weights.
#[test]
fn removal_disruption_table() {
    for n in [10usize, 100, 1000] {
        let k = keys(n, 7);
        let e = entries(&k, &vec![1; n]);
        let before = MaglevTable::build(&e, M).unwrap();
        let mut worst: f64 = 0.0;
        let mut sum = 0.0;
        let trials = 5;
        for t in 0..trials {
            let gone = (t * 7919) % n;
            let mut less = e.clone();
            less.remove(gone);
            let after = MaglevTable::build(&less, M).unwrap();
            let f = moved_fraction(&before, &after, BackendId(gone as u32));
            worst = worst.max(f);
            sum += f;
        }
        println!(
            "maglev M={M} N={n}: removing one backend moves {:.4} of surviving slots on average (worst {:.4}; ideal 0)",
            sum / trials as f64,
            worst
        );
        assert!(worst <= MAX_MOVED);
    }
}
