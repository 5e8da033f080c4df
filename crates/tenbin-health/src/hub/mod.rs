//! The one place health results are folded together and published.
//!
//! Checks, agent replies and passive signals come in; one `Arc<HealthSnapshot>` goes out on a
//! `watch` channel, replaced only when something visible changed. Every method takes `now`, so
//! the folding is deterministic under test; the async [`HealthHub::run_timers`] only wakes it
//! when an ejection ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tenbin_core::ServerState;
use tokio::sync::{watch, Notify};

use crate::agent::AgentReply;
use crate::hysteresis::Hysteresis;
use crate::outcome::CheckResult;
use crate::outlier::OutlierPool;
pub use crate::outlier::PassiveSignal;
use crate::snapshot::HealthSnapshot;
use crate::spec::OutlierSpec;
use crate::target::TargetKey;

mod fold;
use fold::{evaluate_pool, Pool, Target};

/// How a target is registered.
#[derive(Clone, Copy, Debug)]
pub struct TargetOptions {
    /// Actively checked: starts `Unchecked`. Otherwise it starts (and stays) `Active`.
    pub checked: bool,
    pub rise: u32,
    pub fall: u32,
    /// Admin intent from the config: `Active`, `Draining` or `Maintenance`.
    pub admin: ServerState,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            checked: true,
            rise: 2,
            fall: 3,
            admin: ServerState::Active,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    pools: BTreeMap<Arc<str>, Pool>,
    version: u64,
}

/// Folds results and publishes the snapshot. Share it in an `Arc`.
#[derive(Debug)]
pub struct HealthHub {
    inner: Mutex<Inner>,
    tx: watch::Sender<Arc<HealthSnapshot>>,
    wake: Notify,
}

/// The cheap handle the proxy reports live-traffic outcomes through.
#[derive(Clone, Debug)]
pub struct PassiveHandle {
    hub: Arc<HealthHub>,
}

impl PassiveHandle {
    /// Report one request's or connection's outcome, at the tokio clock's now.
    pub fn report(&self, key: &TargetKey, signal: PassiveSignal) {
        self.report_names(&key.pool, &key.server, signal);
    }

    /// [`PassiveHandle::report`] by names, without building a key (no allocation on the
    /// data path).
    pub fn report_names(&self, pool: &str, server: &str, signal: PassiveSignal) {
        // Successes (nearly every call) need no clock read.
        self.hub.passive_at(pool, server, signal, || {
            tokio::time::Instant::now().into_std()
        });
    }
}

