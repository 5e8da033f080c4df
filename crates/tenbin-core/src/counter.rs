//! Counters for the hot path: a [`Counter`] and a latency [`Histogram`] sharded over
//! cache-line-padded slots, so threads that count the same event (every worker serving one
//! frontend) do not bounce one cache line between cores. A thread always writes the same
//! shard (assigned once, round robin); a read sums the shards, which is what a scrape does a
//! few times a minute. Values only grow, so a sum read while writers run is a value the
//! counter held (or will hold) and never goes backwards between two reads.
//!
//! No lock, no allocation after construction, no clock: durations are handed in.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Shards per counter. More than the cores these hosts run tokio workers on; beyond that
/// threads share shards, which is still correct, only less spread.
pub const SHARDS: usize = 8;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
}

fn shard() -> usize {
    SHARD.with(|s| *s)
}

/// 128 bytes: two cache lines on x86_64, whose adjacent-line prefetcher pulls pairs.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A monotonic count, sharded. See the module docs.
#[derive(Debug, Default)]
pub struct Counter {
    shards: [Padded; SHARDS],
}

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.shards[shard()].0.fetch_add(n, Relaxed);
    }

    /// The sum over every shard.
    pub fn get(&self) -> u64 {
        self.shards.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

/// Upper bounds (inclusive, seconds) of [`Histogram`]'s buckets, from 1 ms to 10 s: the range
/// of request latencies a proxy reports; slower ones land in `+Inf`.
pub const LATENCY_BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const SLOTS: usize = LATENCY_BOUNDS.len() + 1;

/// One thread's buckets (`+Inf` last) and sum in nanoseconds: 120 bytes, one padded block.
#[derive(Debug, Default)]
#[repr(align(128))]
struct HistShard {
    buckets: [AtomicU64; SLOTS],
    sum_nanos: AtomicU64,
}

/// A latency histogram over [`LATENCY_BOUNDS`], sharded like [`Counter`].
#[derive(Debug, Default)]
pub struct Histogram {
    shards: [HistShard; SHARDS],
}

/// What a [`Histogram`] held when read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Per bound of [`LATENCY_BOUNDS`], the observations at or below it (cumulative).
    pub cumulative: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let secs = d.as_secs_f64();
        let slot = LATENCY_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        let s = &self.shards[shard()];
        s.buckets[slot].fetch_add(1, Relaxed);
        s.sum_nanos.fetch_add(nanos, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut per = [0u64; SLOTS];
        let mut sum = 0u64;
        for s in &self.shards {
            for (p, b) in per.iter_mut().zip(&s.buckets) {
                *p += b.load(Relaxed);
            }
            sum = sum.saturating_add(s.sum_nanos.load(Relaxed));
        }
        let mut running = 0;
        let cumulative = LATENCY_BOUNDS
            .iter()
            .zip(per)
            .map(|(b, n)| {
                running += n;
                (*b, running)
            })
            .collect();
        HistogramSnapshot {
            cumulative,
            count: per.iter().sum(),
            sum_seconds: sum as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_from_many_threads_add_up() {
        let c = Arc::new(Counter::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || (0..1000).for_each(|_| c.inc()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        c.add(5);
        assert_eq!(c.get(), 12_005);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(1)); // on the first bound: counted there
        h.observe(Duration::from_micros(1001));
        h.observe(Duration::from_millis(300));
        h.observe(Duration::from_secs(60)); // only in +Inf
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.cumulative[0], (0.001, 1));
        assert_eq!(s.cumulative[1], (0.0025, 2));
        let half = s.cumulative.iter().find(|(b, _)| *b == 0.5).unwrap();
        assert_eq!(half.1, 3);
        assert_eq!(
            s.cumulative.last().unwrap().1,
            3,
            "60 s is above every bound"
        );
        assert!(
            (s.sum_seconds - 60.302_001).abs() < 1e-9,
            "{}",
            s.sum_seconds
        );
    }

    #[test]
    fn a_shard_is_its_own_cache_lines() {
        assert_eq!(std::mem::align_of::<Padded>(), 128);
        assert_eq!(std::mem::size_of::<HistShard>(), 128);
    }
}
