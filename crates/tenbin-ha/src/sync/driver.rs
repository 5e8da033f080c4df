//! The tokio shell around [`Session`]: one dialer task per peer (connect, push a full
//! snapshot, then every change; reconnect after a pause when the connection ends) and one
//! listener whose accepted connections merge what peers push.
//!
//! The node hands in its tables as a [`Tables`] and its changes on a broadcast channel; a
//! dialer that falls behind the channel (`Lagged`) or sees [`FeedItem::Lost`] resyncs in
//! full. Counters are published per connection in [`SyncHandle::stats`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::frame::{Role, WireEntry};
use super::session::{Event, Session, SessionConfig, SessionError, SessionStats};

/// The node's persistence tables as sync sees them.
pub trait Tables: Send + Sync + 'static {
    /// Every table's live entries (what a full resync sends).
    fn snapshot(&self) -> Vec<(String, Vec<WireEntry>)>;
    /// Folds a peer's entries into `table`; returns how many were taken.
    fn merge(&self, table: &str, entries: Vec<WireEntry>) -> u64;
}

/// What the node's change feed carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedItem {
    Change {
        table: Arc<str>,
        entry: WireEntry,
    },
    /// The feed dropped changes (its own bound): every peer resyncs in full.
    Lost,
}

/// Where to listen, whom to push to, and with which key.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub listen: Option<SocketAddr>,
    pub peers: Vec<SocketAddr>,
    /// The shared secret (at least 16 bytes; validation checks it).
    pub key: Vec<u8>,
    pub session: SessionConfig,
    /// Pause between a failed or ended connection and the next attempt.
    pub reconnect: Duration,
}

/// One connection as the node's state shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStatus {
    /// `out` (we push to it) or `in` (it pushes to us).
    pub direction: &'static str,
    pub address: Option<SocketAddr>,
    /// `connecting` while a dialer has no connection, then the session's state; the
    /// counters add up over every connection to this peer.
    pub session: SessionStats,
    pub connects: u64,
    /// Connections that ended on an error (bad frame, failed authentication, timeout).
    pub errors: u64,
    pub last_error: Option<String>,
}

/// The running sync role.
#[derive(Clone, Debug)]
pub struct SyncHandle {
    listen: Option<SocketAddr>,
    peers: Arc<Mutex<BTreeMap<String, PeerStatus>>>,
}

impl SyncHandle {
    /// The bound listen address (the OS's choice where the config said port 0).
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// Every connection, by `out/ADDR` or `in/ADDR`.
    pub fn stats(&self) -> BTreeMap<String, PeerStatus> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Binds the listener and starts every task on `tracker`; they end with `shutdown`.
pub async fn start(
    opts: SyncOptions,
    tables: Arc<dyn Tables>,
    feed: broadcast::Sender<FeedItem>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<SyncHandle> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &opts.key);
    let peers: Arc<Mutex<BTreeMap<String, PeerStatus>>> = Arc::default();
    let ctx = Ctx {
        key,
        cfg: opts.session.clone(),
        tables,
        peers: Arc::clone(&peers),
        shutdown,
    };
    let mut listen = None;
    if let Some(addr) = opts.listen {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, "listening (sync)");
        listen = Some(local);
        tracker.spawn(accept(listener, ctx.clone(), tracker.clone()));
    }
    for peer in &opts.peers {
        tracker.spawn(dial(*peer, ctx.clone(), feed.clone(), opts.reconnect));
    }
    Ok(SyncHandle { listen, peers })
}

#[derive(Clone)]
struct Ctx {
    key: hmac::Key,
    cfg: SessionConfig,
    tables: Arc<dyn Tables>,
    peers: Arc<Mutex<BTreeMap<String, PeerStatus>>>,
    shutdown: CancellationToken,
}

impl Ctx {
    fn update(&self, id: &str, f: impl FnOnce(&mut PeerStatus)) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        f(peers.entry(id.to_owned()).or_default());
    }
}

async fn accept(listener: TcpListener, ctx: Ctx, tracker: TaskTracker) {
    loop {
        let (stream, addr) = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { tracing::warn!("sync: accept: {e}"); continue; }
            },
        };
        let ctx = ctx.clone();
        prune_closed(&ctx);
        tracker.spawn(async move {
            let id = format!("in/{addr}");
            ctx.update(&id, |p| {
                p.direction = "in";
                p.address = Some(addr);
                p.connects += 1;
            });
            let r = run(stream, Role::Acceptor, &ctx, &id, None).await;
            finish(&ctx, &id, r);
        });
    }
}