impl HealthHub {
    pub fn new() -> Arc<Self> {
        let (tx, _) = watch::channel(Arc::new(HealthSnapshot::default()));
        Arc::new(HealthHub {
            inner: Mutex::new(Inner::default()),
            tx,
            wake: Notify::new(),
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<HealthSnapshot>> {
        self.tx.subscribe()
    }

    pub fn snapshot(&self) -> Arc<HealthSnapshot> {
        self.tx.borrow().clone()
    }

    pub fn passive_handle(self: &Arc<Self>) -> PassiveHandle {
        PassiveHandle { hub: self.clone() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while folding cannot leave the maps half-updated in a way that matters more
        // than losing health altogether, so keep going with the data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Declare a pool, with passive detection if `outlier` is given (again after a reload).
    pub fn add_pool(&self, pool: &str, outlier: Option<OutlierSpec>, now: Instant) {
        let mut inner = self.lock();
        let p = inner.pools.entry(Arc::from(pool)).or_insert_with(|| Pool {
            outlier: None,
            targets: BTreeMap::new(),
        });
        // An unchanged spec (a reload) keeps running ejections.
        if p.outlier.as_ref().map(|d| d.spec()) != outlier.as_ref() {
            let mut det = outlier.map(OutlierPool::new);
            if let Some(d) = det.as_mut() {
                p.targets.keys().for_each(|k| d.add(k.clone()));
            }
            p.outlier = det;
        }
        self.publish(&mut inner, now);
    }

    /// Declare a target (its pool is created without passive detection if unknown). Declaring
    /// a known target again (a config reload) updates its options and keeps its health; only
    /// a change of `checked`, `rise` or `fall` restarts its checks' history.
    pub fn add_target(&self, key: &TargetKey, opts: TargetOptions, now: Instant) {
        let mut inner = self.lock();
        let p = inner.pools.entry(key.pool.clone()).or_insert_with(|| Pool {
            outlier: None,
            targets: BTreeMap::new(),
        });
        if let Some(d) = p.outlier.as_mut() {
            d.add(key.server.clone());
        }
        let fresh = |opts: TargetOptions| Target {
            opts,
            hyst: Hysteresis::new(opts.rise, opts.fall),
            check_reason: if opts.checked {
                "not checked yet"
            } else {
                "not checked"
            }
            .into(),
            agent_admin: None,
            agent_oper: None,
            agent_reason: None,
            percent: 100,
            maxconn: None,
            state: ServerState::Unchecked,
            since: now,
        };
        match p.targets.get_mut(&key.server) {
            Some(t) => {
                let old = t.opts;
                if (old.checked, old.rise, old.fall) != (opts.checked, opts.rise, opts.fall) {
                    let f = fresh(opts);
                    t.hyst = f.hyst;
                    t.check_reason = f.check_reason;
                }
                t.opts = opts;
            }
            None => {
                p.targets.insert(key.server.clone(), fresh(opts));
            }
        }
        self.publish(&mut inner, now);
    }

    /// Forget a pool and its targets.
    pub fn remove_pool(&self, pool: &str, now: Instant) {
        let mut inner = self.lock();
        inner.pools.remove(pool);
        self.publish(&mut inner, now);
    }

    /// The servers currently declared in `pool`.
    pub fn servers(&self, pool: &str) -> Vec<Arc<str>> {
        let inner = self.lock();
        inner
            .pools
            .get(pool)
            .map(|p| p.targets.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn remove_target(&self, key: &TargetKey, now: Instant) {
        let mut inner = self.lock();
        if let Some(p) = inner.pools.get_mut(&key.pool) {
            p.targets.remove(&key.server);
            if let Some(d) = p.outlier.as_mut() {
                d.remove(&key.server);
            }
        }
        self.publish(&mut inner, now);
    }

    /// Fold one active check result.
    pub fn report_check(&self, key: &TargetKey, result: CheckResult, now: Instant) {
        let mut inner = self.lock();
        let Some(t) = target_mut(&mut inner, key) else {
            return;
        };
        t.hyst.observe(result.verdict);
        t.check_reason = result.reason;
        self.publish(&mut inner, now);
    }

    /// Record why a check could not run (e.g. no CAP_NET_RAW); the state does not move.
    pub fn note_check(&self, key: &TargetKey, reason: String, now: Instant) {
        let mut inner = self.lock();
        let Some(t) = target_mut(&mut inner, key) else {
            return;
        };
        t.check_reason = reason;
        self.publish(&mut inner, now);
    }

    /// Fold one agent reply. Unreachable agents are not reported: connectivity is the active
    /// check's business (HAProxy's rule too).
    pub fn report_agent(&self, key: &TargetKey, reply: &AgentReply, now: Instant) {
        let mut inner = self.lock();
        let Some(t) = target_mut(&mut inner, key) else {
            return;
        };
        if let Some(p) = reply.percent {
            t.percent = p;
        }
        if reply.maxconn.is_some() {
            t.maxconn = reply.maxconn;
        }
        if reply.admin.is_some() {
            t.agent_admin = reply.admin;
        }
        if reply.oper.is_some() {
            t.agent_oper = reply.oper;
        }
        if reply.admin.is_some() || reply.oper.is_some() || reply.reason.is_some() {
            t.agent_reason = reply.reason.clone();
        }
        self.publish(&mut inner, now);
    }

    /// Fold one passive signal.
    pub fn passive(&self, key: &TargetKey, signal: PassiveSignal, now: Instant) {
        self.passive_names(&key.pool, &key.server, signal, now);
    }

    /// [`HealthHub::passive`] by names.
    pub fn passive_names(&self, pool: &str, server: &str, signal: PassiveSignal, now: Instant) {
        self.passive_at(pool, server, signal, || now);
    }

    fn passive_at(
        &self,
        pool: &str,
        server: &str,
        signal: PassiveSignal,
        now: impl FnOnce() -> Instant,
    ) {
        let mut inner = self.lock();
        let Some(p) = inner.pools.get_mut(pool) else {
            return;
        };
        let Some(det) = p.outlier.as_mut() else {
            return;
        };
        if signal == PassiveSignal::Success {
            det.record_success(server);
            return;
        }
        let now = now();
        if det.record(server, signal, now).is_some() {
            self.publish(&mut inner, now);
            self.wake.notify_one();
        }
    }

    /// Re-evaluate time-dependent state (ejections that ended).
    pub fn handle_timeout(&self, now: Instant) {
        let mut inner = self.lock();
        self.publish(&mut inner, now);
    }

    /// The earliest moment an ejection ends.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let inner = self.lock();
        inner
            .pools
            .values()
            .filter_map(|p| p.outlier.as_ref().and_then(|d| d.next_expiry(now)))
            .min()
    }

    /// Republish when ejections end; runs until the task is dropped.
    pub async fn run_timers(self: Arc<Self>) {
        loop {
            let now = tokio::time::Instant::now();
            match self.poll_timeout(now.into_std()) {
                Some(at) => {
                    let at = now + at.saturating_duration_since(now.into_std());
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {
                            self.handle_timeout(tokio::time::Instant::now().into_std());
                        }
                        _ = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    fn publish(&self, inner: &mut Inner, now: Instant) {
        let mut snap = HealthSnapshot::default();
        for (name, pool) in inner.pools.iter_mut() {
            let ph = evaluate_pool(name, pool, now, &mut snap);
            snap.pools.insert(name.clone(), ph);
        }
        let changed = {
            let cur = self.tx.borrow();
            cur.targets != snap.targets || cur.pools != snap.pools
        };
        if changed {
            inner.version += 1;
            snap.version = inner.version;
            self.tx.send_replace(Arc::new(snap));
        }
    }
}

fn target_mut<'a>(inner: &'a mut Inner, key: &TargetKey) -> Option<&'a mut Target> {
    inner.pools.get_mut(&key.pool)?.targets.get_mut(&key.server)
}
