//! The proxy tier as one running, reconfigurable thing: every `[[frontend]]` with its
//! listeners and every `[[pool]]`, applied live from validated config.
//!
//! [`ProxyTier::start`] binds and serves a config; [`ProxyTier::apply`] moves the running
//! tier to another config without a restart:
//! - pools keep their `Pool` handle (connection counts, EWMA averages and slow-start ramps
//!   survive) and are reconfigured in place; each pool has one persistence table, shared by
//!   every frontend that uses it and kept while `[pool.persistence]` is unchanged;
//! - a frontend whose section (or whose pools' settings) changed gets a new handler, swapped
//!   in atomically: new connections and new requests on open HTTP connections use it, requests
//!   in flight finish on the old one;
//! - listeners whose address stays are never closed; new addresses are bound, removed ones
//!   stop accepting; a removed frontend's connections finish their requests and are cut after
//!   the grace period;
//! - everything that can fail (building handlers, loading certificates, binding) happens
//!   before anything changes, so a failed apply leaves the tier as it was;
//! - [`SyncTables`] is session sync's view of the persistence tables: a change feed
//!   installed on every table and a merge of peers' entries by server name.
//!
//! [`ProxyTier::stats`] reads every frontend's counters and every pool's servers as plain
//! data (`/metrics` renders it).
//!
//! Connections run on the node's `TaskTracker` and stop on its tokens: `shutdown` (stop
//! accepting, finish current requests) and `abort` (cut what is left). With
//! [`TierContext::threads`] they run thread per core on the tier's own worker runtimes
//! (`workers`), one `SO_REUSEPORT` listener per worker and address.

mod build;
mod listen;
mod stats;
mod sync;
mod workers;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tenbin_config::{Config, Frontend, Mode};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::HttpService;
use crate::l4::{L4Stats, UdpFrontend};
use crate::pool::Pool;

use build::{Built, PoolSlot, TlsRuntime};
use listen::{Conns, Handler};
pub use sync::{SyncEntry, SyncTables};

pub use stats::{FrontendStats, FrontendTraffic, L4Snapshot, PoolStats, ProxyStats};
use workers::Workers;

/// What the node hands the tier: its shutdown tokens, its task tracker, and the knobs the
/// config file does not carry.
#[derive(Clone, Debug)]
pub struct TierContext {
    /// Stop accepting and let current requests finish.
    pub shutdown: CancellationToken,
    /// The grace period is over: cut every connection still open.
    pub abort: CancellationToken,
    pub tracker: TaskTracker,
    /// How long a removed frontend's connections may take to finish.
    pub grace: Duration,
    /// The worker threads connections run on (see `workers`).
    pub threads: Threads,
}

/// The tier's worker threads, as `tenbin run --threads N [--pin-workers]` asks for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Threads {
    /// Worker threads, each with its own current-thread runtime and its own listener per
    /// TCP frontend address; 0: connections run on the caller's runtime.
    pub count: usize,
    /// Pin worker `i` to the `i`-th CPU the process may run on (NGINX's
    /// `worker_cpu_affinity auto`, HAProxy's `cpu-map auto:1/1-N`).
    pub pin: bool,
}

