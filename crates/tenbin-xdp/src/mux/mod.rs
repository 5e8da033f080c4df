//! The Mux role's façade: [`start`] attaches the program to `[mux].interface`, writes the
//! configured state and runs the event loop ([`run`]) on the caller's tokio runtime;
//! the [`MuxHandle`] takes new sections ([`MuxHandle::apply`]), reads the counters
//! ([`MuxHandle::stats`]), publishes the readiness ([`MuxHandle::readiness`]) and stops
//! ([`MuxHandle::shutdown`], or the context's token).

mod run;
mod spec;

use std::sync::{Arc, Mutex};

use tenbin_config::mux::{AttachMode, MuxSection};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::abi::STAT_NAMES;
use crate::control::{Controller, MaglevRings};
use crate::loader::{is_root, Attached, Program};
use crate::metrics::MuxCounters;
use crate::report::HealthBook;
use crate::tier::{load, report_key, runtime, ApplyError, StartError, TierContext, TierError};
use crate::writer::MapWriter;
use run::{lock, Change, Inbox, Loop, Reports};

pub use run::LoopCounts;
pub use spec::{spec, MuxReadiness, VipReadiness};

/// A running Mux. Dropping it without [`MuxHandle::shutdown`] leaves the loop running until
/// the context's token is cancelled; the program detaches once the handle and the loop are
/// both gone.
pub struct MuxHandle<W: MapWriter = Program> {
    ctl: Arc<Mutex<Controller<W, MaglevRings>>>,
    changes: mpsc::UnboundedSender<Change>,
    ready: watch::Receiver<MuxReadiness>,
    counts: Arc<Mutex<LoopCounts>>,
    section: Mutex<MuxSection>,
    rt: tokio::runtime::Handle,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl<W: MapWriter> std::fmt::Debug for MuxHandle<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxHandle")
            .field("readiness", &*self.ready.borrow())
            .finish_non_exhaustive()
    }
}

/// What `stats()` returns: the data-plane counters, the loop's counts and the readiness.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MuxStats {
    pub counters: MuxCounters,
    pub loop_counts: LoopCounts,
    pub readiness: MuxReadiness,
}

/// Validates `section`, loads and attaches the Mux program (root), writes the configured
/// state and starts the event loop on the current tokio runtime.
pub fn start(section: MuxSection, ctx: TierContext) -> Result<MuxHandle, StartError> {
    section.validate()?;
    if !is_root() {
        return Err(TierError::NotRoot("the Mux"));
    }
    runtime()?;
    let mut program = Program::mux(section.flow_table).map_err(load("loading the Mux program"))?;
    let wanted = match section.attach {
        AttachMode::Driver => Attached::Driver,
        AttachMode::Generic => Attached::Generic,
    };
    let how = program
        .attach_as(&section.interface, wanted)
        .map_err(load(format!("attaching to {}", section.interface)))?;
    if how == Attached::Generic {
        tracing::warn!(interface = %section.interface, "XDP runs in generic (skb) mode: much slower than driver mode");
    }
    let handle = start_on(
        Controller::new(program, MaglevRings),
        section,
        ctx,
        log_counters,
    )?;
    tracing::info!(interface = %lock(&handle.section).interface, "mux attached");
    Ok(handle)
}

/// [`start`] over a controller the caller made: a [`crate::writer::MemWriter`] in tests, or
/// a program attached another way. `tick` runs every 10 s with the controller.
pub fn start_on<W: MapWriter + Send + 'static>(
    mut ctl: Controller<W, MaglevRings>,
    section: MuxSection,
    ctx: TierContext,
    tick: fn(&Controller<W, MaglevRings>),
) -> Result<MuxHandle<W>, StartError> {
    section.validate()?;
    let rt = runtime()?;
    let base = spec(&section)?;
    ctl.apply(&base)?;
    let inbox = {
        let _entered = rt.enter();
        inbox(&section)?
    };
    let (ready_tx, ready) = watch::channel(MuxReadiness::of(&base, true));
    let (changes, rx) = mpsc::unbounded_channel();
    let ctl = Arc::new(Mutex::new(ctl));
    let counts = Arc::new(Mutex::new(LoopCounts::default()));
    let cancel = ctx.cancel.child_token();
    let task = rt.spawn(
        Loop {
            ctl: ctl.clone(),
            base,
            inbox,
            ready: ready_tx,
            counts: counts.clone(),
            tick,
        }
        .run(rx, cancel.clone()),
    );
    Ok(MuxHandle {
        ctl,
        changes,
        ready,
        counts,
        section: Mutex::new(section),
        rt,
        cancel,
        task,
    })
}

