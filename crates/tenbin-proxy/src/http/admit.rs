//! Connection admission: the frontend's connection count and, when a per-source limit is
//! configured, a sharded table of source addresses with their open connections and request
//! rate. One lock per connection open and close, only with per-source limits on; a request
//! costs one compare-and-swap on its connection's own source entry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::limits::{per_source, source_rate, Gcra, HttpLimits};
use super::stats::Reject;

const SHARDS: usize = 64;
/// Sources tracked per shard; past it (after dropping idle entries) new sources are refused
/// rather than letting a spread-out flood grow the table without bound.
const SHARD_CAPACITY: usize = 16 * 1024;

type Shard = Mutex<HashMap<IpAddr, Arc<Source>>>;

/// Who may open a connection on one frontend.
#[derive(Debug)]
pub(crate) struct Admission {
    max: usize,
    per_source: usize,
    rate: Option<Gcra>,
    open: AtomicUsize,
    sources: Option<Box<[Shard]>>,
    base: Instant,
}

/// One source address: its open connections and the GCRA arrival time of its requests.
#[derive(Debug, Default)]
struct Source {
    conns: AtomicUsize,
    tat: AtomicU64,
}

/// An admitted connection; dropping it gives the slot back (also on panic or cancel).
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    source: Option<(IpAddr, Arc<Source>)>,
}

impl Admission {
    pub(crate) fn new(limits: &HttpLimits) -> Arc<Self> {
        let sources = per_source(limits).then(|| {
            (0..SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        Arc::new(Admission {
            max: limits.max_connections,
            per_source: limits.max_connections_per_source,
            rate: source_rate(limits),
            open: AtomicUsize::new(0),
            sources,
            base: Instant::now(),
        })
    }

    /// Connections currently admitted.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes a slot for a connection from `ip`, or says which limit refuses it.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Reject> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Reject::FrontendConnections);
        }
        // From here the slot's Drop gives the count back on every path.
        let mut slot = Slot {
            admission: Arc::clone(self),
            source: None,
        };
        let Some(shard) = self.shard(ip) else {
            return Ok(slot);
        };
        let now = self.nanos(Instant::now());
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SHARD_CAPACITY && !map.contains_key(&ip) {
            map.retain(|_, s| !s.idle(now));
            if map.len() >= SHARD_CAPACITY {
                return Err(Reject::SourceConnections);
            }
        }
        let source = Arc::clone(map.entry(ip).or_default());
        let conns = source.conns.fetch_add(1, Ordering::Relaxed);
        slot.source = Some((ip, source));
        if self.per_source > 0 && conns >= self.per_source {
            drop(map);
            return Err(Reject::SourceConnections);
        }
        Ok(slot)
    }

    fn shard(&self, ip: IpAddr) -> Option<&Shard> {
        let shards = self.sources.as_ref()?;
        let folded = match ip {
            IpAddr::V4(a) => u64::from(a.to_bits()),
            IpAddr::V6(a) => {
                let b = a.to_bits();
                (b as u64) ^ ((b >> 64) as u64)
            }
        };
        let mixed = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
        shards.get(mixed as usize % SHARDS)
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }
}

impl Source {
    /// Nothing open and the rate bucket refilled: forgetting it changes nothing.
    fn idle(&self, now: u64) -> bool {
        self.conns.load(Ordering::Relaxed) == 0 && self.tat.load(Ordering::Relaxed) <= now
    }
}

impl Slot {
    /// Whether the source may send one more request now (always, without a rate limit).
    pub(crate) fn allow_request(&self) -> bool {
        let (Some(rate), Some((_, source))) = (self.admission.rate, &self.source) else {
            return true;
        };
        let now = self.admission.nanos(Instant::now());
        let mut tat = source.tat.load(Ordering::Relaxed);
        loop {
            let Some(next) = rate.admit(tat, now) else {
                return false;
            };
            match source
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => tat = actual,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        let Some((ip, source)) = self.source.take() else {
            return;
        };
        source.conns.fetch_sub(1, Ordering::Relaxed);
        if let Some(shard) = self.admission.shard(ip) {
            let now = self.admission.nanos(Instant::now());
            let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
            if source.idle(now) {
                map.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(per_source: usize, rps: u32) -> HttpLimits {
        HttpLimits {
            max_connections: 3,
            max_connections_per_source: per_source,
            requests_per_second_per_source: rps,
            ..HttpLimits::default()
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[tokio::test(start_paused = true)]
    async fn frontend_and_source_counts_come_back_on_drop() {
        let adm = Admission::new(&limits(2, 0));
        let a1 = adm.admit(A).unwrap();
        let a2 = adm.admit(A).unwrap();
        assert_eq!(adm.admit(A).unwrap_err(), Reject::SourceConnections);
        let b1 = adm.admit(B).unwrap();
        assert_eq!(adm.admit(B).unwrap_err(), Reject::FrontendConnections);
        assert_eq!(adm.open(), 3);
        drop((a1, a2, b1));
        assert_eq!(adm.open(), 0);
        let total: usize = adm
            .sources
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| s.lock().unwrap().len())
            .sum();
        assert_eq!(total, 0, "idle sources are forgotten");
        assert!(adm.admit(A).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_outlives_a_reconnect() {
        let adm = Admission::new(&limits(0, 2));
        let slot = adm.admit(A).unwrap();
        assert!(slot.allow_request() && slot.allow_request());
        assert!(!slot.allow_request());
        drop(slot);
        let slot = adm.admit(A).unwrap();
        assert!(
            !slot.allow_request(),
            "reconnecting does not refill the bucket"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(slot.allow_request());
        let other = adm.admit(B).unwrap();
        assert!(other.allow_request(), "another source has its own bucket");
    }
}
