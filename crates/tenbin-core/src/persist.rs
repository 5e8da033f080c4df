//! Session persistence tables: which server a client's session is pinned to.
//!
//! A [`PersistTable`] maps a small key ([`PersistKey`]: a stable 64-bit hash of a source
//! prefix, a cookie value, a header or a TLS session id) to a [`BackendId`]. It is bounded
//! (inserting into a full table evicts the least recently used entry), entries expire after an
//! idle time, and it can be iterated and merged so the redundancy tier can replicate it to a
//! peer: on merge the entry seen most recently wins.
//!
//! Time is an argument (`now`, a [`Duration`] since any epoch the caller keeps); entries
//! exchanged between peers must be expressed on the receiver's clock (the replicator turns
//! ages into local times). Lookups allocate nothing.
//!
//! [`rendezvous`] places a key on one of a set of weighted servers by highest-random-weight
//! hashing, the table-less way to pin a key: removing a server only moves the keys it held.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use crate::backend::BackendId;

/// A persistence key: a stable 64-bit hash, identical on every instance and version (so peers
/// can exchange entries), of whatever identifies the session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PersistKey(pub u64);

impl PersistKey {
    /// The key of an identifying byte string (cookie value, header value, session id).
    /// `domain` separates key spaces that share one table (e.g. 1 = cookie, 2 = header).
    pub fn from_bytes(domain: u8, bytes: &[u8]) -> Self {
        PersistKey(stable_hash(domain, bytes))
    }
}

/// FNV-1a over a domain byte and the input, then a 64-bit finalizer so that near inputs
/// spread over the whole range (FNV alone leaves the high bits of short keys poorly mixed).
pub fn stable_hash(domain: u8, bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for &b in std::iter::once(&domain).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    mix64(h)
}

/// The splitmix64 finalizer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Highest-random-weight placement of `key` among `(id, hash_key, weight)` candidates:
/// each candidate scores `-weight / ln(u)` with `u` uniform from hash(key, server); the best
/// score wins. Weight 0 candidates are never chosen. `None` when no candidate has weight.
pub fn rendezvous<'a>(
    key: u64,
    candidates: impl IntoIterator<Item = (BackendId, &'a [u8], u32)>,
) -> Option<BackendId> {
    let mut best: Option<(f64, BackendId)> = None;
    for (id, hash_key, weight) in candidates {
        if weight == 0 {
            continue;
        }
        let h = mix64(key ^ stable_hash(0xff, hash_key));
        // u in (0, 1]: never 0, so ln(u) is finite and <= 0.
        let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let score = -f64::from(weight) / u.ln();
        let better = match best {
            None => true,
            Some((s, bid)) => score > s || (score == s && id < bid),
        };
        if better {
            best = Some((score, id));
        }
    }
    best.map(|(_, id)| id)
}

/// One persisted session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Entry {
    pub backend: BackendId,
    /// When the session was last seen, on the table's clock.
    pub last_seen: Duration,
}

/// A bounded key → server table with idle expiry and LRU eviction. See the module docs.
#[derive(Clone, Debug)]
pub struct PersistTable<K = PersistKey> {
    capacity: usize,
    idle: Duration,
    map: HashMap<K, Slot>,
    /// Recency order: (last_seen, sequence) → key; the first entry is the least recent.
    order: BTreeMap<(Duration, u64), K>,
    seq: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    entry: Entry,
    seq: u64,
    /// When, and with which server, the entry was last reported to peers (or received
    /// from one): see [`PersistTable::take_report`].
    reported: Option<(Duration, BackendId)>,
}

