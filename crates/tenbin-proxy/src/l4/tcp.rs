//! `mode tcp`: accept, lease a server, connect (failing over), copy.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tenbin_core::BackendId;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::copy::{self, CopyError, Progress, Relay};
use super::{client_key, splice, version_of, ActiveGuard, L4Stats};
use crate::pool::{Lease, Outcome, Pool, PoolError};
use crate::proxy_protocol::{Header, Version};

/// A `mode tcp` frontend's runtime: its pool and the knobs of each session.
#[derive(Debug)]
pub struct TcpFrontend {
    pub name: String,
    pub pool: Pool,
    pub connect_timeout: Duration,
    /// No byte in either direction for this long ends the session.
    pub idle_timeout: Duration,
    /// How long a connection may wait in the pool's queue (None: the pool's own timeout).
    pub queue_timeout: Option<Duration>,
    /// Other servers tried after a failed connect.
    pub retries: u32,
    /// PROXY protocol header sent to the server before any client byte.
    pub proxy_protocol: Option<Version>,
    /// Move bytes with splice(2) through a pipe instead of copying through userspace.
    pub splice: bool,
    pub stats: Arc<L4Stats>,
    /// Source-address persistence of the pool (issue 4).
    pub persistence: Option<Arc<crate::persist::Persistence>>,
}

impl TcpFrontend {
    pub fn new(name: impl Into<String>, pool: Pool) -> Self {
        TcpFrontend {
            name: name.into(),
            pool,
            connect_timeout: super::CONNECT_TIMEOUT,
            idle_timeout: super::TCP_IDLE,
            queue_timeout: None,
            retries: 2,
            proxy_protocol: None,
            splice: false,
            stats: Arc::default(),
            persistence: None,
        }
    }

    /// The runtime of a validated `mode = "tcp"` frontend over its default pool.
    pub fn from_config(f: &tenbin_config::Frontend, pool: Pool) -> Self {
        TcpFrontend {
            name: f.name.get_ref().clone(),
            pool,
            connect_timeout: f.timeouts.connect,
            idle_timeout: f.timeouts.tcp_idle,
            queue_timeout: Some(f.timeouts.queue),
            retries: f.retries,
            proxy_protocol: version_of(f.proxy_protocol),
            splice: false,
            stats: Arc::default(),
            persistence: None,
        }
    }
}

