//! The file watcher: a change of the config file is a reload, a change of a certificate or
//! key file reloads the certificates, both through [`Control`].
//!
//! It watches the directories (not the files), since editors and deploy tools replace a
//! file by renaming a new one over it. Events arrive from `notify`'s thread on a channel; a
//! burst (a write is often several events) is taken as one change after a short quiet
//! period, so a file is read once it is complete.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tenbin_config::api::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Control;

/// How long a burst of events must be quiet before it is acted on.
const SETTLE: Duration = Duration::from_millis(200);

/// Starts watching; the watcher runs on `tracker` until `stop`.
pub async fn start(
    control: Control,
    stop: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            if !matches!(ev.kind, notify::EventKind::Access(_)) {
                for p in ev.paths {
                    let _ = tx.send(p);
                }
            }
        }
    })?;
    let mut w = Watch {
        watcher,
        dirs: BTreeSet::new(),
    };
    w.follow(&control).await;
    tracker.spawn(async move {
        w.run(control, rx, stop).await;
    });
    Ok(())
}

struct Watch {
    watcher: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
}

impl Watch {
    /// Watches the directories of the files the node reads now.
    async fn follow(&mut self, control: &Control) {
        let (config, certs) = control.watched_files().await;
        let wanted: BTreeSet<PathBuf> = std::iter::once(config)
            .chain(certs)
            .map(|f| dir_of(&f))
            .collect();
        for d in wanted.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(d, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %d.display(), "watch: {e}");
            }
        }
        for d in self.dirs.difference(&wanted) {
            let _ = self.watcher.unwatch(d);
        }
        self.dirs = wanted;
    }

    async fn run(
        &mut self,
        control: Control,
        mut rx: mpsc::UnboundedReceiver<PathBuf>,
        stop: CancellationToken,
    ) {
        loop {
            let first = tokio::select! {
                () = stop.cancelled() => return,
                p = rx.recv() => match p { Some(p) => p, None => return },
            };
            let mut changed = BTreeSet::from([first]);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    p = rx.recv() => match p { Some(p) => { changed.insert(p); } None => return },
                    () = tokio::time::sleep(SETTLE) => break,
                }
            }
            let (config, certs) = control.watched_files().await;
            let is = |f: &Path| changed.iter().any(|c| same_file(c, f));
            if is(&config) {
                tracing::info!(file = %config.display(), "config file changed, reloading");
                let _ = control.apply(Command::Reload).await;
                self.follow(&control).await;
            }
            if certs.iter().any(|c| is(c)) {
                control.reload_certificates().await;
            }
        }
    }
}

fn dir_of(f: &Path) -> PathBuf {
    let abs = std::path::absolute(f).unwrap_or_else(|_| f.to_path_buf());
    abs.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn same_file(event: &Path, file: &Path) -> bool {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    event == abs || event == file
}