impl<K: Hash + Eq + Clone> PersistTable<K> {
    /// A table of at most `capacity` entries (at least 1) forgetting sessions idle for `idle`.
    pub fn new(capacity: usize, idle: Duration) -> Self {
        PersistTable {
            capacity: capacity.max(1),
            idle,
            map: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The server `key` is pinned to, without refreshing it; expired entries read as absent.
    pub fn peek(&self, key: &K, now: Duration) -> Option<BackendId> {
        let slot = self.map.get(key)?;
        self.live(&slot.entry, now).then_some(slot.entry.backend)
    }

    /// The server `key` is pinned to, refreshing its idle timer. An expired entry is removed.
    pub fn lookup(&mut self, key: &K, now: Duration) -> Option<BackendId> {
        let slot = *self.map.get(key)?;
        if !self.live(&slot.entry, now) {
            self.remove(key);
            return None;
        }
        self.touch(key, slot, slot.entry.backend, now.max(slot.entry.last_seen));
        Some(slot.entry.backend)
    }

    /// Pins `key` to `backend` as of `now`. A full table first drops expired entries, then
    /// evicts the least recently seen one; the evicted key is returned.
    pub fn insert(&mut self, key: K, backend: BackendId, now: Duration) -> Option<K> {
        if let Some(slot) = self.map.get(&key).copied() {
            self.touch(&key, slot, backend, now.max(slot.entry.last_seen));
            return None;
        }
        let mut evicted = None;
        if self.map.len() >= self.capacity {
            self.expire(now);
            if self.map.len() >= self.capacity {
                if let Some((_, old)) = self.order.pop_first() {
                    self.map.remove(&old);
                    evicted = Some(old);
                }
            }
        }
        self.put(
            key,
            Entry {
                backend,
                last_seen: now,
            },
            None,
        );
        evicted
    }

    pub fn remove(&mut self, key: &K) -> Option<Entry> {
        let slot = self.map.remove(key)?;
        self.order.remove(&(slot.entry.last_seen, slot.seq));
        Some(slot.entry)
    }

    /// Forgets every session pinned to `backend` (a server removed from the pool).
    pub fn remove_backend(&mut self, backend: BackendId) -> usize {
        let keys: Vec<K> = self
            .map
            .iter()
            .filter(|(_, s)| s.entry.backend == backend)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            self.remove(k);
        }
        keys.len()
    }

    /// Drops every entry idle for the idle timeout as of `now`; returns how many.
    pub fn expire(&mut self, now: Duration) -> usize {
        let mut n = 0;
        while let Some((&(seen, _), _)) = self.order.first_key_value() {
            if now.saturating_sub(seen) < self.idle {
                break;
            }
            if let Some((_, k)) = self.order.pop_first() {
                self.map.remove(&k);
                n += 1;
            }
        }
        n
    }

    /// Every entry, least recently seen first (what a replicator sends, oldest to newest).
    pub fn iter(&self) -> impl Iterator<Item = (&K, Entry)> + '_ {
        self.order
            .values()
            .filter_map(|k| self.map.get_key_value(k).map(|(k, s)| (k, s.entry)))
    }

    /// Folds a peer's entries in: for a key both sides know, the entry seen more recently
    /// wins; entries already idle as of `now` are ignored; the bound still holds (the least
    /// recent entries are evicted). Returns how many entries were taken.
    pub fn merge(&mut self, entries: impl IntoIterator<Item = (K, Entry)>, now: Duration) -> usize {
        let mut taken = 0;
        for (key, entry) in entries {
            if !self.live(&entry, now) {
                continue;
            }
            match self.map.get(&key).copied() {
                Some(slot) if slot.entry.last_seen >= entry.last_seen => {}
                Some(slot) => {
                    self.order.remove(&(slot.entry.last_seen, slot.seq));
                    self.put(key, entry, Some((entry.last_seen, entry.backend)));
                    taken += 1;
                }
                None => {
                    if self.map.len() >= self.capacity {
                        match self.order.first_key_value() {
                            // Older than everything we hold in a full table: not worth keeping.
                            Some((&(oldest, _), _)) if entry.last_seen < oldest => continue,
                            _ => {}
                        }
                        if let Some((_, old)) = self.order.pop_first() {
                            self.map.remove(&old);
                        }
                    }
                    // A peer's entry is not reported back to peers until it changes here.
                    self.put(key, entry, Some((entry.last_seen, entry.backend)));
                    taken += 1;
                }
            }
        }
        taken
    }

    /// Whether `key`'s entry should be sent to peers now, marking it sent if so: it was
    /// never reported, its server changed since, or its last report is `every` old (so a
    /// peer's copy of an active session is refreshed before it idles out, without a
    /// message per request). Entries merged from a peer count as reported.
    pub fn take_report(&mut self, key: &K, now: Duration, every: Duration) -> Option<Entry> {
        let slot = self.map.get_mut(key)?;
        let due = match slot.reported {
            Some((at, backend)) => backend != slot.entry.backend || now.saturating_sub(at) >= every,
            None => true,
        };
        due.then(|| {
            slot.reported = Some((now, slot.entry.backend));
            slot.entry
        })
    }

    fn live(&self, entry: &Entry, now: Duration) -> bool {
        now.saturating_sub(entry.last_seen) < self.idle
    }

