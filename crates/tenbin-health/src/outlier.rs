//! Passive outlier detection: live traffic says a server is failing before a check does.
//!
//! Pure and time-injected. Consecutive connect errors, timeouts or 5xx answers eject a server
//! for `base * n` (n = how many times it was ejected, capped at `max`); never more than
//! `max_ejected_percent` of a pool is ejected at once (at least one may be). Ejection count
//! decays: a server that stays clean for `max` after its last ejection starts again from 1.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use crate::spec::OutlierSpec;

/// A passive observation of one request or connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PassiveSignal {
    Success,
    ConnectFailed,
    Timeout,
    Status5xx,
}

#[derive(Clone, Debug, Default)]
struct Entry {
    consecutive: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
    /// When the last ejection ended (or will end).
    last_ejection_end: Option<Instant>,
}

/// The detector of one pool.
#[derive(Clone, Debug)]
pub struct OutlierPool<K> {
    spec: OutlierSpec,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> OutlierPool<K> {
    pub fn new(spec: OutlierSpec) -> Self {
        OutlierPool {
            spec,
            entries: HashMap::new(),
        }
    }

    pub fn spec(&self) -> &OutlierSpec {
        &self.spec
    }

    /// Declare a member (signals for unknown members are ignored).
    pub fn add(&mut self, key: K) {
        self.entries.entry(key).or_default();
    }

    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key);
    }

    pub fn is_ejected<Q>(&self, key: &Q, now: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .get(key)
            .and_then(|e| e.ejected_until)
            .is_some_and(|t| now < t)
    }

    pub fn ejected_count(&self, now: Instant) -> usize {
        self.entries
            .values()
            .filter(|e| e.ejected_until.is_some_and(|t| now < t))
            .count()
    }

    /// A success ends a run of errors; it needs no clock.
    pub fn record_success<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(e) = self.entries.get_mut(key) {
            e.consecutive = 0;
        }
    }

    /// Fold one signal; returns `Some(until)` if this signal ejected the server.
    pub fn record<Q>(&mut self, key: &Q, signal: PassiveSignal, now: Instant) -> Option<Instant>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let spec = &self.spec;
        let entry = self.entries.get_mut(key)?;
        if signal == PassiveSignal::Success {
            entry.consecutive = 0;
            return None;
        }
        entry.consecutive = entry.consecutive.saturating_add(1);
        let already = entry.ejected_until.is_some_and(|t| now < t);
        if spec.consecutive_errors == 0 || already || entry.consecutive < spec.consecutive_errors {
            return None;
        }
        // Only now, about to eject, is the pool-wide count worth its O(n).
        let cap = (self.entries.len() * spec.max_ejected_percent as usize / 100).max(1);
        let ejected_now = self.ejected_count(now);
        if spec.max_ejected_percent == 0 || ejected_now >= cap {
            return None;
        }
        let spec = &self.spec;
        let entry = self.entries.get_mut(key)?;
        if entry
            .last_ejection_end
            .is_some_and(|t| now.saturating_duration_since(t) >= spec.max_ejection)
        {
            entry.ejections = 0;
        }
        entry.ejections = entry.ejections.saturating_add(1);
        let length = spec
            .base_ejection
            .saturating_mul(entry.ejections)
            .min(spec.max_ejection);
        let until = now + length;
        entry.ejected_until = Some(until);
        entry.last_ejection_end = Some(until);
        entry.consecutive = 0;
        Some(until)
    }

    /// The earliest moment an ejection ends, for a driver's timer.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| e.ejected_until)
            .filter(|t| *t > now)
            .min()
    }

    /// Panic mode: fewer than `panic_threshold_percent` of the pool usable. `usable` counts the
    /// members that pass active checks and are not ejected.
    pub fn panics(&self, usable: usize, total: usize) -> bool {
        total > 0 && usable * 100 < total * self.spec.panic_threshold_percent as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec() -> OutlierSpec {
        OutlierSpec {
            consecutive_errors: 3,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(75),
            max_ejected_percent: 50,
            panic_threshold_percent: 50,
        }
    }

    fn fail(p: &mut OutlierPool<u32>, k: u32, n: u32, now: Instant) -> Option<Instant> {
        (0..n)
            .filter_map(|_| p.record(&k, PassiveSignal::ConnectFailed, now))
            .last()
    }

    #[test]
    fn ejection_grows_and_is_capped() {
        let t0 = Instant::now();
        let mut p = OutlierPool::new(spec());
        (0..4).for_each(|k| p.add(k));
        assert_eq!(fail(&mut p, 0, 2, t0), None);
        assert_eq!(fail(&mut p, 0, 1, t0), Some(t0 + Duration::from_secs(30)));
        assert!(p.is_ejected(&0, t0 + Duration::from_secs(29)));
        assert!(!p.is_ejected(&0, t0 + Duration::from_secs(30)));
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(fail(&mut p, 0, 3, t1), Some(t1 + Duration::from_secs(60)));
        let t2 = t1 + Duration::from_secs(61);
        assert_eq!(
            fail(&mut p, 0, 3, t2),
            Some(t2 + Duration::from_secs(75)),
            "capped"
        );
    }

    #[test]
    fn success_resets_the_run_of_errors() {
        let t0 = Instant::now();
        let mut p = OutlierPool::new(spec());
        p.add(7);
        fail(&mut p, 7, 2, t0);
        p.record(&7, PassiveSignal::Success, t0);
        assert_eq!(fail(&mut p, 7, 2, t0), None);
        assert!(p.record(&7, PassiveSignal::Status5xx, t0).is_some());
    }

    #[test]
    fn at_most_the_capped_share_is_ejected() {
        let t0 = Instant::now();
        let mut p = OutlierPool::new(spec());
        (0..4).for_each(|k| p.add(k));
        assert!(fail(&mut p, 0, 3, t0).is_some());
        assert!(fail(&mut p, 1, 3, t0).is_some());
        assert_eq!(fail(&mut p, 2, 3, t0), None, "50% of 4 already ejected");
        assert_eq!(p.ejected_count(t0), 2);
        assert_eq!(p.next_expiry(t0), Some(t0 + Duration::from_secs(30)));
        // once they return, the third may go
        let t1 = t0 + Duration::from_secs(30);
        assert!(fail(&mut p, 2, 3, t1).is_some());
    }

    #[test]
    fn ejection_count_decays_after_a_clean_period() {
        let t0 = Instant::now();
        let mut p = OutlierPool::new(spec());
        p.add(1);
        fail(&mut p, 1, 3, t0);
        let late = t0 + Duration::from_secs(30 + 75 + 30);
        assert_eq!(
            fail(&mut p, 1, 3, late),
            Some(late + Duration::from_secs(30))
        );
    }

    #[test]
    fn panic_threshold() {
        let p: OutlierPool<u32> = OutlierPool::new(spec());
        assert!(p.panics(1, 3));
        assert!(!p.panics(2, 4));
        assert!(p.panics(0, 1));
        assert!(!p.panics(0, 0));
    }
}
