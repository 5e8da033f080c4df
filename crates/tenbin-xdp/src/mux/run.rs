//! The Mux's event loop: it waits for a config change, an agent report, a reporting host
//! falling silent or the counters' log tick, and after each one writes the desired state
//! (configuration overlaid with the agents' verdicts) and publishes the readiness.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::spec::MuxReadiness;
use crate::control::{ApplyReport, Controller, MaglevRings, MuxSpec};
use crate::report::{HealthBook, Report, ReportKey};
use crate::writer::MapWriter;

/// The agents' report inbox: a bound socket, the key, and what it has learned.
pub(crate) struct Inbox {
    pub socket: UdpSocket,
    pub key: ReportKey,
    pub book: HealthBook,
}

/// A new desired state for the loop, and what becomes of the report inbox.
pub(crate) struct Change {
    pub base: MuxSpec,
    pub reports: Reports,
}

pub(crate) enum Reports {
    Keep,
    /// Another address (or none): the new socket, already bound.
    Replace(Option<Inbox>),
    /// Same address, another key or timeout: the socket and what it learned stay.
    Rekey {
        key: ReportKey,
        timeout: Duration,
    },
}

/// Counts the loop keeps (read by `stats()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopCounts {
    /// Desired states written that changed something.
    pub updates: u64,
    /// Writes that failed (the previous state stays in the maps).
    pub apply_errors: u64,
    pub reports_accepted: u64,
    /// Stale or replayed reports.
    pub reports_ignored: u64,
    /// Datagrams that were not valid reports (bad key, truncated...).
    pub reports_refused: u64,
}

pub(crate) struct Loop<W: MapWriter> {
    pub ctl: Arc<Mutex<Controller<W, MaglevRings>>>,
    pub base: MuxSpec,
    pub inbox: Option<Inbox>,
    pub ready: watch::Sender<MuxReadiness>,
    pub counts: Arc<Mutex<LoopCounts>>,
    /// Called every 10 s with the controller (the counters' log line).
    pub tick: fn(&Controller<W, MaglevRings>),
}

impl<W: MapWriter> Loop<W> {
    pub async fn run(
        mut self,
        mut changes: mpsc::UnboundedReceiver<Change>,
        cancel: CancellationToken,
    ) {
        let started = Instant::now();
        let mut log = tokio::time::interval(Duration::from_secs(10));
        log.tick().await;
        let mut buf = vec![0u8; 2048];
        self.reconcile(started.elapsed());
        loop {
            let now = started.elapsed();
            let stale = self
                .inbox
                .as_ref()
                .and_then(|i| i.book.next_stale(now))
                .map(|t| started + t);
            tokio::select! {
                _ = cancel.cancelled() => break,
                change = changes.recv() => match change {
                    Some(c) => {
                        self.base = c.base;
                        match c.reports {
                            Reports::Keep => {}
                            Reports::Replace(inbox) => self.inbox = inbox,
                            Reports::Rekey { key, timeout } => {
                                if let Some(i) = &mut self.inbox {
                                    i.key = key;
                                    i.book.set_timeout(timeout);
                                }
                            }
                        }
                    }
                    None => break,
                },
                got = recv(self.inbox.as_ref(), &mut buf) => {
                    if let Some((n, from)) = got {
                        self.on_datagram(&buf[..n], from, started.elapsed());
                    }
                }
                _ = sleep_until(stale) => {}
                _ = log.tick() => {
                    (self.tick)(&lock(&self.ctl));
                    continue;
                }
            }
            self.reconcile(started.elapsed());
        }
        self.ready.send_modify(|r| r.attached = false);
    }

    fn on_datagram(&mut self, b: &[u8], from: std::net::SocketAddr, now: Duration) {
        let Some(inbox) = &mut self.inbox else {
            return;
        };
        let mut counts = lock(&self.counts);
        match Report::decode(b, &inbox.key) {
            Ok(r) if inbox.book.on_report(&r, now) => counts.reports_accepted += 1,
            Ok(_) => {
                counts.reports_ignored += 1;
                tracing::debug!(%from, "stale or replayed report ignored");
            }
            Err(e) => {
                counts.reports_refused += 1;
                tracing::warn!(%from, "agent report refused: {e}");
            }
        }
    }

    /// Writes the configured state overlaid with the agents' verdicts and publishes the
    /// readiness when it changed.
    fn reconcile(&mut self, now: Duration) {
        let mut desired = self.base.clone();
        if let Some(i) = &self.inbox {
            i.book.overlay(&mut desired, now);
        }
        let applied = lock(&self.ctl).apply(&desired);
        let ok = applied.is_ok();
        match applied {
            Ok(r) if r != ApplyReport::default() => {
                lock(&self.counts).updates += 1;
                tracing::info!(report = ?r, "data plane updated");
            }
            Ok(_) => {}
            Err(e) => {
                lock(&self.counts).apply_errors += 1;
                tracing::error!("applying the desired state: {e}");
            }
        }
        let next = MuxReadiness::of(&desired, ok);
        self.ready.send_if_modified(|r| {
            let changed = *r != next;
            *r = next;
            changed
        });
    }
}

async fn recv(inbox: Option<&Inbox>, buf: &mut [u8]) -> Option<(usize, std::net::SocketAddr)> {
    match inbox {
        Some(i) => match i.socket.recv_from(buf).await {
            Ok(got) => Some(got),
            Err(e) => {
                // ICMP errors surface here on some kernels; the socket stays usable.
                tracing::debug!("receiving reports: {e}");
                None
            }
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
