//! Unit tests of the Maglev builder: errors, quotas, lookups, golden placement.

use super::*;

fn keys(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.0.{}.{}:80", i / 256, i % 256))
        .collect()
}

fn entries(keys: &[String], weight: impl Fn(u32) -> u32) -> Vec<MaglevEntry<'_>> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| MaglevEntry {
            id: BackendId(i as u32),
            key: k.as_bytes(),
            weight: weight(i as u32),
        })
        .collect()
}

#[test]
fn rejects_non_prime_and_oversized_tables() {
    assert_eq!(
        MaglevTable::build(&[], 65_536),
        Err(MaglevError::NotPrime(65_536))
    );
    assert_eq!(MaglevTable::build(&[], 1), Err(MaglevError::NotPrime(1)));
    assert!(matches!(
        MaglevTable::build(&[], MAX_SIZE + 1),
        Err(MaglevError::TooLarge(_))
    ));
    let k = keys(10);
    assert!(matches!(
        MaglevTable::build(&entries(&k, |_| 1), 7),
        Err(MaglevError::TooManyBackends { backends: 10, .. })
    ));
}

#[test]
fn primes_are_recognised() {
    let small: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
    assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    assert!(is_prime(DEFAULT_SIZE));
    assert!(!is_prime(65_535));
}

#[test]
fn empty_or_zero_weight_set_looks_up_nothing() {
    let k = keys(3);
    let t = MaglevTable::build(&entries(&k, |_| 0), 13).unwrap();
    assert!(t.slots().is_empty());
    assert_eq!(t.lookup(42), None);
    assert_eq!(t.size(), 13);
}

#[test]
fn every_slot_is_owned_and_lookup_indexes_slots() {
    let k = keys(5);
    let t = MaglevTable::build(&entries(&k, |i| i + 1), 251).unwrap();
    assert_eq!(t.slots().len(), 251);
    for h in [0u64, 1, 250, 251, 1 << 40, u64::MAX] {
        assert_eq!(t.lookup(h), Some(t.slots()[(h % 251) as usize]));
    }
    // Quotas by weight 1..=5 of 251 slots (sum 15): 16.7, 33.5, 50.2, 66.9, 83.7.
    for (i, want) in [(0u32, 17usize), (1, 33), (2, 50), (3, 67), (4, 84)] {
        let got = t.slots().iter().filter(|&&b| b == BackendId(i)).count();
        assert_eq!(got, want, "backend {i}");
    }
}

/// Pins placement across versions: instances of different tenbin versions behind one
/// router must still agree. If this changes, the change is a placement change.
#[test]
fn golden_table() {
    let k: Vec<String> = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
        .map(String::from)
        .to_vec();
    let t = MaglevTable::build(&entries(&k, |i| i + 1), 13).unwrap();
    let got: Vec<u32> = t.slots().iter().map(|b| b.0).collect();
    // Quotas 2, 4, 7 (weights 1, 2, 3 of 13 slots).
    assert_eq!(got, [0, 2, 1, 2, 0, 2, 1, 1, 2, 2, 2, 2, 1]);
}

#[test]
fn key_hash_is_fnv1a() {
    // Published FNV-1a 64 test vectors.
    assert_eq!(key_hash(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(key_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(key_hash(b"foobar"), 0x8594_4171_f739_67e8);
}