/// The report inbox `[mux]` asks for, bound (call inside the runtime).
fn inbox(m: &MuxSection) -> Result<Option<Inbox>, TierError> {
    let Some(listen) = m.report_listen else {
        return Ok(None);
    };
    let key = report_key(m.report_key.as_deref(), "mux.report_key")?;
    let bind = |source| TierError::Bind {
        addr: listen,
        source,
    };
    let socket = std::net::UdpSocket::bind(listen).map_err(bind)?;
    socket.set_nonblocking(true).map_err(bind)?;
    let socket = tokio::net::UdpSocket::from_std(socket).map_err(bind)?;
    tracing::info!(%listen, "listening for agent reports");
    Ok(Some(Inbox {
        socket,
        key,
        book: HealthBook::new(m.report_timeout),
    }))
}

impl<W: MapWriter> MuxHandle<W> {
    /// Takes a new `[mux]`: VIPs, backends, weights, states, seed, MTU, sources and the
    /// report settings apply at once (whole-ring swaps); `interface`, `attach` and
    /// `flow_table` need a restart and are refused. A refused section changes nothing.
    pub fn apply(&self, section: MuxSection) -> Result<(), ApplyError> {
        section.validate()?;
        let mut current = lock(&self.section);
        for (key, same) in [
            ("mux.interface", current.interface == section.interface),
            ("mux.attach", current.attach == section.attach),
            ("mux.flow_table", current.flow_table == section.flow_table),
        ] {
            if !same {
                return Err(TierError::NeedsRestart(key));
            }
        }
        let base = spec(&section)?;
        let reports = if current.report_listen != section.report_listen {
            let _entered = self.rt.enter();
            Reports::Replace(inbox(&section)?)
        } else if (&current.report_key, current.report_timeout)
            != (&section.report_key, section.report_timeout)
            && section.report_listen.is_some()
        {
            Reports::Rekey {
                key: report_key(section.report_key.as_deref(), "mux.report_key")?,
                timeout: section.report_timeout,
            }
        } else {
            Reports::Keep
        };
        self.changes
            .send(Change { base, reports })
            .map_err(|_| TierError::Stopped)?;
        *current = section;
        Ok(())
    }

    /// The readiness, updated after every write: subscribe to follow it (BGP announces, the
    /// node's health).
    pub fn readiness(&self) -> watch::Receiver<MuxReadiness> {
        self.ready.clone()
    }

    /// The loop's counts.
    pub fn loop_counts(&self) -> LoopCounts {
        *lock(&self.counts)
    }

    /// Stops the loop (readiness turns `attached: false`) and waits for it; the program
    /// detaches when this returns.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

impl MuxHandle<Program> {
    /// The counters `tenbin mux run --metrics` serves, as data
    /// ([`MuxCounters::render`] is the Prometheus text).
    pub fn stats(&self) -> Result<MuxStats, TierError> {
        let counters = crate::metrics::read(&lock(&self.ctl)).map_err(load("reading counters"))?;
        Ok(MuxStats {
            counters,
            loop_counts: self.loop_counts(),
            readiness: self.ready.borrow().clone(),
        })
    }
}

/// The 10-second log line of nonzero verdict counters.
fn log_counters(ctl: &Controller<Program, MaglevRings>) {
    match ctl.writer().stats() {
        Ok(s) => {
            let nonzero: Vec<String> = STAT_NAMES
                .iter()
                .zip(&s)
                .filter(|(_, v)| **v > 0)
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            tracing::info!(counters = %nonzero.join(" "), "mux counters");
        }
        Err(e) => tracing::warn!("reading counters: {e}"),
    }
}