async fn dial(peer: SocketAddr, ctx: Ctx, feed: broadcast::Sender<FeedItem>, pause: Duration) {
    let id = format!("out/{peer}");
    ctx.update(&id, |p| {
        p.direction = "out";
        p.address = Some(peer);
        p.session.state = "connecting";
    });
    loop {
        // Subscribe before connecting: whatever changes from now on is either in the
        // snapshot taken after the handshake or behind it in the channel.
        let changes = feed.subscribe();
        let connected = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            r = tokio::time::timeout(ctx.cfg.dead_after, TcpStream::connect(peer)) => r,
        };
        match connected {
            Ok(Ok(stream)) => {
                ctx.update(&id, |p| p.connects += 1);
                let r = run(stream, Role::Dialer, &ctx, &id, Some(changes)).await;
                finish(&ctx, &id, r);
            }
            Ok(Err(e)) => ctx.update(&id, |p| p.last_error = Some(e.to_string())),
            Err(_) => ctx.update(&id, |p| p.last_error = Some("connect timed out".into())),
        }
        ctx.update(&id, |p| p.session.state = "connecting");
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Closed inbound connections kept for the state (their errors say why a peer failed).
const CLOSED_KEPT: usize = 8;

/// Each inbound connection has its own entry (the peer's port changes): forget all but
/// a few closed ones so reconnects do not grow the map.
fn prune_closed(ctx: &Ctx) {
    let mut peers = ctx.peers.lock().unwrap_or_else(|e| e.into_inner());
    let closed: Vec<String> = peers
        .iter()
        .filter(|(_, p)| p.direction == "in" && p.session.state == "closed")
        .map(|(id, _)| id.clone())
        .collect();
    for id in closed.iter().skip(CLOSED_KEPT) {
        peers.remove(id);
    }
}

fn finish(ctx: &Ctx, id: &str, r: Result<(), SessionError>) {
    ctx.update(id, |p| {
        p.session.state = "closed";
        if let Err(e) = &r {
            p.errors += 1;
            p.last_error = Some(e.to_string());
        }
    });
    match r {
        Ok(()) => tracing::info!(peer = id, "sync: connection closed"),
        Err(e) => tracing::warn!(peer = id, "sync: connection ended: {e}"),
    }
}

/// Runs one connection until it ends or the node shuts down.
async fn run(
    stream: TcpStream,
    role: Role,
    ctx: &Ctx,
    id: &str,
    mut changes: Option<broadcast::Receiver<FeedItem>>,
) -> Result<(), SessionError> {
    let _ = stream.set_nodelay(true);
    let epoch = Instant::now();
    let now = || epoch.elapsed();
    let mut nonce = [0u8; 16];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SessionError::Io("no random nonce".into()))?;
    let mut s = Session::new(role, &ctx.key, nonce, ctx.cfg.clone(), now())?;
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; 16 * 1024];
    let (mut pending, mut off) = (Vec::new(), 0usize);
    // Counters add up over a peer's successive connections.
    let base = ctx
        .peers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .map(|p| p.session.clone())
        .unwrap_or_default();
    loop {
        while let Some(ev) = s.poll_event() {
            match ev {
                Event::Established { peer } => {
                    tracing::info!(peer = id, name = %peer, "sync: peer authenticated");
                }
                Event::SnapshotWanted => s.send_snapshot(ctx.tables.snapshot(), now())?,
                Event::Received { table, entries } => {
                    ctx.tables.merge(&table, entries);
                }
                Event::SnapshotComplete { entries } => {
                    tracing::info!(peer = id, entries, "sync: full resync received");
                }
            }
        }
        if off == pending.len() {
            pending = s.poll_transmit(now()).unwrap_or_default();
            off = 0;
        }
        let mut stats = s.stats(now());
        stats.entries_sent += base.entries_sent;
        stats.entries_received += base.entries_received;
        stats.resyncs += base.resyncs;
        stats.overflows += base.overflows;
        ctx.update(id, |p| p.session = stats);
        let wake = s.poll_timeout().map(|t| epoch + t);
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            r = rd.read(&mut buf) => match r {
                Ok(0) => return Err(SessionError::PeerClosed),
                Ok(n) => s.handle_input(&buf[..n], now())?,
                Err(e) => return Err(SessionError::Io(e.to_string())),
            },
            w = wr.write(&pending[off..]), if off < pending.len() => match w {
                Ok(n) => off += n,
                Err(e) => return Err(SessionError::Io(e.to_string())),
            },
            c = next(&mut changes) => match c {
                Ok(FeedItem::Change { table, entry }) => s.push(&table, entry, now()),
                Ok(FeedItem::Lost) | Err(broadcast::error::RecvError::Lagged(_)) => s.overflow(),
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            () = sleep_until(wake) => s.handle_timeout(now())?,
        }
    }
}

async fn next(
    rx: &mut Option<broadcast::Receiver<FeedItem>>,
) -> Result<FeedItem, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