    fn touch(&mut self, key: &K, slot: Slot, backend: BackendId, seen: Duration) {
        self.order.remove(&(slot.entry.last_seen, slot.seq));
        self.put(
            key.clone(),
            Entry {
                backend,
                last_seen: seen,
            },
            slot.reported,
        );
    }

    fn put(&mut self, key: K, entry: Entry, reported: Option<(Duration, BackendId)>) {
        self.seq += 1;
        let seq = self.seq;
        self.order.insert((entry.last_seen, seq), key.clone());
        self.map.insert(
            key,
            Slot {
                entry,
                seq,
                reported,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    fn t(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn lookup_refreshes_and_idle_entries_expire() {
        let mut tab = PersistTable::new(10, t(10));
        tab.insert(PersistKey(1), BackendId(7), t(0));
        assert_eq!(tab.lookup(&PersistKey(1), t(9)), Some(BackendId(7)));
        // Refreshed at 9: still alive at 18, gone at 19.
        assert_eq!(tab.peek(&PersistKey(1), t(18)), Some(BackendId(7)));
        assert_eq!(tab.peek(&PersistKey(1), t(19)), None);
        assert_eq!(tab.lookup(&PersistKey(1), t(19)), None);
        assert!(tab.is_empty());
    }

    #[test]
    fn full_table_evicts_least_recently_seen() {
        let mut tab = PersistTable::new(2, t(100));
        tab.insert(PersistKey(1), BackendId(1), t(1));
        tab.insert(PersistKey(2), BackendId(2), t(2));
        tab.lookup(&PersistKey(1), t(3));
        let evicted = tab.insert(PersistKey(3), BackendId(3), t(4));
        assert_eq!(evicted, Some(PersistKey(2)));
        assert_eq!(tab.len(), 2);
        assert_eq!(tab.peek(&PersistKey(1), t(4)), Some(BackendId(1)));
    }

    #[test]
    fn full_table_prefers_dropping_expired_entries() {
        let mut tab = PersistTable::new(2, t(10));
        tab.insert(PersistKey(1), BackendId(1), t(0));
        tab.insert(PersistKey(2), BackendId(2), t(5));
        assert_eq!(tab.insert(PersistKey(3), BackendId(3), t(12)), None);
        assert_eq!(tab.peek(&PersistKey(2), t(12)), Some(BackendId(2)));
    }

    #[test]
    fn remove_backend_forgets_only_its_sessions() {
        let mut tab = PersistTable::new(10, t(10));
        for k in 0..6 {
            tab.insert(PersistKey(k), BackendId((k % 2) as u32), t(0));
        }
        assert_eq!(tab.remove_backend(BackendId(1)), 3);
        assert!(tab.iter().all(|(_, e)| e.backend == BackendId(0)));
    }

    #[test]
    fn merge_keeps_the_newer_entry_and_skips_idle_ones() {
        let mut a = PersistTable::new(10, t(10));
        a.insert(PersistKey(1), BackendId(1), t(5));
        a.insert(PersistKey(2), BackendId(1), t(5));
        let peer = [
            (
                PersistKey(1),
                Entry {
                    backend: BackendId(2),
                    last_seen: t(6),
                },
            ),
            (
                PersistKey(2),
                Entry {
                    backend: BackendId(2),
                    last_seen: t(4),
                },
            ),
            (
                PersistKey(3),
                Entry {
                    backend: BackendId(3),
                    last_seen: t(0),
                },
            ),
        ];
        assert_eq!(a.merge(peer, t(12)), 1);
        assert_eq!(a.peek(&PersistKey(1), t(12)), Some(BackendId(2)));
        assert_eq!(a.peek(&PersistKey(2), t(12)), Some(BackendId(1)));
        assert_eq!(a.peek(&PersistKey(3), t(12)), None);
    }

    #[test]
    fn reports_are_due_when_new_moved_or_old_and_never_for_merged_entries() {
        let mut tab = PersistTable::new(10, t(100));
        let k = PersistKey(1);
        tab.insert(k, BackendId(1), t(0));
        assert!(tab.take_report(&k, t(0), t(25)).is_some());
        tab.insert(k, BackendId(1), t(10));
        assert_eq!(tab.take_report(&k, t(10), t(25)), None);
        tab.insert(k, BackendId(2), t(11));
        assert_eq!(
            tab.take_report(&k, t(11), t(25)).map(|e| e.backend),
            Some(BackendId(2))
        );
        tab.lookup(&k, t(40));
        assert!(tab.take_report(&k, t(40), t(25)).is_some());
        let peer = Entry {
            backend: BackendId(3),
            last_seen: t(41),
        };
        tab.merge([(PersistKey(2), peer), (k, peer)], t(41));
        assert_eq!(tab.take_report(&PersistKey(2), t(41), t(25)), None);
        assert_eq!(tab.take_report(&k, t(41), t(25)), None);
        assert_eq!(tab.take_report(&PersistKey(9), t(41), t(25)), None);
    }

    #[test]
    fn stable_hash_is_domain_separated_and_fixed() {
        assert_ne!(stable_hash(1, b"abc"), stable_hash(2, b"abc"));
        assert_ne!(stable_hash(1, b"abc"), stable_hash(1, b"abd"));
        // Peers exchange keys: the function must never change. FNV-1a of [1, 'a'] then mix.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in [1u8, b'a'] {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(stable_hash(1, b"a"), mix64(h));
        assert_eq!(mix64(0), 0);
    }

    #[test]
    fn rendezvous_moves_only_the_removed_servers_keys() {
        let servers: Vec<(BackendId, Vec<u8>, u32)> = (0..5)
            .map(|i| (BackendId(i), format!("10.0.0.{i}:80").into_bytes(), 1))
            .collect();
        let place = |set: &[(BackendId, Vec<u8>, u32)], k: u64| {
            rendezvous(k, set.iter().map(|(i, h, w)| (*i, h.as_slice(), *w)))
        };
        let smaller: Vec<_> = servers
            .iter()
            .filter(|s| s.0 != BackendId(2))
            .cloned()
            .collect();
        let mut counts = [0u32; 5];
        for k in 0..5000u64 {
            let before = place(&servers, k).unwrap();
            counts[before.0 as usize] += 1;
            let after = place(&smaller, k).unwrap();
            if before != BackendId(2) {
                assert_eq!(before, after, "key {k} moved although its server stayed");
            } else {
                assert_ne!(after, BackendId(2));
            }
        }
        // Every server gets a fair share (expected 1000 each).
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(rendezvous(1, [(BackendId(0), &b"x"[..], 0)]), None);
    }

    proptest! {
        #[test]
        fn bound_holds_and_entries_expire(
            cap in 1usize..20,
            ops in proptest::collection::vec((0u64..40, 0u32..4, 0u64..3), 1..200),
        ) {
            let mut tab = PersistTable::new(cap, 5 * S);
            let mut now = Duration::ZERO;
            for (k, b, dt) in ops {
                now += t(dt);
                tab.insert(PersistKey(k), BackendId(b), now);
                prop_assert!(tab.len() <= cap);
                prop_assert_eq!(tab.peek(&PersistKey(k), now), Some(BackendId(b)));
                prop_assert_eq!(tab.iter().count(), tab.len());
            }
            let later = now + 5 * S;
            tab.expire(later);
            prop_assert!(tab.is_empty());
        }

        #[test]
        fn merge_result_is_the_newest_of_both(
            mine in proptest::collection::vec((0u64..10, 0u32..4, 0u64..20), 0..30),
            theirs in proptest::collection::vec((0u64..10, 0u32..4, 0u64..20), 0..30),
        ) {
            let idle = 100 * S;
            let now = 20 * S;
            let mut a = PersistTable::new(64, idle);
            let mut newest: HashMap<u64, (u64, u32)> = HashMap::new();
            for &(k, b, at) in &mine {
                a.insert(PersistKey(k), BackendId(b), t(at));
            }
            // What `a` holds after its own (possibly out-of-order) inserts.
            for (k, e) in a.iter() {
                newest.insert(k.0, (e.last_seen.as_secs(), e.backend.0));
            }
            let peer: Vec<_> = theirs
                .iter()
                .map(|&(k, b, at)| (PersistKey(k), Entry { backend: BackendId(b), last_seen: t(at) }))
                .collect();
            for &(k, b, at) in &theirs {
                let cur = newest.get(&k).copied();
                if cur.is_none_or(|(seen, _)| at > seen) {
                    newest.insert(k, (at, b));
                }
            }
            a.merge(peer, now);
            prop_assert_eq!(a.len(), newest.len());
            for (k, (seen, b)) in newest {
                let e = a.iter().find(|(key, _)| key.0 == k).map(|(_, e)| e);
                prop_assert_eq!(e, Some(Entry { backend: BackendId(b), last_seen: t(seen) }));
            }
        }
    }
}
