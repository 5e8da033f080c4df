//! `mode udp`: a session per client address, each with its own connected upstream socket.
//!
//! The first datagram from a client leases a server (without queueing: a datagram cannot
//! wait) and opens an upstream socket to it; later datagrams from that client follow the same
//! session. Replies from the server are sent back to the client from the listening socket,
//! so the client sees the address it talked to. A session ends after `idle_timeout` without
//! traffic in either direction, or when the server answers with ICMP port unreachable.
//!
//! With a `sessions` table (the tier gives every frontend one, kept across applies) each
//! new session is recorded as client address → server, and a new session for a client the
//! table knows goes back to that server: session sync fills the table from a peer, so after
//! a failover a client's flow keeps its server.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::debug;

use tenbin_core::persist::PersistKey;

use super::copy::Activity;
use super::{client_key, ActiveGuard, L4Stats};
use crate::persist::{PersistConfig, PersistMode, Persistence};
use crate::pool::{Lease, Outcome, Pool};

/// Largest datagram relayed.
const DATAGRAM: usize = 65_535;

/// A `mode udp` frontend's runtime.
#[derive(Debug)]
pub struct UdpFrontend {
    pub name: String,
    pub pool: Pool,
    pub idle_timeout: Duration,
    /// Sessions beyond this are refused (their datagrams dropped), bounding memory.
    pub max_sessions: usize,
    pub stats: Arc<L4Stats>,
    /// Client address → server of the sessions opened (see the module docs).
    pub sessions: Option<Arc<Persistence>>,
}

/// Key domain of UDP session keys (the persistence modes use 1 to 4).
const UDP_DOMAIN: u8 = 5;

