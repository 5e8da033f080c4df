//! [`Control`]: the one handle through which a running node is read and changed.
//!
//! SIGHUP, the file watcher and the admin API all call [`Control::apply`]; every command
//! becomes a new effective config (`file + operator overrides`), diffed against the one
//! running and applied tier by tier. Applies are serialised by one lock, so a reload and an
//! operator's drain never interleave.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tenbin_config::api::{Applied, ApplyError, Command, NodeState};
use tenbin_config::diff::{Change, ConfigDiff};
use tenbin_config::Config;
use tenbin_health::bus::HealthBus;
use tenbin_proxy::tier::{ProxyTier, TierContext};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::agent::Agent;
use super::mux::Mux;
use super::overlay::Overrides;
use super::stats::{NodeCounters, NodeStats};
use crate::role::Refused;
use crate::wiring::ProxyHealth;
use tenbin_dns::tier::{DnsContext, DnsHandle, LoadError};

/// Serves the admin API on a bound listener until the token is cancelled. The binary hands
/// the node its `admin::serve`, so the node never imports the API built on top of it.
pub type AdminServe =
    fn(
        TcpListener,
        Control,
        CancellationToken,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>;

/// The node's shutdown tokens and task tracker (see `node`'s module docs), and the admin
/// API it serves on `[admin].listen`.
#[derive(Clone, Debug)]
pub struct NodeContext {
    pub shutdown: CancellationToken,
    pub abort: CancellationToken,
    pub tracker: TaskTracker,
    pub grace: Duration,
    pub admin: AdminServe,
    /// The proxy tier's worker threads (`TierContext::threads`).
    pub threads: tenbin_proxy::tier::Threads,
}

/// A cheap-to-clone handle on the running node.
#[derive(Clone, Debug)]
pub struct Control {
    inner: Arc<Mutex<Node>>,
}

/// Everything the node runs, behind [`Control`]'s lock.
#[derive(Debug)]
pub(super) struct Node {
    pub path: PathBuf,
    /// The file as last read successfully.
    pub file: Config,
    pub overrides: Overrides,
    /// `file + overrides`: what the tiers run.
    pub effective: Config,
    pub generation: u64,
    pub ctx: NodeContext,
    pub proxy: ProxyTier,
    pub health: ProxyHealth,
    pub dns: Option<DnsHandle>,
    pub bgp: Option<super::bgp::BgpRole>,
    pub mux: Mux,
    pub agent: Agent,
    /// The node's health bus: every tier's entries under typed keys, and `NodeHealth`.
    pub bus: HealthBus,
    pub sync: Option<super::sync::SyncRole>,
    pub vrrp: Option<super::vrrp::VrrpRole>,
    pub admin: Option<AdminListener>,
    pub counters: NodeCounters,
    myself: Weak<Mutex<Node>>,
}

#[derive(Debug)]
pub(super) struct AdminListener {
    pub addr: std::net::SocketAddr,
    pub configured: std::net::SocketAddr,
    stop: CancellationToken,
}

impl Control {
    /// Starts every tier `config` (read from `path`) describes.
    pub async fn start(path: &Path, config: Config, ctx: NodeContext) -> anyhow::Result<Control> {
        let tier_ctx = TierContext {
            shutdown: ctx.shutdown.clone(),
            abort: ctx.abort.clone(),
            tracker: ctx.tracker.clone(),
            grace: ctx.grace,
            threads: ctx.threads,
        };
        let proxy = ProxyTier::start(&config, tier_ctx).await?;
        let bus = HealthBus::new();
        let mut health = ProxyHealth::start(&ctx.shutdown, &ctx.tracker, bus.clone());
        health.apply(&config, proxy.pools(), proxy.frontends().len())?;
        let dns = match &config.dns {
            Some(section) => Some(tenbin_dns::tier::start(section, &dns_context(&ctx, &bus))?),
            None => None,
        };
        let mut mux = Mux::new(bus.clone());
        let mut agent = Agent::default();
        let xdp = xdp_context(&ctx);
        mux.apply(config.mux.as_ref(), &xdp)
            .await
            .map_err(|e| anyhow::anyhow!("[mux]: {e}"))?;
        agent
            .apply(config.agent.as_ref(), &xdp)
            .await
            .map_err(|e| anyhow::anyhow!("[agent]: {e}"))?;
        let sync = match &config.sync {
            Some(section) => Some(super::sync::start(section, proxy.sync_tables(), &ctx).await?),
            None => None,
        };
        let vrrp = match &config.vrrp {
            Some(section) => {
                let tracked = super::vrrp::readiness(&proxy.frontends(), &health.snapshot());
                Some(super::vrrp::start(section, path, &tracked)?)
            }
            None => None,
        };
        if proxy.frontends().is_empty()
            && dns.is_none()
            && config.mux.is_none()
            && config.agent.is_none()
            && sync.is_none()
            && vrrp.is_none()
        {
            anyhow::bail!("{}: no frontend to run", path.display());
        }
        let bgp = match &config.bgp {
            Some(section) => {
                Some(super::bgp::start_for_node(section, &config, mux.readiness()).await?)
            }
            None => None,
        };
        let health_rx = health.subscribe();
        let node = Node {
            path: path.to_path_buf(),
            file: config.clone(),
            overrides: Overrides::default(),
            effective: config.clone(),
            generation: 1,
            ctx,
            proxy,
            health,
            dns,
            bgp,
            mux,
            agent,
            bus,
            sync,
            vrrp,
            admin: None,
            counters: NodeCounters::new(path),
            myself: Weak::new(),
        };
        let shutdown = node.ctx.shutdown.clone();
        let tracker = node.ctx.tracker.clone();
        let inner = Arc::new(Mutex::new(node));
        tracker.spawn(super::vrrp::follow(
            Arc::downgrade(&inner),
            health_rx,
            shutdown,
        ));
        {
            let mut node = inner.lock().await;
            node.myself = Arc::downgrade(&inner);
            if let Some(admin) = &config.admin {
                node.admin = Some(node.bind_admin(admin.listen).await?);
            }
        }
        Ok(Control { inner })
    }

    /// The whole node's state, as the admin API returns it.
    pub async fn state(&self) -> NodeState {
        self.inner.lock().await.state()
    }

    /// Every tier's counters and the node's state at one moment (what `/metrics` renders).
    pub async fn stats(&self) -> NodeStats {
        self.inner.lock().await.stats()
    }

    /// `[admin]` as the node runs it now. The admin API reads the token here on every
    /// request, so a reload that changes only the token applies at once.
    pub async fn admin_section(&self) -> Option<tenbin_config::Admin> {
        self.inner.lock().await.effective.admin.clone()
    }

    /// Applies `cmd` through the node's one apply path. On error nothing changed (and the
    /// error, for a file that does not validate, names file:line:column and key).
    pub async fn apply(&self, cmd: Command) -> Result<Applied, ApplyError> {
        let mut node = self.inner.lock().await;
        let result = node.apply(&cmd).await;
        if matches!(cmd, Command::Reload) {
            let path = node.path.clone();
            node.counters.reloaded(result.is_ok(), &path);
        }
        match &result {
            Ok(a) if a.changes.is_empty() => tracing::info!(?cmd, "apply: no change"),
            Ok(a) => tracing::info!(generation = a.generation, changes = ?a.changes, "applied"),
            Err(e) => tracing::error!("apply refused, still running the previous config: {e}"),
        }
        result
    }

    /// Re-reads certificate files that changed (the file watcher calls this).
    pub async fn reload_certificates(&self) {
        let node = self.inner.lock().await;
        for (frontend, r) in node.proxy.reload_certificates() {
            match r {
                Ok(()) => tracing::info!(%frontend, "tls: certificates reloaded"),
                Err(e) => tracing::warn!(
                    %frontend,
                    "tls: certificate reload failed, keeping the old ones: {e}"
                ),
            }
        }
    }

    /// The files whose change the watcher acts on: the config file and every certificate
    /// and key a terminating frontend serves.
    pub async fn watched_files(&self) -> (PathBuf, Vec<PathBuf>) {
        let node = self.inner.lock().await;
        (node.path.clone(), node.proxy.certificate_files())
    }

    /// Hands the VIPs over (priority 0) and stops the virtual routers: at shutdown, before
    /// the listeners close.
    pub async fn stop_vrrp(&self) {
        let role = self.inner.lock().await.vrrp.take();
        if let Some(role) = role {
            role.shutdown().await;
        }
    }

    /// Withdraws every prefix, lingers, and closes the BGP sessions (at shutdown, before the
    /// listeners close). The node's lock is not held while it lingers.
    pub async fn stop_bgp(&self) {
        let bgp = self.inner.lock().await.bgp.take();
        if let Some(b) = bgp {
            b.stop().await;
        }
    }

    /// Stops the health checks and the XDP roles (at shutdown; listeners follow the node's
    /// token). The host agent goes first (its VIPs leave `lo`), the Mux detaches last: a
    /// BGP speaker, where the node runs one, withdraws before that.
    pub async fn stop(&self) {
        let mut node = self.inner.lock().await;
        node.health.stop();
        node.agent.shutdown().await;
        node.mux.shutdown().await;
    }
}

impl Node {
    async fn apply(&mut self, cmd: &Command) -> Result<Applied, ApplyError> {
        let (file, overrides) = match cmd {
            Command::Reload => {
                let file =
                    crate::check::load(&self.path).map_err(|e| ApplyError::InvalidConfig {
                        message: format!("{e:#}"),
                    })?;
                let mut overrides = self.overrides.clone();
                overrides.prune(&file);
                (file, overrides)
            }
            Command::SetDatacenterLoad { datacenter, load } => {
                return self.set_load(datacenter, *load);
            }
            Command::DrainMux | Command::UndrainMux => {
                return self.drain_mux(matches!(cmd, Command::DrainMux));
            }
            other => (
                self.file.clone(),
                self.overrides.with(other, &self.effective)?,
            ),
        };
        let effective = overrides.effective(&file);
        let diff = ConfigDiff::between(&self.effective, &effective);
        let mut applied = effective.clone();
        let mut lines = Vec::new();
        if !diff.is_empty() {
            self.apply_diff(&diff, &effective, &mut applied, &mut lines)
                .await?;
            self.generation += 1;
        }
        self.file = file;
        self.overrides = overrides;
        self.effective = applied;
        Ok(Applied {
            generation: self.generation,
            changes: lines,
        })
    }

    /// Applies `diff` (towards `target`). `applied` ends as what the tiers run: sections
    /// that need a restart keep their old value there, so a later reload reports them
    /// again.
    async fn apply_diff(
        &mut self,
        diff: &ConfigDiff,
        target: &Config,
        applied: &mut Config,
        lines: &mut Vec<String>,
    ) -> Result<(), ApplyError> {
        // Bind a moved admin listener first: it is the last change that can fail late.
        let mut admin = None;
        for change in &diff.changes {
            if let Change::Admin(Some(a)) = change {
                if self.admin.as_ref().is_none_or(|l| l.configured != a.listen) {
                    admin = Some(self.bind_admin(a.listen).await.map_err(failed)?);
                }
            }
        }
        let proxy = diff.changes.iter().any(|c| {
            matches!(
                c,
                Change::FrontendAdded(_)
                    | Change::FrontendRemoved(_)
                    | Change::FrontendChanged(_)
                    | Change::PoolAdded(_)
                    | Change::PoolRemoved(_)
                    | Change::PoolSettingsChanged(_)
                    | Change::ServerAdded { .. }
                    | Change::ServerRemoved { .. }
                    | Change::ServerChanged { .. }
            )
        });
        if proxy {
            if let Err(e) = self.proxy.apply(target).await {
                if let Some(unused) = admin.take() {
                    unused.stop.cancel();
                }
                return Err(failed(e));
            }
            // Checks that fail to start leave the pools unchecked but serving.
            let frontends = self.proxy.frontends().len();
            if let Err(e) = self.health.apply(target, self.proxy.pools(), frontends) {
                tracing::error!("health: {e:#}");
                lines.push(format!("health checks not restarted: {e:#}"));
            }
        }
        for change in &diff.changes {
            match change {
                Change::Dns(section) => {
                    if let Err(e) = self.apply_dns(section.as_deref()) {
                        // The proxy part is in; keep reporting the DNS change.
                        applied.dns = self.effective.dns.clone();
                        tracing::error!("reload: {e:#}");
                        lines.push(format!("[dns] not applied: {e:#}"));
                        continue;
                    }
                }
                Change::Admin(a) => {
                    if a.is_none() {
                        if let Some(old) = self.admin.take() {
                            old.stop.cancel();
                        }
                    } else if let Some(new) = admin.take() {
                        if let Some(old) = self.admin.replace(new) {
                            old.stop.cancel();
                        }
                    }
                }
                Change::Mux(section) => {
                    let xdp = xdp_context(&self.ctx);
                    if let Err(e) = self.mux.apply(section.as_deref(), &xdp).await {
                        applied.mux = self.effective.mux.clone();
                        lines.push(refused(change, e));
                        continue;
                    }
                    if let Some(b) = self.bgp.as_mut() {
                        b.follow_mux(self.mux.readiness());
                    }
                }
                Change::Agent(section) => {
                    let xdp = xdp_context(&self.ctx);
                    if let Err(e) = self.agent.apply(section.as_deref(), &xdp).await {
                        applied.agent = self.effective.agent.clone();
                        lines.push(refused(change, e));
                        continue;
                    }
                }
                Change::Vrrp(section) => match self.apply_vrrp(section.as_deref()).await {
                    Ok(Some(line)) => {
                        lines.push(line.to_string());
                        continue;
                    }
                    Ok(None) => {
                        tracing::warn!(change = %change.describe(), "applied at the next restart");
                        applied.vrrp = self.effective.vrrp.clone();
                        lines.push(format!("{} (at the next restart)", change.describe()));
                        continue;
                    }
                    Err(e) => {
                        applied.vrrp = self.effective.vrrp.clone();
                        tracing::error!("reload: {e:#}");
                        lines.push(format!("[vrrp] not applied: {e:#}"));
                        continue;
                    }
                },
                Change::Sync(_) => {
                    tracing::warn!(change = %change.describe(), "applied at the next restart");
                    applied.sync = self.effective.sync.clone();
                    lines.push(format!("{} (at the next restart)", change.describe()));
                    continue;
                }
                _ => {}
            }
            lines.push(change.describe());
        }
        Ok(())
    }

    fn apply_dns(
        &mut self,
        section: Option<&tenbin_config::dns::DnsSection>,
    ) -> anyhow::Result<()> {
        match (self.dns.as_mut(), section) {
            (Some(tier), Some(s)) => tier.apply(s)?,
            (None, Some(s)) => {
                let ctx = dns_context(&self.ctx, &self.bus);
                self.dns = Some(tenbin_dns::tier::start(s, &ctx)?);
            }
            (_, None) => {
                if let Some(old) = self.dns.take() {
                    old.shutdown();
                }
            }
        }
        if let Some(b) = self.bgp.as_mut() {
            b.follow_dns(section);
        }
        Ok(())
    }

    fn set_load(&mut self, datacenter: &str, load: f64) -> Result<Applied, ApplyError> {
        let dns = self
            .dns
            .as_ref()
            .ok_or_else(|| ApplyError::not_found("tier", "dns", Vec::new()))?;
        match dns.loads().set(datacenter, load) {
            Ok(()) => Ok(Applied {
                generation: self.generation,
                changes: vec![format!("datacenter {datacenter}: load {load}")],
            }),
            Err(LoadError::UnknownDatacenter(_)) => {
                let known = self
                    .effective
                    .dns
                    .iter()
                    .flat_map(|d| d.datacenters.iter().map(|dc| dc.name.clone()));
                Err(ApplyError::not_found("datacenter", datacenter, known))
            }
            Err(e @ LoadError::Invalid(_)) => Err(ApplyError::rejected(e.to_string())),
        }
    }

    fn drain_mux(&mut self, drained: bool) -> Result<Applied, ApplyError> {
        let bgp = self
            .bgp
            .as_ref()
            .ok_or_else(|| ApplyError::rejected("the node runs no [bgp]: nothing to withdraw"))?;
        if self.effective.mux.is_none() {
            return Err(ApplyError::rejected("the node runs no [mux]"));
        }
        let changed = bgp.set_mux_drained(drained);
        let what = if drained {
            "mux drained: its VIPs are withdrawn, it keeps forwarding what still arrives"
        } else {
            "mux undrained: its servable VIPs are announced"
        };
        Ok(Applied {
            generation: self.generation,
            changes: if changed {
                vec![what.to_string()]
            } else {
                Vec::new()
            },
        })
    }

    async fn bind_admin(&self, addr: std::net::SocketAddr) -> anyhow::Result<AdminListener> {
        use anyhow::Context as _;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("admin: cannot bind {addr}"))?;
        let local = listener.local_addr().unwrap_or(addr);
        tracing::info!(addr = %local, "listening (admin)");
        let stop = self.ctx.shutdown.child_token();
        let control = Control {
            inner: self
                .myself
                .upgrade()
                .context("admin: the node is shutting down")?,
        };
        let serve = (self.ctx.admin)(listener, control, stop.clone());
        self.ctx.tracker.spawn(async move {
            if let Err(e) = serve.await {
                tracing::error!("admin: {e}");
            }
        });
        Ok(AdminListener {
            addr: local,
            configured: addr,
            stop,
        })
    }
}

