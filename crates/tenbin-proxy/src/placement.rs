//! Which worker a session should run on: a `mode tcp` relay, bulk or interactive, or a plain
//! keep-alive HTTP/1.1 connection.
//!
//! A connection lives on the worker that accepted it, and `SO_REUSEPORT` picks that worker by
//! a hash of the 4-tuple, blind to load. With pinned workers the kernel cannot move a worker
//! off a CPU that something else also wants (softirqs, a noisy neighbour, the client and the
//! backends on a small host), so one bulk stream that lands there runs at the share of the
//! CPU it gets: on the 2-core bench host, 5.9-6.6 Gbit/s on the worker sharing its CPU with
//! iperf3 against 7.9-8.2 on the other one, depending on the hash alone.
//!
//! Each worker measures how contended it is from the kernel's own accounting of its thread
//! (`/proc/thread-self/schedstat`: time on the CPU and time runnable but waiting for it) and
//! publishes the fractions of the last interval. A relay that keeps moving bytes asks, every
//! [`CHECK_BYTES`], whether another worker would serve it better ([`choose`]: this worker
//! waits a good part of the time, another one is mostly idle and waits much less); if so the
//! session pauses where no byte is in flight and continues on that worker (`l4::tcp`).
//!
//! Request-sized traffic asks too, every [`CHECK_REQUESTS`] requests: a relay direction
//! after that many small chunks, a keep-alive HTTP connection (plain TCP, not TLS) between
//! two requests (`http::server`, which hands the socket to the other worker's reactor). Such
//! a session brings one client's share, so any worker not near full has room for it
//! ([`Brings::Requests`]) and a few go per sample. On the 2-core bench, whose client and
//! backends share CPU 0 with worker 0, the connections gather on worker 1 until it is near
//! full: 2-worker req/s against the binary before, 10 interleaved rounds each, x1.32 in
//! mode tcp and x1.21 in mode http.
//!
//! The decision is a pure function of the published loads; [`Registry`] holds them and the
//! runtime handles, and a thread-local tells code running on a worker which one it is on.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

/// A relay asks again after moving this many bytes (at 1 GB/s: every ~32 ms).
pub(crate) const CHECK_BYTES: u64 = 32 << 20;
/// A keep-alive HTTP connection asks after this many requests, a relay direction after this
/// many small chunks (requests or answers, `l4::copy::BATCHED_UP_TO`).
pub(crate) const CHECK_REQUESTS: u32 = 16;
/// A session that moved stays where it is for at least this long.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);
/// How often each worker reads its own scheduler statistics.
pub(crate) const SAMPLE: Duration = Duration::from_millis(100);

/// Leave a worker that waited for its CPU at least this share of the last interval...
const CONTENDED: f32 = 0.15;
/// ...for one that used (ran plus waited) at most this share of it ([`Brings::room`])...
const ROOMY: f32 = 0.5;
const ROOMY_FOR_REQUESTS: f32 = 0.85;
/// ...and waited less by at least this much.
const MARGIN: f32 = 0.10;

/// What a session brings to the worker it moves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Brings {
    /// A bulk stream takes all the CPU it gets: only a worker at most half used has room,
    /// and one stream per target and sample moves.
    Bulk,
    /// A request/response session (a keep-alive HTTP connection, an interactive tcp relay)
    /// is one client's share of the worker: any worker not near full has room, and a few
    /// move per target and sample ([`REQUESTS_PER_SAMPLE`]).
    Requests,
}

/// Request/response sessions that may choose one target between two samples of its load.
pub(crate) const REQUESTS_PER_SAMPLE: u32 = 8;

impl Brings {
    fn room(self) -> f32 {
        match self {
            Brings::Bulk => ROOMY,
            Brings::Requests => ROOMY_FOR_REQUESTS,
        }
    }

    fn per_sample(self) -> u32 {
        match self {
            Brings::Bulk => 1,
            Brings::Requests => REQUESTS_PER_SAMPLE,
        }
    }
}

