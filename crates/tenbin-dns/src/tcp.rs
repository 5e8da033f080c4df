//! DNS over TCP (RFC 7766): length-prefixed messages, pipelined, answered in order, under
//! [`TcpLimits`]. A client is closed when it is idle for `idle` (between messages, or in the
//! middle of one), when an answer cannot be written within `write`, or when the server holds
//! `max_conns` connections and a new client arrives: then the connection that has gone longest
//! without a completed exchange is closed to make room (RFC 7766 §6.2.3), so idle or half-sent
//! connections cannot lock new clients out.

use crate::engine::Engine;
use crate::state::Transport;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// A TCP client gets this long between messages, and to finish one, before we close.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// An answer must be taken by the client within this long, or we close.
pub const TCP_WRITE: Duration = Duration::from_secs(10);
/// Concurrent TCP connections served per listener; a new one beyond it closes the idlest.
pub const TCP_MAX_CONNS: usize = 256;

/// Timeouts and the connection cap of the TCP listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    pub idle: Duration,
    pub write: Duration,
    pub max_conns: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            idle: TCP_IDLE,
            write: TCP_WRITE,
            max_conns: TCP_MAX_CONNS,
        }
    }
}

/// The open connections of one listener, ranked by their last completed exchange. Activity is
/// a sequence number, not a time: only the order matters, and the order is then exact.
#[derive(Debug, Default)]
pub(crate) struct ConnTable {
    next: u64,
    /// Connections that may be asked to close: (last activity, close signal).
    open: HashMap<u64, (u64, Arc<Notify>)>,
    /// Connections whose task is still running, evicted or not: what the cap counts.
    live: usize,
    /// Asked to close and not yet gone.
    closing: usize,
}

impl ConnTable {
    /// Registers a connection; returns its id and the signal that asks it to close.
    pub(crate) fn open(&mut self) -> (u64, Arc<Notify>) {
        let id = self.tick();
        let close = Arc::new(Notify::new());
        self.open.insert(id, (id, close.clone()));
        self.live += 1;
        (id, close)
    }

    /// Marks `id` active now (an answer was written).
    pub(crate) fn touch(&mut self, id: u64) {
        let now = self.tick();
        if let Some(e) = self.open.get_mut(&id) {
            e.0 = now;
        }
    }

    /// The task of `id` has ended.
    pub(crate) fn close(&mut self, id: u64) {
        if self.open.remove(&id).is_none() {
            self.closing = self.closing.saturating_sub(1);
        }
        self.live = self.live.saturating_sub(1);
    }

    /// Running connections, including those asked to close that have not gone yet.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Asks the connection idle longest to close, unless one asked earlier is still going:
    /// one newcomer costs at most one eviction. Returns the signal to send.
    pub(crate) fn evict_idlest(&mut self) -> Option<Arc<Notify>> {
        if self.closing > 0 {
            return None;
        }
        let (&id, _) = self.open.iter().min_by_key(|(_, (last, _))| *last)?;
        self.closing += 1;
        self.open.remove(&id).map(|(_, close)| close)
    }

    fn tick(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

type Shared = Arc<Mutex<ConnTable>>;

fn table(t: &Shared) -> std::sync::MutexGuard<'_, ConnTable> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) async fn tcp_loop(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let conns: Shared = Arc::default();
    // Signalled whenever a connection task ends, so the loop can wait for a freed slot.
    let freed = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let max = limits.max_conns.max(1);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = stop.changed() => break,
        };
        // At the cap: ask the idlest to close, and admit the newcomer once one has gone.
        loop {
            // Created before the check, so a close between the check and the wait is seen.
            let wait = freed.notified();
            {
                let mut t = table(&conns);
                if t.len() < max {
                    break;
                }
                if let Some(close) = t.evict_idlest() {
                    close.notify_one();
                }
            }
            tokio::select! {
                _ = wait => {}
                _ = stop.changed() => return shutdown(tasks).await,
            }
        }
        let (id, close) = table(&conns).open();
        let (engine, stop, conns, freed) =
            (engine.clone(), stop.clone(), conns.clone(), freed.clone());
        tasks.spawn(async move {
            let _ = tcp_conn(&engine, stream, peer, limits, stop, &conns, id, &close).await;
            table(&conns).close(id);
            freed.notify_waiters();
        });
        while tasks.try_join_next().is_some() {}
    }
    shutdown(tasks).await
}

async fn shutdown(mut tasks: JoinSet<()>) -> io::Result<()> {
    tasks.shutdown().await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn tcp_conn(
    engine: &Engine,
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
    conns: &Shared,
    id: u64,
    close: &Notify,
) -> io::Result<()> {
    let mut rng = StdRng::seed_from_u64(rand::random());
    let mut buf = Vec::new();
    loop {
        // The whole message (length and body) must arrive within `idle`: a client sending one
        // byte at a time gains nothing.
        let read = async {
            let len = usize::from(stream.read_u16().await?);
            buf.resize(len, 0);
            stream.read_exact(&mut buf).await.map(|_| ())
        };
        tokio::select! {
            r = tokio::time::timeout(limits.idle, read) => match r {
                Ok(Ok(())) => {}
                _ => return Ok(()),
            },
            _ = close.notified() => return Ok(()),
            _ = stop.changed() => return Ok(()),
        }
        let Some(resp) = engine.respond(&buf, peer.ip(), Transport::Tcp, &mut rng) else {
            return Ok(());
        };
        let Ok(rlen) = u16::try_from(resp.len()) else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(resp.len() + 2);
        out.extend_from_slice(&rlen.to_be_bytes());
        out.extend_from_slice(&resp);
        tokio::select! {
            r = tokio::time::timeout(limits.write, stream.write_all(&out)) => match r {
                Ok(Ok(())) => {}
                _ => return Ok(()),
            },
            _ = close.notified() => return Ok(()),
            _ = stop.changed() => return Ok(()),
        }
        table(conns).touch(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idlest_goes_first() {
        let mut t = ConnTable::default();
        let (a, _) = t.open();
        let (b, _) = t.open();
        let (c, _) = t.open();
        t.touch(a);
        // b has gone longest without an exchange, then c, then a.
        let order: Vec<u64> = (0..3)
            .map(|k| {
                let before: Vec<u64> = t.open.keys().copied().collect();
                t.evict_idlest().unwrap();
                let gone = before
                    .into_iter()
                    .find(|k| !t.open.contains_key(k))
                    .unwrap();
                // Still counted until its task ends; no second eviction meanwhile.
                assert_eq!(t.len(), 3 - k);
                assert!(t.evict_idlest().is_none());
                t.close(gone);
                gone
            })
            .collect();
        assert_eq!(order, vec![b, c, a]);
        assert_eq!(t.len(), 0);
        assert!(t.evict_idlest().is_none());
    }

    #[test]
    fn closed_connections_are_not_evicted() {
        let mut t = ConnTable::default();
        let (a, _) = t.open();
        let (b, _) = t.open();
        t.close(a);
        assert_eq!(t.len(), 1);
        t.evict_idlest().unwrap();
        t.close(b);
        assert_eq!((t.len(), t.closing), (0, 0));
    }
}