/// Why an apply changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("{0}")]
    Build(String),
    #[error("frontend {frontend}: cannot bind {addr}: {source}")]
    Bind {
        frontend: String,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// One frontend as it runs now.
#[derive(Clone, Debug)]
pub struct FrontendInfo {
    pub name: String,
    /// `http`, `https`, `tcp`, `tls` or `udp`.
    pub mode: &'static str,
    /// The addresses bound (the OS's choice where the config said port 0).
    pub listen: Vec<SocketAddr>,
    pub pools: Vec<String>,
}

/// The running proxy tier. See the module docs.
#[derive(Debug)]
pub struct ProxyTier {
    ctx: TierContext,
    workers: Workers,
    pools: BTreeMap<String, PoolSlot>,
    frontends: BTreeMap<String, Running>,
    sync: SyncTables,
}

#[derive(Debug)]
struct Running {
    cfg: Frontend,
    live: Live,
    tls: Option<TlsRuntime>,
    stats: Arc<L4Stats>,
    listeners: Vec<Bound>,
    conns: Conns,
}

#[derive(Debug)]
enum Live {
    Stream {
        handler: Arc<ArcSwap<Handler>>,
        /// HTTP frontends keep one service, reconfigured in place.
        service: Option<HttpService>,
    },
    Datagram(Arc<ArcSwap<UdpFrontend>>),
}

#[derive(Debug)]
struct Bound {
    configured: SocketAddr,
    local: SocketAddr,
    stop: CancellationToken,
}

enum Socket {
    /// One listener, or one per worker.
    Tcp(Vec<TcpListener>),
    Udp(UdpSocket),
}

/// A frontend's part of an apply: built and bound, not yet visible.
struct Plan {
    cfg: Frontend,
    built: Option<Built>,
    fresh: Vec<(SocketAddr, Socket)>,
    existing: bool,
}

impl ProxyTier {
    /// Binds and serves every frontend of `config`.
    pub async fn start(config: &Config, ctx: TierContext) -> Result<ProxyTier, TierError> {
        let workers = match ctx.threads.count {
            0 => Workers::default(),
            n => Workers::start(n, ctx.threads.pin, &ctx.shutdown, &ctx.tracker)
                .map_err(|e| TierError::Build(format!("cannot start {n} worker threads: {e}")))?,
        };
        let mut tier = ProxyTier {
            ctx,
            workers,
            pools: BTreeMap::new(),
            frontends: BTreeMap::new(),
            sync: SyncTables::default(),
        };
        tier.apply(config).await?;
        Ok(tier)
    }

    /// Moves the tier to `config` (see the module docs); on error nothing changed.
    pub async fn apply(&mut self, config: &Config) -> Result<(), TierError> {
        let mut pools = BTreeMap::new();
        let mut reshaped = BTreeSet::new();
        for p in &config.pool {
            let name = p.name.get_ref();
            let slot = match self.pools.get(name) {
                Some(old) => {
                    if old.settings_differ(p) {
                        reshaped.insert(name.clone());
                    }
                    old.next(p)
                }
                None => PoolSlot::new(p),
            };
            pools.insert(name.clone(), slot);
        }
        let mut plans = Vec::new();
        for f in &config.frontend {
            let old = self
                .frontends
                .get(f.name.get_ref())
                .filter(|o| matches!(o.live, Live::Datagram(_)) == (f.mode == Mode::Udp));
            let rebuild = old.is_none_or(|o| {
                o.cfg != *f || build::pools_of(f).iter().any(|p| reshaped.contains(p))
            });
            let built = if rebuild {
                let stats = old.map_or_else(Arc::default, |o| Arc::clone(&o.stats));
                let old_tls = old.and_then(|o| o.tls.as_ref());
                let old_sessions = old.and_then(|o| match &o.live {
                    Live::Datagram(fe) => fe.load().sessions.clone(),
                    Live::Stream { .. } => None,
                });
                Some(build::frontend(
                    f,
                    config,
                    &pools,
                    old_tls,
                    &stats,
                    old_sessions.as_ref(),
                )?)
            } else {
                None
            };
            let mut fresh = Vec::new();
            for addr in f.bind.iter().map(|a| *a.get_ref()) {
                if old.is_some_and(|o| o.listeners.iter().any(|l| l.configured == addr)) {
                    continue;
                }
                let socket =
                    bind(f.mode, addr, &self.workers)
                        .await
                        .map_err(|source| TierError::Bind {
                            frontend: f.name.get_ref().clone(),
                            addr,
                            source,
                        })?;
                fresh.push((addr, socket));
            }
            plans.push(Plan {
                cfg: f.clone(),
                built,
                fresh,
                existing: old.is_some(),
            });
        }
        // Nothing below fails.
        for (name, slot) in &pools {
            if self.pools.contains_key(name) {
                slot.pool.reconfigure(build::runtime_config(&slot.cfg));
            }
        }
        self.pools = pools;
        let staying: BTreeSet<String> = plans
            .iter()
            .filter(|p| p.existing)
            .map(|p| p.cfg.name.get_ref().clone())
            .collect();
        let leaving: Vec<String> = self
            .frontends
            .keys()
            .filter(|n| !staying.contains(*n))
            .cloned()
            .collect();
        for name in leaving {
            if let Some(r) = self.frontends.remove(&name) {
                self.retire(&name, r);
            }
        }
        for plan in plans {
            self.commit(plan);
        }
        let udp = self.frontends.iter().filter_map(|(name, r)| match &r.live {
            Live::Datagram(fe) => {
                let fe = fe.load();
                Some((name.clone(), fe.pool.clone(), fe.sessions.clone()?))
            }
            Live::Stream { .. } => None,
        });
        self.sync.refresh(&self.pools, udp.collect());
        Ok(())
    }

    /// Every pool by name (the node links them to health checks).
    pub fn pools(&self) -> BTreeMap<String, Pool> {
        self.pools
            .iter()
            .map(|(n, s)| (n.clone(), s.pool.clone()))
            .collect()
    }

    /// The pools' persistence tables for session sync (follows later applies).
    pub fn sync_tables(&self) -> SyncTables {
        self.sync.clone()
    }

    /// Every frontend as it runs now, by name.
    pub fn frontends(&self) -> Vec<FrontendInfo> {
        self.frontends
            .iter()
            .map(|(name, r)| FrontendInfo {
                name: name.clone(),
                mode: match &r.live {
                    Live::Stream { handler, .. } => handler.load().mode(),
                    Live::Datagram(_) => "udp",
                },
                listen: r.listeners.iter().map(|l| l.local).collect(),
                pools: build::pools_of(&r.cfg),
            })
            .collect()
    }

    /// The certificate and key files terminating frontends serve from.
    pub fn certificate_files(&self) -> Vec<PathBuf> {
        self.frontends
            .values()
            .filter_map(|r| r.tls.as_ref())
            .flat_map(|t| t.cfg.certificate.iter())
            .flat_map(|c| [c.cert.clone(), c.key.clone()])
            .collect()
    }

    /// Re-reads certificate files whose content changed; a file that does not load leaves
    /// the old certificates serving. Returns, per frontend that reloaded or failed, what
    /// happened.
    pub fn reload_certificates(&self) -> Vec<(String, Result<(), String>)> {
        let mut out = Vec::new();
        for (name, r) in &self.frontends {
            let Some(t) = &r.tls else { continue };
            match t.store.reload_if_changed() {
                Ok(false) => {}
                Ok(true) => out.push((name.clone(), Ok(()))),
                Err(e) => out.push((name.clone(), Err(e.to_string()))),
            }
        }
        out
    }

    fn commit(&mut self, plan: Plan) {
        let name = plan.cfg.name.get_ref().clone();
        let wanted: Vec<SocketAddr> = plan.cfg.bind.iter().map(|a| *a.get_ref()).collect();
        let running = match self.frontends.remove(&name) {
            Some(mut r) => {
                if let Some(built) = plan.built {
                    r.swap(built);
                }
                r.listeners.retain(|l| {
                    let keep = wanted.contains(&l.configured);
                    if !keep {
                        tracing::info!(frontend = %name, addr = %l.local, "listener closed");
                        l.stop.cancel();
                    }
                    keep
                });
                r.cfg = plan.cfg;
                r
            }
            None => {
                let Some(built) = plan.built else { return };
                Running::new(plan.cfg, built, &self.ctx)
            }
        };
        let mut running = running;
        for (addr, socket) in plan.fresh {
            running.listen(&name, addr, socket, &self.workers);
        }
        self.frontends.insert(name, running);
    }

    /// A removed frontend: stop accepting now, let its connections finish their current
    /// requests, cut them after the grace period.
    fn retire(&self, name: &str, r: Running) {
        tracing::info!(frontend = %name, grace = ?self.ctx.grace, "frontend removed, draining");
        r.conns.soft.cancel();
        let (hard, grace, abort) = (r.conns.hard.clone(), self.ctx.grace, self.ctx.abort.clone());
        self.ctx.tracker.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                () = abort.cancelled() => {}
            }
            hard.cancel();
        });
    }
}

