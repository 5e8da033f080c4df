//! The DNS tier's façade: [`start`] binds `[dns].listen`, builds the engine, starts the VIP
//! checks of the health policy ([`policy`]) and serves on the context's tracker; the
//! [`DnsHandle`] takes new sections ([`DnsHandle::apply`]), reads the state
//! ([`DnsHandle::stats`]), takes pushed datacenter loads ([`DnsHandle::loads`]) and stops
//! ([`DnsHandle::shutdown`], or the context's token). It publishes its VIPs' health and its
//! readiness (answering) on the node's health bus.

pub mod policy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tenbin_config::dns::DnsSection;
use tenbin_health::bus::{HealthBus, Tier, TierInput};
use tenbin_health::from_config::FromConfigError;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use policy::dns_snapshot;

use crate::{Engine, HealthSnapshot, Sockets, Stats};

/// What the tier is started with: the node's shutdown token (cancelling it closes the
/// sockets), the tracker its server runs on, and the health bus it publishes to.
#[derive(Clone, Debug, Default)]
pub struct DnsContext {
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub bus: HealthBus,
}

/// Why the tier did not start or a section was refused.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("dns: cannot build the zones: {0}")]
    Zones(#[source] crate::zone::ZoneError),
    #[error("dns: the new zones do not compile; the old ones keep serving: {0}")]
    Reload(#[source] crate::zone::ZoneError),
    #[error("dns: cannot bind {addrs:?}: {source}")]
    Bind {
        addrs: Vec<SocketAddr>,
        #[source]
        source: std::io::Error,
    },
    #[error("dns: {0}")]
    Check(#[from] FromConfigError),
}

/// A load report named a datacenter the running `[dns]` does not have, or was not a finite,
/// non-negative number.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LoadError {
    #[error("no datacenter named `{0}` in [dns]")]
    UnknownDatacenter(String),
    #[error("load must be a finite number >= 0, not {0}")]
    Invalid(f64),
}

/// Datacenter loads pushed by operators or other tiers (through the admin API), by
/// datacenter name in ASCII lower case; published with every health snapshot.
#[derive(Clone, Debug)]
pub struct DcLoads {
    tx: watch::Sender<BTreeMap<String, f64>>,
}

impl DcLoads {
    /// Sets `datacenter`'s current load, in the unit of its pools' `capacity`.
    pub fn set(&self, datacenter: &str, load: f64) -> Result<(), LoadError> {
        if !load.is_finite() || load < 0.0 {
            return Err(LoadError::Invalid(load));
        }
        let dc = datacenter.to_ascii_lowercase();
        let mut known = true;
        self.tx.send_modify(|loads| match loads.get_mut(&dc) {
            Some(l) => *l = load,
            None => known = false,
        });
        if known {
            Ok(())
        } else {
            Err(LoadError::UnknownDatacenter(datacenter.to_string()))
        }
    }

    /// Keeps the loads of datacenters `dns` still has (at 0 for new ones).
    fn follow(&self, dns: &DnsSection) {
        self.tx.send_modify(|loads| {
            let mut next = BTreeMap::new();
            for dc in &dns.datacenters {
                let name = dc.name.to_ascii_lowercase();
                let load = loads.get(&name).copied().unwrap_or(0.0);
                next.insert(name, load);
            }
            *loads = next;
        });
    }
}

/// What [`DnsHandle::stats`] returns.
#[derive(Clone, Debug)]
pub struct DnsStats {
    /// The addresses configured in `[dns].listen` (empty once a re-bind failed).
    pub listen: Vec<SocketAddr>,
    /// The UDP sockets' bound addresses (port 0 resolved), one per address and socket.
    pub bound: Vec<SocketAddr>,
    /// The snapshot queries are answered with now (VIP states, overrides, loads).
    pub health: Arc<HealthSnapshot>,
    /// The engine's query counters.
    pub counters: Stats,
}

/// The VIP check tasks, aborted on drop.
#[derive(Debug)]
struct Checks(Vec<JoinHandle<()>>);

impl Drop for Checks {
    fn drop(&mut self) {
        self.0.iter().for_each(JoinHandle::abort);
    }
}

/// A running DNS tier.
#[derive(Debug)]
pub struct DnsHandle {
    ctx: DnsContext,
    /// Cancelled to close the sockets (a child of the context's token).
    stop: CancellationToken,
    listen: Vec<SocketAddr>,
    bound: Vec<SocketAddr>,
    engine: Arc<Engine>,
    health: watch::Sender<Arc<HealthSnapshot>>,
    loads: DcLoads,
    checks: Checks,
}

/// Binds `[dns].listen`, starts the VIP checks and serves on `ctx.tracker` until
/// `ctx.shutdown` is cancelled (or [`DnsHandle::shutdown`]). Must run inside a tokio runtime.
pub fn start(dns: &DnsSection, ctx: &DnsContext) -> Result<DnsHandle, TierError> {
    let stop = ctx.shutdown.child_token();
    let engine = Arc::new(Engine::new(dns).map_err(TierError::Zones)?);
    let (health, health_rx) = watch::channel(Arc::new(HealthSnapshot::default()));
    let loads = DcLoads {
        tx: watch::channel(BTreeMap::new()).0,
    };
    loads.follow(dns);
    let checks = Checks(policy::start_checks(
        dns,
        health.clone(),
        loads.tx.subscribe(),
        ctx.bus.clone(),
    )?);
    let sockets =
        Sockets::bind(&dns.listen, dns.udp_sockets).map_err(|source| TierError::Bind {
            addrs: dns.listen.clone(),
            source,
        })?;
    // The bound addresses (port 0 resolved): tests and operators read them from the log.
    for addr in sockets.tcp.iter().filter_map(|l| l.local_addr().ok()) {
        tracing::info!(%addr, "listening (dns)");
    }
    let bound = sockets
        .udp
        .iter()
        .filter_map(|s| s.local_addr().ok())
        .collect();
    let serve = crate::serve(
        engine.clone(),
        health_rx,
        sockets,
        stop.clone().cancelled_owned(),
    );
    ctx.bus
        .set(Tier::Dns, Some(TierInput::Dns { answering: true }));
    let bus = ctx.bus.clone();
    ctx.tracker.spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!("dns: {e}");
            bus.set(Tier::Dns, Some(TierInput::Dns { answering: false }));
        }
    });
    Ok(DnsHandle {
        ctx: ctx.clone(),
        stop,
        listen: dns.listen.clone(),
        bound,
        engine,
        health,
        loads,
        checks,
    })
}