/// One worker's last interval: the shares of wall time its thread ran and waited to run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Load {
    pub running: f32,
    pub waiting: f32,
}

impl Load {
    /// From two readings of `schedstat` (run ns, wait ns) `wall` apart.
    pub fn between(before: (u64, u64), after: (u64, u64), wall: Duration) -> Load {
        let wall = wall.as_nanos().max(1) as f64;
        let share = |a: u64, b: u64| (b.saturating_sub(a) as f64 / wall).min(1.0) as f32;
        Load {
            running: share(before.0, after.0),
            waiting: share(before.1, after.1),
        }
    }

    fn pack(self) -> u32 {
        let q = |f: f32| (f.clamp(0.0, 1.0) * 10_000.0) as u32;
        q(self.running) << 16 | q(self.waiting)
    }

    fn unpack(v: u32) -> Load {
        let f = |q: u32| q as f32 / 10_000.0;
        Load {
            running: f(v >> 16),
            waiting: f(v & 0xffff),
        }
    }
}

/// The worker a session on worker `me` should move to, if any: `me` waits for its CPU at
/// least [`CONTENDED`] of the time, and the least used other worker has room for what the
/// session `brings` and waits less by [`MARGIN`].
pub fn choose(me: usize, loads: &[Load], brings: Brings) -> Option<usize> {
    choose_among(me, loads.iter().copied(), brings)
}

/// [`choose`] over the loads as read, one per worker in order (no list is collected: a
/// session asks every few requests).
fn choose_among(
    me: usize,
    loads: impl Iterator<Item = Load> + Clone,
    brings: Brings,
) -> Option<usize> {
    let mine = loads.clone().nth(me)?;
    if mine.waiting < CONTENDED {
        return None;
    }
    let used = |l: &Load| l.running + l.waiting;
    let (i, best) = loads
        .enumerate()
        .filter(|&(i, _)| i != me)
        .min_by(|a, b| used(&a.1).total_cmp(&used(&b.1)))?;
    (used(&best) <= brings.room() && best.waiting + MARGIN <= mine.waiting).then_some(i)
}

/// The workers of a tier: their runtimes and their last published loads.
#[derive(Debug)]
pub(crate) struct Registry {
    handles: Vec<Handle>,
    loads: Vec<Slot>,
    /// Tests set loads by hand: the samplers stop publishing.
    #[cfg(test)]
    pub(crate) frozen: std::sync::atomic::AtomicBool,
}

/// One load per cache line: each worker writes only its own. `claimed`: how many sessions
/// chose this worker since its last sample; past [`Brings::per_sample`] no other one does
/// until the next sample shows the load they brought (many bulk sessions leaving one
/// contended worker at once would all pick the same idle one).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    load: AtomicU32,
    claimed: AtomicU32,
}

