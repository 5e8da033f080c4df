//! The XDP roles (`[mux]`, `[agent]`) as both shells drive them: `tenbin mux run` and
//! `tenbin agent` ([`serve`]: a role's handle runs on this process's runtime; SIGHUP and edits
//! of the config file re-read its section and `apply` it, a section that fails to parse or is
//! refused changes nothing and is logged; Ctrl-C, SIGTERM or the `--seconds` limit stop it),
//! and `tenbin run`'s node ([`follow`]: the running role follows its section through the
//! node's apply path).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tenbin_xdp::{ApplyError, StartError, TierContext, TierError};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// A started role, as the shells and the node drive it.
pub(crate) trait Role: Sized {
    type Section: PartialEq + Clone;
    /// Which section it runs, for logs and apply reports (`[mux]`).
    const NAME: &'static str;
    fn start(s: Self::Section, ctx: TierContext) -> Result<Self, StartError>;
    fn apply(&self, s: Self::Section) -> Result<(), ApplyError>;
    fn shutdown(self) -> impl std::future::Future<Output = ()> + Send;
}

impl Role for tenbin_xdp::mux::MuxHandle {
    type Section = tenbin_config::mux::MuxSection;
    const NAME: &'static str = "[mux]";
    fn start(s: Self::Section, ctx: TierContext) -> Result<Self, StartError> {
        tenbin_xdp::mux::start(s, ctx)
    }
    fn apply(&self, s: Self::Section) -> Result<(), ApplyError> {
        tenbin_xdp::mux::MuxHandle::apply(self, s)
    }
    fn shutdown(self) -> impl std::future::Future<Output = ()> + Send {
        tenbin_xdp::mux::MuxHandle::shutdown(self)
    }
}

impl Role for tenbin_xdp::agent::AgentHandle {
    type Section = tenbin_config::mux::AgentSection;
    const NAME: &'static str = "[agent]";
    fn start(s: Self::Section, ctx: TierContext) -> Result<Self, StartError> {
        tenbin_xdp::agent::start(s, ctx)
    }
    fn apply(&self, s: Self::Section) -> Result<(), ApplyError> {
        tenbin_xdp::agent::AgentHandle::apply(self, s)
    }
    fn shutdown(self) -> impl std::future::Future<Output = ()> + Send {
        tenbin_xdp::agent::AgentHandle::shutdown(self)
    }
}

/// Why [`follow`] left a role as it was.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// The section changes what only a restart can (the Mux's `interface`, `attach`,
    /// `flow_table`): the whole new section waits for the next restart.
    #[error("{0}")]
    AtRestart(TierError),
    /// The role could not start or take the section (not root, an address in use...).
    #[error("{0}")]
    Failed(TierError),
}

/// Moves the role in `slot` to `section`: starts it (on `ctx`), applies the new section to
/// the running handle, or shuts it down when the section is gone. On `Err` nothing changed.
pub(crate) async fn follow<R: Role>(
    slot: &mut Option<R>,
    section: Option<&R::Section>,
    ctx: &TierContext,
) -> Result<(), Refused> {
    match (slot.as_ref(), section) {
        (Some(role), Some(s)) => role.apply(s.clone()).map_err(|e| match e {
            TierError::NeedsRestart(_) => Refused::AtRestart(e),
            e => Refused::Failed(e),
        }),
        (None, Some(s)) => {
            *slot = Some(R::start(s.clone(), ctx.clone()).map_err(Refused::Failed)?);
            tracing::info!(role = R::NAME, "role started");
            Ok(())
        }
        (Some(_), None) => {
            if let Some(role) = slot.take() {
                role.shutdown().await;
                tracing::info!(role = R::NAME, "role stopped");
            }
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// A burst of file events (one save is often several) is one change once this quiet.
const SETTLE: Duration = Duration::from_millis(200);

/// Applies re-read sections to `role` until a stop signal or `limit`.
pub(crate) async fn serve<R: Role>(
    role: &R,
    path: &Path,
    mut current: R::Section,
    read: fn(&Path) -> anyhow::Result<R::Section>,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, mut edits) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            if !matches!(ev.kind, notify::EventKind::Access(_)) {
                for p in ev.paths {
                    let _ = tx.send(p);
                }
            }
        }
    })?;
    let file = std::path::absolute(path)?;
    // The directory, not the file: editors and deploy tools rename a new file over it.
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let until = async {
        match limit {
            Some(l) => tokio::time::sleep(l).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = &mut until => break,
            _ = hup.recv() => tracing::info!("SIGHUP: reloading {}", path.display()),
            Some(p) = edits.recv() => {
                if p != file {
                    continue;
                }
                // Let the burst settle so the file is read once it is complete.
                loop {
                    tokio::select! {
                        Some(_) = edits.recv() => {}
                        _ = tokio::time::sleep(SETTLE) => break,
                    }
                }
            }
        }
        match read(path) {
            Ok(s) if s == current => {}
            Ok(s) => match role.apply(s.clone()) {
                Ok(()) => {
                    current = s;
                    tracing::info!("config change applied");
                }
                Err(e) => tracing::error!("config change refused, keeping the running one: {e}"),
            },
            Err(e) => tracing::error!("config change refused, keeping the running one: {e:#}"),
        }
    }
    Ok(())
}