impl Running {
    fn new(cfg: Frontend, built: Built, ctx: &TierContext) -> Running {
        let conns = Conns {
            soft: ctx.shutdown.child_token(),
            hard: ctx.abort.child_token(),
            tracker: ctx.tracker.clone(),
        };
        let (live, tls, stats) = match built {
            Built::Http { fe, tls, handshake } => {
                let service = HttpService::new(*fe);
                let handler = http_handler(&service, tls.as_ref(), handshake);
                let live = Live::Stream {
                    handler: Arc::new(ArcSwap::from_pointee(handler)),
                    service: Some(service),
                };
                (live, tls, Arc::default())
            }
            Built::Stream { handler, tls } => {
                let stats = match &handler {
                    Handler::Tcp(fe) => Arc::clone(&fe.stats),
                    _ => Arc::default(),
                };
                let live = Live::Stream {
                    handler: Arc::new(ArcSwap::from_pointee(handler)),
                    service: None,
                };
                (live, tls, stats)
            }
            Built::Datagram(fe) => {
                let stats = Arc::clone(&fe.stats);
                (
                    Live::Datagram(Arc::new(ArcSwap::from_pointee(fe))),
                    None,
                    stats,
                )
            }
        };
        Running {
            cfg,
            live,
            tls,
            stats,
            listeners: Vec::new(),
            conns,
        }
    }