/// Serves `listener` until `shutdown` resolves. Sessions already running are left to finish
/// on their own (bounded by the idle timeout); only accepting stops.
pub async fn run<F>(
    listener: TcpListener,
    frontend: Arc<TcpFrontend>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let fe = Arc::clone(&frontend);
                    tokio::spawn(async move { serve_connection(stream, peer, fe).await });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    warn!(frontend = %frontend.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

/// Why a client connection never reached a server.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("every tried server failed to connect: {0:?}")]
    AllFailed(Vec<BackendId>),
}

/// Leases a server and connects to it; on a failed or timed-out connect the server is
/// reported to the pool's signal sink and another one is tried, up to `retries` more.
pub async fn connect(
    fe: &TcpFrontend,
    key: Option<u64>,
    pinned: Option<BackendId>,
) -> Result<(TcpStream, Lease), ConnectError> {
    let mut tried: Vec<BackendId> = Vec::new();
    for _ in 0..=fe.retries {
        // A persisted client goes to its server first (issue 4).
        let pin = pinned.filter(|_| tried.is_empty());
        let mut lease = match pin.and_then(|id| fe.pool.acquire_pinned(id)) {
            Some(lease) => lease,
            None => {
                fe.pool
                    .acquire_within(key, &tried, fe.queue_timeout)
                    .await?
            }
        };
        let started = Instant::now();
        match tokio::time::timeout(fe.connect_timeout, TcpStream::connect(lease.addr())).await {
            Ok(Ok(stream)) => {
                let latency = started.elapsed();
                lease.set_latency(latency);
                lease.report(Outcome::Success { latency });
                return Ok((stream, lease));
            }
            Ok(Err(e)) => {
                debug!(server = %lease.name(), error = %e, "connect failed");
                lease.report(Outcome::ConnectFailed);
            }
            Err(_) => {
                debug!(server = %lease.name(), "connect timed out");
                lease.report(Outcome::ConnectTimeout);
            }
        }
        tried.push(lease.id());
    }
    Err(ConnectError::AllFailed(tried))
}

/// One accepted client connection, relayed to a server until either side is done.
pub async fn serve_connection(client: TcpStream, peer: SocketAddr, fe: Arc<TcpFrontend>) {
    L4Stats::bump(&fe.stats.accepted);
    let _active = ActiveGuard::new(&fe.stats);
    let key = client_key(&fe.pool, peer.ip());
    let sticky = fe
        .persistence
        .as_ref()
        .and_then(|p| p.source_session(peer.ip()));
    let pinned = sticky.as_ref().and_then(|s| s.target(&fe.pool));
    let (mut server, lease) = match connect(&fe, key, pinned).await {
        Ok(pair) => {
            if let Some(s) = &sticky {
                s.learn(pair.1.id());
            }
            pair
        }
        Err(e) => {
            debug!(frontend = %fe.name, client = %peer, error = %e, "no server reached");
            L4Stats::bump(&fe.stats.failed);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if let Some(version) = fe.proxy_protocol {
        let local = client.local_addr().unwrap_or(peer);
        let header = Header::tcp(peer, local).encode(version);
        if let Err(e) = server.write_all(&header).await {
            lease.report(Outcome::ServerError);
            debug!(server = %lease.name(), error = %e, "PROXY header not sent");
            return;
        }
    }
    let result = relay(client, server, Progress::default(), &fe).await;
    match result {
        Ok(moved) => {
            let s = &fe.stats;
            s.bytes_in
                .fetch_add(moved.client_to_server, std::sync::atomic::Ordering::Relaxed);
            s.bytes_out
                .fetch_add(moved.server_to_client, std::sync::atomic::Ordering::Relaxed);
        }
        Err(CopyError::Idle(_)) => L4Stats::bump(&fe.stats.idle_closed),
        Err(e) => debug!(frontend = %fe.name, client = %peer, error = %e, "session ended"),
    }
    drop(lease);
}

/// Relays a session from `progress` on, here or, when this worker's CPU is contended and
/// another worker has room (`crate::placement`), on that worker: both sockets leave this
/// runtime's reactor, join the other one's and the relay goes on there, while this task
/// waits for it (so the tier's tracker and its hard cancel still cover the session).
fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    progress: Progress,
    fe: &Arc<TcpFrontend>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<copy::Moved, CopyError>> + Send + '_>> {
    Box::pin(async move {
        let better = &crate::placement::better;
        let run = if fe.splice {
            splice::relay(&mut client, &mut server, progress, fe.idle_timeout, better).await?
        } else {
            // The halves borrow the streams, which outlive the relay.
            let outlets = copy::Outlets {
                to_server: Some(server.as_raw_fd()),
                to_client: Some(client.as_raw_fd()),
            };
            let (mut cr, mut cw) = client.split();
            let (mut sr, mut sw) = server.split();
            let halves = (&mut cr, &mut cw, &mut sr, &mut sw);
            copy::relay(halves, outlets, progress, fe.idle_timeout, better).await?
        };
        let (to, progress) = match run {
            Relay::Done(moved) => return Ok(moved),
            Relay::Move(to, progress) => (to, progress),
        };
        let Some(handle) = crate::placement::worker(to) else {
            return relay(client, server, progress, fe).await;
        };
        let (c, s) = match (client.into_std(), server.into_std()) {
            (Ok(c), Ok(s)) => (c, s),
            (Err(e), _) => return Err(CopyError::Client(e)),
            (_, Err(e)) => return Err(CopyError::Server(e)),
        };
        L4Stats::bump(&fe.stats.moved);
        debug!(frontend = %fe.name, worker = to, "session moves to a less contended worker");
        let fe = Arc::clone(fe);
        let there = handle.spawn(async move {
            let client = TcpStream::from_std(c).map_err(CopyError::Client)?;
            let server = TcpStream::from_std(s).map_err(CopyError::Server)?;
            relay(client, server, progress, &fe).await
        });
        match tokio_util::task::AbortOnDropHandle::new(there).await {
            Ok(r) => r,
            Err(e) => Err(CopyError::Client(io::Error::other(e))),
        }
    })
}