impl DnsHandle {
    /// Takes a new `[dns]`. With the same `listen`, the zones swap without dropping a query
    /// (a section that does not compile leaves the old one serving) and the VIP checks
    /// restart for the new names. A new `listen` closes the sockets first (so the new ones
    /// may take the same ports) and starts the tier again; if that fails the tier is
    /// stopped and the error says why.
    pub fn apply(&mut self, dns: &DnsSection) -> Result<(), TierError> {
        if dns.listen != self.listen {
            self.stop.cancel();
            self.checks = Checks(Vec::new());
            self.listen.clear();
            self.bound.clear();
            self.ctx.bus.set(Tier::Dns, None);
            let fresh = start(dns, &self.ctx)?;
            *self = fresh;
            return Ok(());
        }
        self.engine.reload(dns).map_err(TierError::Reload)?;
        // The old checks and their publisher stop first (Drop aborts them): following the
        // new loads would wake that publisher, which could then send the old overrides
        // after the new ones.
        self.checks = Checks(Vec::new());
        self.loads.follow(dns);
        self.checks = Checks(policy::start_checks(
            dns,
            self.health.clone(),
            self.loads.tx.subscribe(),
            self.ctx.bus.clone(),
        )?);
        Ok(())
    }

    /// The addresses `[dns].listen` names.
    pub fn listen(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// The UDP sockets' bound addresses (port 0 resolved), one per address and socket.
    pub fn bound(&self) -> &[SocketAddr] {
        &self.bound
    }

    /// The health snapshot the tier answers with now (VIP states, admin overrides, loads).
    pub fn health(&self) -> Arc<HealthSnapshot> {
        self.health.borrow().clone()
    }

    /// The listen addresses, the health answered with and the query counters.
    pub fn stats(&self) -> DnsStats {
        DnsStats {
            listen: self.listen.clone(),
            bound: self.bound.clone(),
            health: self.health(),
            counters: self.engine.stats(),
        }
    }

    /// Where datacenter loads are pushed.
    pub fn loads(&self) -> DcLoads {
        self.loads.clone()
    }

    /// Closes the sockets and stops the checks; the tier leaves the bus.
    pub fn shutdown(self) {
        self.stop.cancel();
        self.ctx.bus.set(Tier::Dns, None);
    }
}