/// The DNS tier's context: the node's shutdown token and tracker, and its health bus.
fn dns_context(ctx: &NodeContext, bus: &HealthBus) -> DnsContext {
    DnsContext {
        shutdown: ctx.shutdown.clone(),
        tracker: ctx.tracker.clone(),
        bus: bus.clone(),
    }
}

/// The XDP roles' context. They run on the `abort` token, not `shutdown`: [`Control::stop`]
/// stops them in order (a Mux detaches only after BGP withdrew), and `abort` is the
/// backstop once the grace period is over.
fn xdp_context(ctx: &NodeContext) -> tenbin_xdp::TierContext {
    tenbin_xdp::TierContext {
        cancel: ctx.abort.child_token(),
    }
}

/// The apply report's line for a role change the role refused; the section it had keeps
/// running (and the change is reported again by the next reload).
fn refused(change: &Change, e: Refused) -> String {
    match e {
        Refused::AtRestart(e) => {
            tracing::warn!(change = %change.describe(), "applied at the next restart: {e}");
            format!("{} (at the next restart: {e})", change.describe())
        }
        Refused::Failed(e) => {
            tracing::error!(change = %change.describe(), "not applied: {e}");
            format!("{} not applied: {e}", change.describe())
        }
    }
}

fn failed(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::failed(e.to_string())
}