/// The table key of a client's socket address, identical on every node.
pub fn session_key(client: SocketAddr) -> PersistKey {
    let mut b = [0u8; 18];
    let n = match client.ip() {
        IpAddr::V4(ip) => {
            b[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            b[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    b[n..n + 2].copy_from_slice(&client.port().to_be_bytes());
    PersistKey::from_bytes(UDP_DOMAIN, &b[..n + 2])
}

/// A session table for `fe`: as many entries as sessions, forgotten after the idle timeout.
pub fn session_table(fe: &UdpFrontend) -> Arc<Persistence> {
    let mut cfg = PersistConfig::new(PersistMode::Source, "");
    cfg.table_size = fe.max_sessions;
    cfg.idle_timeout = fe.idle_timeout;
    Arc::new(Persistence::new(cfg))
}

impl UdpFrontend {
    pub fn new(name: impl Into<String>, pool: Pool) -> Self {
        UdpFrontend {
            name: name.into(),
            pool,
            idle_timeout: super::UDP_IDLE,
            max_sessions: 65_536,
            stats: Arc::default(),
            sessions: None,
        }
    }

    /// The runtime of a validated `mode = "udp"` frontend over its default pool.
    pub fn from_config(f: &tenbin_config::Frontend, pool: Pool) -> Self {
        UdpFrontend {
            idle_timeout: f.timeouts.udp_idle,
            ..UdpFrontend::new(f.name.get_ref().clone(), pool)
        }
    }
}

struct Session {
    upstream: Arc<UdpSocket>,
    activity: Activity,
}

type Table = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

fn lock(t: &Table) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Session>>> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `socket` until `shutdown` resolves; every session ends with it.
pub async fn run<F>(socket: UdpSocket, frontend: Arc<UdpFrontend>, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    run_live(socket, Arc::new(ArcSwap::new(frontend)), shutdown).await
}

/// [`run`] with a frontend that may be replaced while it runs: each new session takes the
/// frontend current when its first datagram arrives; open sessions keep theirs.
pub async fn run_live<F>(
    socket: UdpSocket,
    live: Arc<ArcSwap<UdpFrontend>>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let socket = Arc::new(socket);
    let table: Table = Arc::default();
    let mut sessions = JoinSet::new();
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors for earlier replies surface here on some kernels: not fatal.
                Err(e) => { debug!(error = %e, "udp recv"); continue; }
            },
        };
        while sessions.try_join_next().is_some() {}
        let existing = {
            let t = lock(&table);
            t.get(&client).map(|s| {
                s.activity.touch();
                Arc::clone(s)
            })
        };
        let session = match existing {
            Some(s) => s,
            None => {
                let fe = live.load_full();
                match open(&fe, &table, client).await {
                    Some((s, lease)) => {
                        sessions.spawn(relay_back(
                            Arc::clone(&s),
                            lease,
                            client,
                            Arc::clone(&socket),
                            Arc::clone(&table),
                            fe,
                        ));
                        s
                    }
                    None => continue,
                }
            }
        };
        if let Err(e) = session.upstream.send(&buf[..n]).await {
            debug!(client = %client, error = %e, "udp send upstream");
        }
    }
}

/// Leases a server and opens the session's upstream socket; `None` drops the datagram.
async fn open(
    fe: &UdpFrontend,
    table: &Table,
    client: SocketAddr,
) -> Option<(Arc<Session>, Lease)> {
    if lock(table).len() >= fe.max_sessions {
        L4Stats::bump(&fe.stats.failed);
        return None;
    }
    let known = fe.sessions.as_ref().and_then(|t| {
        let server = t.lookup(session_key(client), t.current())?;
        fe.pool.acquire_pinned(server)
    });
    let lease = match known {
        Some(l) => l,
        None => match fe.pool.try_acquire(client_key(&fe.pool, client.ip()), &[]) {
            Ok(l) => l,
            Err(e) => {
                debug!(frontend = %fe.name, client = %client, error = %e, "udp: no server");
                L4Stats::bump(&fe.stats.failed);
                return None;
            }
        },
    };
    let unspecified = match lease.addr().ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let upstream = match UdpSocket::bind(SocketAddr::new(unspecified, 0)).await {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "udp: upstream bind");
            L4Stats::bump(&fe.stats.failed);
            return None;
        }
    };
    if let Err(e) = upstream.connect(lease.addr()).await {
        debug!(server = %lease.name(), error = %e, "udp: upstream connect");
        lease.report(Outcome::ConnectFailed);
        L4Stats::bump(&fe.stats.failed);
        return None;
    }
    let session = Arc::new(Session {
        upstream: Arc::new(upstream),
        activity: Activity::new(),
    });
    lock(table).insert(client, Arc::clone(&session));
    if let Some(t) = &fe.sessions {
        t.learn(session_key(client), lease.id(), t.current());
    }
    L4Stats::bump(&fe.stats.accepted);
    Some((session, lease))
}

/// Relays the server's replies to the client until the session idles out or the server
/// refuses; then removes the session (unless traffic arrived meanwhile) and ends the lease.
async fn relay_back(
    session: Arc<Session>,
    lease: Lease,
    client: SocketAddr,
    listener: Arc<UdpSocket>,
    table: Table,
    fe: Arc<UdpFrontend>,
) {
    let _active = ActiveGuard::new(&fe.stats);
    let mut buf = vec![0u8; DATAGRAM];
    let mut answered = false;
    loop {
        tokio::select! {
            r = session.upstream.recv(&mut buf) => match r {
                Ok(n) => {
                    session.activity.touch();
                    if !answered {
                        answered = true;
                        lease.report(Outcome::Success { latency: lease.started().elapsed() });
                    }
                    let _ = listener.send_to(&buf[..n], client).await;
                }
                Err(e) => {
                    debug!(server = %lease.name(), error = %e, "udp: upstream refused");
                    lease.report(Outcome::ConnectFailed);
                    lock(&table).remove(&client);
                    return;
                }
            },
            _ = session.activity.expired(fe.idle_timeout) => {
                let mut t = lock(&table);
                // The receive loop touches under this lock: re-check before leaving.
                if Instant::now() >= session_deadline(&session, fe.idle_timeout) {
                    t.remove(&client);
                    L4Stats::bump(&fe.stats.idle_closed);
                    return;
                }
            }
        }
    }
}

fn session_deadline(session: &Session, idle: Duration) -> Instant {
    session.activity.last() + idle
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}