impl Registry {
    pub(crate) fn new(handles: Vec<Handle>) -> Arc<Registry> {
        let loads = handles.iter().map(|_| Slot::default()).collect();
        Arc::new(Registry {
            handles,
            loads,
            #[cfg(test)]
            frozen: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn publish(&self, worker: usize, load: Load) {
        if let Some(s) = self.loads.get(worker) {
            s.load.store(load.pack(), Ordering::Relaxed);
            s.claimed.store(0, Ordering::Relaxed);
        }
    }

    /// The last published loads, one per worker in order.
    fn published(&self) -> impl Iterator<Item = Load> + Clone + '_ {
        self.loads
            .iter()
            .map(|s| Load::unpack(s.load.load(Ordering::Relaxed)))
    }

    #[cfg(test)]
    pub(crate) fn loads(&self) -> Vec<Load> {
        self.published().collect()
    }

    /// [`choose`] for a session on worker `me`, at most [`Brings::per_sample`] sessions per
    /// target and sample.
    pub(crate) fn better(&self, me: usize, brings: Brings) -> Option<usize> {
        let to = choose_among(me, self.published(), brings)?;
        let before = self.loads[to].claimed.fetch_add(1, Ordering::Relaxed);
        (before < brings.per_sample()).then_some(to)
    }

    fn handle(&self, worker: usize) -> Option<&Handle> {
        self.handles.get(worker)
    }
}

thread_local! {
    static HERE: RefCell<Option<(usize, Arc<Registry>)>> = const { RefCell::new(None) };
}

/// Marks the calling thread as worker `index` of `registry`.
pub(crate) fn enter(index: usize, registry: Arc<Registry>) {
    HERE.with(|h| *h.borrow_mut() = Some((index, registry)));
}

/// The worker a session running here should move to, if any (none off the workers).
pub(crate) fn better(brings: Brings) -> Option<usize> {
    HERE.with(|h| {
        let here = h.borrow();
        let (me, registry) = here.as_ref()?;
        registry.better(*me, brings)
    })
}

/// The runtime of worker `to` of the tier the caller runs on: where a session that asked
/// [`better`] goes on.
pub(crate) fn worker(to: usize) -> Option<Handle> {
    HERE.with(|h| h.borrow().as_ref()?.1.handle(to).cloned())
}

/// This thread's time on the CPU and time waiting for it, in ns (none where the kernel has no
/// `schedstat`).
fn schedstat() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_ascii_whitespace().map(str::parse::<u64>);
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

/// Publishes worker `index`'s load every `every` (runs on that worker, never ends).
pub(crate) async fn sample(index: usize, registry: Arc<Registry>, every: Duration) {
    let Some(mut last) = schedstat() else {
        return std::future::pending().await;
    };
    let mut at = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(now), t) = (schedstat(), tokio::time::Instant::now()) else {
            continue;
        };
        #[cfg(test)]
        if registry.frozen.load(Ordering::Relaxed) {
            continue;
        }
        registry.publish(index, Load::between(last, now, t - at));
        (last, at) = (now, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(running: f32, waiting: f32) -> Load {
        Load { running, waiting }
    }

    #[test]
    fn a_contended_worker_hands_off_to_an_idle_one() {
        // The bench case: the stream's worker shares its CPU with iperf3 (38% waiting).
        assert_eq!(
            choose(0, &[l(0.58, 0.38), l(0.0, 0.0)], Brings::Bulk),
            Some(1)
        );
        // The least used of several.
        assert_eq!(
            choose(2, &[l(0.4, 0.0), l(0.1, 0.0), l(0.6, 0.3)], Brings::Bulk),
            Some(1)
        );
    }

    #[test]
    fn no_move_without_contention_room_or_margin() {
        // Busy but not waiting: the CPU is this worker's own.
        assert_eq!(choose(1, &[l(0.0, 0.0), l(0.95, 0.02)], Brings::Bulk), None);
        // Contended, but the other worker is busy too: two sessions would share one CPU.
        assert_eq!(choose(0, &[l(0.6, 0.3), l(0.6, 0.01)], Brings::Bulk), None);
        // Contended, but the other one waits about as much.
        assert_eq!(choose(0, &[l(0.3, 0.2), l(0.1, 0.15)], Brings::Bulk), None);
        // One worker, or a worker index out of range.
        assert_eq!(choose(0, &[l(0.5, 0.5)], Brings::Bulk), None);
        assert_eq!(choose(3, &[l(0.5, 0.5), l(0.0, 0.0)], Brings::Bulk), None);
    }

    #[test]
    fn keep_alive_connections_also_fill_a_worker_that_is_busy_but_not_full() {
        // The 2-worker bench: worker 0 shares CPU 0 with the client and the backends, worker
        // 1 has CPU 1 to itself and runs two thirds of the time.
        let loads = [l(0.45, 0.30), l(0.66, 0.01)];
        assert_eq!(choose(0, &loads, Brings::Requests), Some(1));
        // A bulk stream would want all of CPU 1: it stays.
        assert_eq!(choose(0, &loads, Brings::Bulk), None);
        // Near full, or contended itself: no more connections go there.
        assert_eq!(
            choose(0, &[l(0.45, 0.30), l(0.86, 0.0)], Brings::Requests),
            None
        );
        assert_eq!(
            choose(0, &[l(0.45, 0.30), l(0.5, 0.25)], Brings::Requests),
            None
        );
        // An uncontended worker keeps its connections.
        assert_eq!(
            choose(0, &[l(0.6, 0.05), l(0.1, 0.0)], Brings::Requests),
            None
        );
    }

    #[test]
    fn a_few_connections_per_target_until_its_next_sample() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let registry = Registry::new(vec![rt.handle().clone(), rt.handle().clone()]);
        registry.publish(0, l(0.45, 0.3));
        registry.publish(1, l(0.6, 0.0));
        for _ in 0..REQUESTS_PER_SAMPLE {
            assert_eq!(registry.better(0, Brings::Requests), Some(1));
        }
        assert_eq!(registry.better(0, Brings::Requests), None);
        registry.publish(1, l(0.7, 0.0));
        assert_eq!(registry.better(0, Brings::Requests), Some(1));
    }

    #[test]
    fn loads_survive_publishing() {
        let registry = Registry::new(Vec::new());
        assert!(registry.loads().is_empty());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let registry = Registry::new(vec![rt.handle().clone(), rt.handle().clone()]);
        registry.publish(1, l(0.25, 0.5));
        registry.publish(7, l(1.0, 1.0)); // no such worker: ignored
        let got = registry.loads();
        assert_eq!(got[0], Load::default());
        assert!((got[1].running - 0.25).abs() < 1e-3 && (got[1].waiting - 0.5).abs() < 1e-3);
    }

    #[test]
    fn one_session_per_target_until_its_next_sample() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let registry = Registry::new(vec![rt.handle().clone(), rt.handle().clone()]);
        registry.publish(0, l(0.6, 0.4));
        registry.publish(1, l(0.0, 0.0));
        assert_eq!(registry.better(0, Brings::Bulk), Some(1));
        // A second bulk session on worker 0 in the same interval stays.
        assert_eq!(registry.better(0, Brings::Bulk), None);
        // Worker 1's next sample (still roomy) lets one more go.
        registry.publish(1, l(0.3, 0.0));
        assert_eq!(registry.better(0, Brings::Bulk), Some(1));
        assert_eq!(registry.better(0, Brings::Bulk), None);
    }

