//! The shell `tenbin mux run` and `tenbin agent` share: a role's handle runs on this
//! process's runtime; SIGHUP and edits of the config file re-read its section and `apply` it
//! (a section that fails to parse or is refused changes nothing and is logged); Ctrl-C,
//! SIGTERM or the `--seconds` limit stop it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// A started role, as the shell drives it.
pub(crate) trait Role {
    type Section: PartialEq + Clone;
    fn apply(&self, s: Self::Section) -> Result<(), tenbin_xdp::ApplyError>;
}

impl Role for tenbin_xdp::mux::MuxHandle {
    type Section = tenbin_config::mux::MuxSection;
    fn apply(&self, s: Self::Section) -> Result<(), tenbin_xdp::ApplyError> {
        tenbin_xdp::mux::MuxHandle::apply(self, s)
    }
}

impl Role for tenbin_xdp::agent::AgentHandle {
    type Section = tenbin_config::mux::AgentSection;
    fn apply(&self, s: Self::Section) -> Result<(), tenbin_xdp::ApplyError> {
        tenbin_xdp::agent::AgentHandle::apply(self, s)
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
