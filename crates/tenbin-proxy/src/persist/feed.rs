//! The persistence table's change feed and merge, the seam session sync stands on: a
//! [`Feed`] installed on a [`Persistence`] receives each learned session that peers should
//! hear about (new, moved to another server, or refreshed after a quarter of the idle
//! timeout), through a bounded channel that never blocks the request path: when it is full
//! the change is dropped and counted in [`Feed::lost`], and the sync side resyncs in full.
//! [`Persistence::merge`] folds a peer's entries in (the newer entry wins).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tenbin_core::persist::{Entry, PersistKey};
use tenbin_core::BackendId;
use tokio::sync::mpsc;

use super::Persistence;

/// One session a table learned, for peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    /// The table's name (the pool's).
    pub table: Arc<str>,
    pub key: PersistKey,
    pub server: BackendId,
    /// On the persistence clock (wall time since the Unix epoch).
    pub last_seen: Duration,
}

/// The sending side of a change feed, shared by every table that reports into it.
#[derive(Clone, Debug)]
pub struct Feed {
    tx: mpsc::Sender<Learned>,
    lost: Arc<AtomicU64>,
}

impl Feed {
    /// A feed holding at most `bound` changes, and its receiving end.
    pub fn channel(bound: usize) -> (Feed, mpsc::Receiver<Learned>) {
        let (tx, rx) = mpsc::channel(bound.max(1));
        (
            Feed {
                tx,
                lost: Arc::default(),
            },
            rx,
        )
    }

    /// Changes dropped because the channel was full (or closed) since the feed was made.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn send(&self, change: Learned) {
        if self.tx.try_send(change).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Persistence {
    /// Reports learned sessions of this table, named `table`, into `feed` from now on.
    pub fn set_feed(&self, table: &str, feed: Feed) {
        self.feed.store(Some(Arc::new((Arc::from(table), feed))));
    }

    /// Folds a peer's entries in; `now` is this table's clock. Returns how many were taken.
    pub fn merge(&self, entries: Vec<(PersistKey, Entry)>, now: Duration) -> usize {
        self.table().merge(entries, now)
    }

    /// Pins `key` to `server` and, under the same lock, tells the feed if peers should
    /// hear of it (the send itself happens after the lock is released).
    pub(super) fn learn_and_report(&self, key: PersistKey, server: BackendId, now: Duration) {
        let feed = self.feed.load();
        let due = {
            let mut table = self.table();
            if table.insert(key, server, now).is_some() {
                self.counts
                    .evictions
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let every = (self.config.idle_timeout / 4).max(Duration::from_secs(1));
            feed.as_ref()
                .and_then(|_| table.take_report(&key, now, every))
        };
        if let (Some(feed), Some(e)) = (feed.as_deref(), due) {
            feed.1.send(Learned {
                table: Arc::clone(&feed.0),
                key,
                server: e.backend,
                last_seen: e.last_seen,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::persist::{PersistConfig, PersistMode};

    fn table(clock: Arc<AtomicU64>) -> Persistence {
        let mut cfg = PersistConfig::new(PersistMode::Source, "");
        cfg.idle_timeout = Duration::from_secs(40);
        Persistence::with_clock(
            cfg,
            Arc::new(move || Duration::from_secs(clock.load(Ordering::Relaxed))),
        )
    }

    #[test]
    fn learned_sessions_reach_the_feed_once_per_change_or_refresh() {
        let clock = Arc::new(AtomicU64::new(100));
        let p = table(Arc::clone(&clock));
        let (feed, mut rx) = Feed::channel(2);
        p.set_feed("web", feed.clone());
        let t = |s| Duration::from_secs(s);
        p.learn(PersistKey(1), BackendId(1), t(100));
        p.learn(PersistKey(1), BackendId(1), t(101));
        let got = rx.try_recv().unwrap();
        assert_eq!(
            (&*got.table, got.key, got.server, got.last_seen),
            ("web", PersistKey(1), BackendId(1), t(100))
        );
        assert!(
            rx.try_recv().is_err(),
            "a refresh within idle/4 is not sent"
        );
        p.learn(PersistKey(1), BackendId(2), t(102));
        assert_eq!(rx.try_recv().unwrap().server, BackendId(2));
        p.learn(PersistKey(1), BackendId(2), t(112));
        assert_eq!(rx.try_recv().unwrap().last_seen, t(112));
        // A full channel drops and counts; it never blocks the request path.
        for k in 10..14 {
            p.learn(PersistKey(k), BackendId(1), t(112));
        }
        assert_eq!(feed.lost(), 2);
    }

    #[test]
    fn merged_entries_are_served_and_not_echoed() {
        let clock = Arc::new(AtomicU64::new(100));
        let p = table(clock);
        let (feed, mut rx) = Feed::channel(8);
        p.set_feed("web", feed);
        let e = Entry {
            backend: BackendId(3),
            last_seen: Duration::from_secs(90),
        };
        assert_eq!(p.merge(vec![(PersistKey(5), e)], p.current()), 1);
        assert_eq!(p.lookup(PersistKey(5), p.current()), Some(BackendId(3)));
        // Served here within the report interval: nothing goes back to the peer.
        p.learn(PersistKey(5), BackendId(3), Duration::from_secs(95));
        assert!(rx.try_recv().is_err());
    }
}