    /// Swaps in what was built for the same frontend.
    fn swap(&mut self, built: Built) {
        match (built, &mut self.live) {
            (Built::Http { fe, tls, handshake }, Live::Stream { handler, service }) => {
                let svc = match service {
                    Some(s) => {
                        s.reconfigure(*fe);
                        s.clone()
                    }
                    None => {
                        let s = HttpService::new(*fe);
                        *service = Some(s.clone());
                        s
                    }
                };
                handler.store(Arc::new(http_handler(&svc, tls.as_ref(), handshake)));
                self.tls = tls;
            }
            (Built::Stream { handler: h, tls }, Live::Stream { handler, service }) => {
                handler.store(Arc::new(h));
                *service = None;
                self.tls = tls;
            }
            (Built::Datagram(fe), Live::Datagram(live)) => live.store(Arc::new(fe)),
            // The tier retires and recreates a frontend that changes between stream and
            // datagram, so these do not meet.
            (_, _) => tracing::error!("frontend kind changed in place; ignored"),
        }
    }

    fn listen(&mut self, name: &str, configured: SocketAddr, socket: Socket, workers: &Workers) {
        let stop = self.conns.soft.child_token();
        let local = match &socket {
            Socket::Tcp(l) => l.first().map_or(Ok(configured), TcpListener::local_addr),
            Socket::Udp(s) => s.local_addr(),
        }
        .unwrap_or(configured);
        let mode = match &self.live {
            Live::Stream { handler, .. } => handler.load().mode(),
            Live::Datagram(_) => "udp",
        };
        // `listening (MODE)` with the bound address (port 0 resolved): tests and operators read it.
        tracing::info!(frontend = %name, addr = %local, mode, "listening ({mode})");
        match (socket, &self.live) {
            (Socket::Tcp(listeners), Live::Stream { handler, .. }) => {
                // With workers there is one listener per worker, accepting on it.
                let mut on = workers.handles().iter();
                for l in listeners {
                    let (handler, stop, conns) =
                        (Arc::clone(handler), stop.clone(), self.conns.clone());
                    let accept = listen::accept_tcp(l, handler, stop, conns);
                    match on.next() {
                        Some(worker) => self.conns.tracker.spawn_on(accept, worker),
                        None => self.conns.tracker.spawn(accept),
                    };
                }
            }
            (Socket::Udp(s), Live::Datagram(live)) => {
                listen::serve_udp(s, Arc::clone(live), stop.clone(), &self.conns);
            }
            _ => return,
        }
        self.listeners.push(Bound {
            configured,
            local,
            stop,
        });
    }
}

fn http_handler(service: &HttpService, tls: Option<&TlsRuntime>, handshake: Duration) -> Handler {
    match tls {
        Some(t) => Handler::Https {
            service: service.clone(),
            tls: Arc::clone(&t.server),
            handshake,
        },
        None => Handler::Http(service.clone()),
    }
}

async fn bind(mode: Mode, addr: SocketAddr, workers: &Workers) -> io::Result<Socket> {
    match mode {
        Mode::Udp => UdpSocket::bind(addr).await.map(Socket::Udp),
        Mode::Tcp | Mode::Http if workers.is_empty() => {
            crate::l4::serve::bind_tcp(addr).map(|l| Socket::Tcp(vec![l]))
        }
        Mode::Tcp | Mode::Http => workers.bind(addr).map(Socket::Tcp),
    }
}