    #[test]
    fn shares_come_from_two_readings() {
        let load = Load::between((1_000, 500), (501_000, 250_500), Duration::from_secs(1));
        assert!((load.running - 0.0005).abs() < 1e-6, "{load:?}");
        let load = Load::between((0, 0), (600, 300), Duration::from_nanos(1000));
        assert_eq!(load, l(0.6, 0.3));
        // A counter that went backwards, or more than the wall time: clamped.
        assert_eq!(
            Load::between((9, 9), (0, 5_000), Duration::from_nanos(1000)),
            l(0.0, 1.0)
        );
    }

    #[test]
    fn off_the_workers_nothing_moves() {
        assert!(worker(0).is_none());
        assert_eq!(better(Brings::Bulk), None);
        assert_eq!(better(Brings::Requests), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_thread_reads_its_own_schedstat() {
        use nix::time::{clock_gettime, ClockId};
        let cpu = || {
            let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
            t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
        };
        let (before, _) = schedstat().expect("/proc/thread-self/schedstat");
        // 20 ms of this thread's own CPU time (however long the machine takes to give it),
        // then a switch, at which the kernel accounts it in schedstat too.
        let start = cpu();
        while cpu() < start + 20_000_000 {
            std::hint::black_box(start);
        }
        std::thread::sleep(Duration::from_millis(1));
        let (after, _) = schedstat().unwrap();
        assert!(after >= before + 20_000_000, "{before} -> {after} ns");
    }
}
