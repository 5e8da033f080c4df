//! Bidirectional copy with half-close and an idle timeout.
//!
//! Each direction is its own loop, so a peer that stops reading stalls only its direction.
//! When one side ends its stream (EOF) the other side's write half is shut down and the
//! opposite direction keeps flowing until it ends too (TCP half-close). Any byte moved in
//! either direction resets the idle timer; when it fires the whole session ends.
//!
//! A [`relay`] (and splice's) is resumable: [`Run`] pauses both directions between a write
//! and the next read when `crate::placement` names a better worker, and a later run goes on
//! from the [`Progress`] it returns.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::batch::flush::Outbox;
use crate::placement::{self, Brings};

/// Per-direction buffer, HAProxy's `tune.bufsize`. One iperf3 stream over loopback moved
/// 9.5-10.3 Gbit/s through 16 KiB buffers and 6.4-7.9 through 64 KiB ones (HAProxy: 9.1-9.6,
/// same run): a smaller read hands each chunk on sooner, so both sockets keep moving.
pub const BUFFER: usize = 16 * 1024;

/// Chunks up to this size (a request, an answer) are written after the scheduler pass that
/// read them, so the writes of one pass leave together and the peers wake once for them:
/// with one worker and 64 keep-alive clients through mode tcp, +5-7% req/s (median of 12
/// interleaved rounds). The worker's flusher sends them ([`crate::batch::flush`]: no
/// second poll of the relay per chunk), or, without an outlet, the relay waits a pass
/// ([`crate::batch::pass`]) and writes them itself. Bigger reads are bulk and go straight
/// out.
/// [`Run::wrote`] also counts these chunks as requests: every
/// [`placement::CHECK_REQUESTS`] of them it asks where the session would run better.
pub(crate) const BATCHED_UP_TO: usize = 4 * 1024;

/// Bytes moved by a finished session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub client_to_server: u64,
    pub server_to_client: u64,
}

/// Why a session ended, when not by both sides closing.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no traffic for {0:?}")]
    Idle(Duration),
    #[error("client side: {0}")]
    Client(#[source] io::Error),
    #[error("server side: {0}")]
    Server(#[source] io::Error),
}

/// The last time bytes moved, shared by both directions and the watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    nanos: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Activity {
            start: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let n = Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos();
        self.nanos
            .store(n.min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    pub(crate) fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    /// Resolves once nothing moved for `idle`.
    pub(crate) async fn expired(&self, idle: Duration) {
        loop {
            let deadline = self.last() + idle;
            tokio::time::sleep_until(deadline).await;
            if Instant::now() >= self.last() + idle {
                return;
            }
        }
    }
}

/// Copies between a client and a server (each given as read and write halves) until both
/// directions have ended, an error occurs, or nothing moved for `idle`.
pub async fn bidirectional<CR, CW, SR, SW>(
    mut client_read: CR,
    mut client_write: CW,
    mut server_read: SR,
    mut server_write: SW,
    idle: Duration,
) -> Result<Moved, CopyError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    let halves = (
        &mut client_read,
        &mut client_write,
        &mut server_read,
        &mut server_write,
    );
    // Never asked to move, so never paused: a `Move` cannot come back, and would carry the
    // same counts if it did.
    let outlets = Outlets::default();
    match relay(halves, outlets, Progress::default(), idle, &|_| None).await? {
        Relay::Done(moved) | Relay::Move(_, Progress { moved, .. }) => Ok(moved),
    }
}

/// How far a relay got: the bytes each way and which directions have ended (half-close).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    pub moved: Moved,
    up_ended: bool,
    down_ended: bool,
    /// When the session last moved to another worker.
    settled_at: Option<Instant>,
}

/// How one run of [`relay`] ended.
#[derive(Debug)]
pub(crate) enum Relay {
    /// Both directions ended.
    Done(Moved),
    /// Paused with no byte read but not yet written: go on on worker `.0` from `.1`.
    Move(usize, Progress),
}

/// Asked to stop at the next read (and where to go on): both directions stop there, so no
/// byte is in flight. Both run in one task, so the value is enough: the direction that sets
/// it yields once, and the next poll of the task finds it in both (an atomic load per read,
/// no lock).
///
/// A direction stops in two steps, because what it still writes (a chunk in its
/// [`Outbox`], a write the socket has not taken) its peer may take only once that peer can
/// write to the other direction's source: first it sends what it holds while the other goes
/// on relaying, then it waits at its read, still relaying what comes, and both stop once
/// both wait there with nothing held (`ready`). Splice holds nothing at its read, so it only
/// waits. A direction that ended counts as ready. Stopping at the first read instead
/// stalled a session whose server answers only once its own write is done.
#[derive(Debug, Default)]
struct Pause {
    to: std::sync::OnceLock<usize>,
    /// Directions waiting at their read with nothing held, or ended.
    ready: AtomicU8,
}

impl Pause {
    async fn ask(&self, to: usize) {
        let _ = self.to.set(to);
        tokio::task::yield_now().await;
    }

    /// Counts a direction as ready; when that makes both, it yields once so the other one,
    /// waiting in [`Pause::both_ready`], sees it at the task's next poll. Returns whether
    /// both are.
    async fn ready(&self) -> bool {
        let both = self.ready.fetch_add(1, Ordering::AcqRel) + 1 >= 2;
        if both {
            tokio::task::yield_now().await;
        }
        both
    }

    /// A ready direction read something: it is relaying again.
    fn busy(&self) {
        self.ready.fetch_sub(1, Ordering::AcqRel);
    }

    fn both_ready(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|_| {
            if self.ready.load(Ordering::Acquire) >= 2 {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }

    fn asked(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|_| {
            if self.to.get().is_some() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
}

/// One direction's end: its bytes so far and whether its source ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Leg {
    pub total: u64,
    pub ended: bool,
}

/// [`bidirectional`], resumable: see [`Run`]. Calling `relay` again with the progress of a
/// [`Relay::Move`] (on the sockets, re-registered wherever) goes on where it stopped.
pub(crate) async fn relay<CR, CW, SR, SW, B>(
    (client_read, client_write, server_read, server_write): (&mut CR, &mut CW, &mut SR, &mut SW),
    outlets: Outlets,
    progress: Progress,
    idle: Duration,
    better: &B,
) -> Result<Relay, CopyError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
    B: Fn(Brings) -> Option<usize> + Sync,
{
    let run = Run::new(progress, better);
    let up = run.one_way(client_read, server_write, true, outlets.to_server);
    let down = run.one_way(server_read, client_write, false, outlets.to_client);
    run.finish(up, down, idle).await
}

/// The sockets a relay's small writes may leave on through the worker's flusher
/// ([`crate::batch::flush`]): each the descriptor of the socket of the matching write half,
/// which stays open for as long as the relay runs. None: small writes wait a pass instead.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Outlets {
    pub to_server: Option<RawFd>,
    pub to_client: Option<RawFd>,
}

/// What a direction does next.
enum Next {
    /// A move was asked for: send what is held, then wait to stop (see [`Pause`]).
    Settle,
    /// Both directions wait with nothing held: stop.
    Pause,
    /// The flusher handed a chunk back (or it failed).
    Returned,
    Read(usize),
}

/// Resolves when `outbox` has a chunk back; never without one.
async fn returned(outbox: Option<&Outbox>) {
    match outbox {
        Some(o) => o.returned().await,
        None => std::future::pending().await,
    }
}

/// One run of a relay, shared by both its directions (the userspace copy's or splice's):
/// every [`placement::CHECK_BYTES`] a direction moves, and every
/// [`placement::CHECK_REQUESTS`] small chunks it relays (an interactive session: what it
/// brings to a worker is one client's share, [`Brings::Requests`]), `better` is asked for a
/// worker the session would run better on (not within [`placement::SETTLE`] of the last
/// move); on an
/// answer both directions stop before their next read, so no byte is in flight, and the
/// run ends with [`Relay::Move`]. Directions that ended before stay ended.
pub(crate) struct Run<'b, B> {
    activity: Activity,
    pause: Pause,
    better: &'b B,
    from: Progress,
}

/// Bytes a direction still moves before it next asks to move as a bulk session, and the
/// small chunks it relayed since it last asked as an interactive one.
#[derive(Debug)]
pub(crate) struct Check {
    bytes: u64,
    small: u32,
}

impl Check {
    fn new() -> Self {
        Check {
            bytes: placement::CHECK_BYTES,
            small: 0,
        }
    }
}

impl<'b, B: Fn(Brings) -> Option<usize>> Run<'b, B> {
    pub(crate) fn new(from: Progress, better: &'b B) -> Self {
        Run {
            activity: Activity::new(),
            pause: Pause::default(),
            better,
            from,
        }
    }

    /// Where a direction (`up`: client to server) goes on from: its bytes so far, or its
    /// final [`Leg`] if it ended in an earlier run.
    pub(crate) fn start(&self, up: bool) -> Result<(u64, Check), Leg> {
        let (total, ended) = if up {
            (self.from.moved.client_to_server, self.from.up_ended)
        } else {
            (self.from.moved.server_to_client, self.from.down_ended)
        };
        let check = Check::new();
        if ended {
            Err(Leg { total, ended })
        } else {
            Ok((total, check))
        }
    }

    /// Resolves once a move was asked for: race it against a read, never against a write.
    pub(crate) fn paused(&self) -> impl Future<Output = ()> + '_ {
        self.pause.asked()
    }

    /// Whether a move was asked for.
    pub(crate) fn pausing(&self) -> bool {
        self.pause.to.get().is_some()
    }

    /// A direction waits at its read with nothing held, a move being asked: counts it ready
    /// and says whether both are, and so stop ([`Pause`]).
    pub(crate) async fn ready(&self) -> bool {
        self.pause.ready().await
    }

    /// A ready direction read something and relays it.
    pub(crate) fn busy(&self) {
        self.pause.busy();
    }

    /// Resolves once both directions are ready: race it against a ready direction's read.
    pub(crate) fn both_ready(&self) -> impl Future<Output = ()> + '_ {
        self.pause.both_ready()
    }

    /// A direction ended: ready for good.
    pub(crate) async fn ended(&self) {
        self.pause.ready().await;
    }

    /// Counts `n` bytes written by a direction (or queued to be: [`Outbox`]), which resets
    /// the idle timer (one clock read per chunk); past its next check, asks to move.
    pub(crate) async fn wrote(&self, n: usize, check: &mut Check) {
        self.activity.touch();
        let bulk = match check.bytes.checked_sub(n as u64).filter(|&left| left > 0) {
            Some(left) => {
                check.bytes = left;
                false
            }
            None => {
                check.bytes = placement::CHECK_BYTES;
                true
            }
        };
        let requests = n <= BATCHED_UP_TO && {
            check.small = check.small.wrapping_add(1);
            check.small.is_multiple_of(placement::CHECK_REQUESTS)
        };
        let brings = match (bulk, requests) {
            (true, _) => Brings::Bulk,
            (false, true) => Brings::Requests,
            (false, false) => return,
        };
        // A session that just moved stays put for a while.
        if self
            .from
            .settled_at
            .is_none_or(|t| t.elapsed() >= placement::SETTLE)
        {
            if let Some(to) = (self.better)(brings) {
                self.pause.ask(to).await;
            }
        }
    }

    /// Runs both directions to their end, a pause, an error or `idle` without traffic.
    pub(crate) async fn finish<U, D>(
        &self,
        up: U,
        down: D,
        idle: Duration,
    ) -> Result<Relay, CopyError>
    where
        U: Future<Output = Result<Leg, DirectionError>>,
        D: Future<Output = Result<Leg, DirectionError>>,
    {
        let (up, down) = join_directions(up, down, &self.activity, idle).await?;
        let moved = Moved {
            client_to_server: up.total,
            server_to_client: down.total,
        };
        match self.pause.to.get() {
            Some(&to) if !(up.ended && down.ended) => Ok(Relay::Move(
                to,
                Progress {
                    moved,
                    up_ended: up.ended,
                    down_ended: down.ended,
                    settled_at: Some(Instant::now()),
                },
            )),
            _ => Ok(Relay::Done(moved)),
        }
    }

    /// The userspace copy of one direction; errors say whether the read side (`true`) or the
    /// write side failed.
    ///
    /// With an `outlet`, small chunks go out through the worker's flusher ([`Outbox`]);
    /// without one, each waits a pass ([`crate::batch::pass`]) and is written here. Either
    /// way nothing is held when the direction ends or pauses.
    async fn one_way<R, W>(
        &self,
        r: &mut R,
        w: &mut W,
        up: bool,
        outlet: Option<RawFd>,
    ) -> Result<Leg, DirectionError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let (mut total, mut check) = match self.start(up) {
            Ok(at) => at,
            Err(ended) => {
                self.ended().await;
                return Ok(ended);
            }
        };
        let outbox = outlet.and_then(Outbox::new);
        let mut buf = vec![0u8; BUFFER];
        // Settled since a pause was asked: from then on it writes straight through.
        let mut settled = false;
        loop {
            if settled && self.ready().await {
                return Ok(Leg {
                    total,
                    ended: false,
                });
            }
            let next = tokio::select! {
                biased;
                () = self.both_ready(), if settled => Next::Pause,
                () = self.paused(), if !settled => Next::Settle,
                () = returned(outbox.as_ref()) => Next::Returned,
                n = r.read(&mut buf) => Next::Read(n.map_err(|e| (e, true))?),
            };
            let n = match next {
                Next::Read(n) => {
                    if settled {
                        self.busy();
                    }
                    n
                }
                Next::Returned => {
                    if settled {
                        self.busy();
                    }
                    settle(outbox.as_ref(), w).await?;
                    continue;
                }
                Next::Settle => {
                    settle(outbox.as_ref(), w).await?;
                    settled = true;
                    continue;
                }
                Next::Pause => {
                    return Ok(Leg {
                        total,
                        ended: false,
                    });
                }
            };
            if n == 0 {
                // Half-close: pass the EOF on and keep the other direction running.
                settle(outbox.as_ref(), w).await?;
                w.shutdown().await.map_err(|e| (e, false))?;
                self.ended().await;
                return Ok(Leg { total, ended: true });
            }
            let chunk = &buf[..n];
            match outbox.as_ref() {
                Some(o) if n <= BATCHED_UP_TO && !settled => o.send(w, chunk).await,
                Some(o) => match o.settle(w).await {
                    Ok(()) => w.write_all(chunk).await,
                    Err(e) => Err(e),
                },
                None => {
                    if n <= BATCHED_UP_TO {
                        crate::batch::pass().await;
                    }
                    w.write_all(chunk).await
                }
            }
            .map_err(|e| (e, false))?;
            total += n as u64;
            self.wrote(n, &mut check).await;
        }
    }
}

/// How one direction failed: the error and whether its read side (`true`) failed.
pub(crate) type DirectionError = (io::Error, bool);

/// Waits until `outbox` holds nothing (see [`Outbox::settle`]).
async fn settle<W: AsyncWrite + Unpin>(
    outbox: Option<&Outbox>,
    w: &mut W,
) -> Result<(), DirectionError> {
    match outbox {
        Some(o) => o.settle(w).await.map_err(|e| (e, false)),
        None => Ok(()),
    }
}

/// Runs both directions of a session to their end, or until nothing moved for `idle`
/// ([`Run::finish`], for the userspace copy and the splice path alike).
async fn join_directions<T, U, D>(
    up: U,
    down: D,
    activity: &Activity,
    idle: Duration,
) -> Result<(T, T), CopyError>
where
    U: Future<Output = Result<T, DirectionError>>,
    D: Future<Output = Result<T, DirectionError>>,
{
    // Upstream reads the client and writes the server; downstream the other way round.
    let up = async {
        up.await.map_err(|(e, read)| {
            if read {
                CopyError::Client(e)
            } else {
                CopyError::Server(e)
            }
        })
    };
    let down = async {
        down.await.map_err(|(e, read)| {
            if read {
                CopyError::Server(e)
            } else {
                CopyError::Client(e)
            }
        })
    };
    tokio::select! {
        r = async { tokio::try_join!(up, down) } => r,
        _ = activity.expired(idle) => Err(CopyError::Idle(idle)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, split};

    /// client <-> [proxy copy] <-> server over in-memory pipes.
    fn rig(
        idle: Duration,
    ) -> (
        tokio::io::DuplexStream,
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<Result<Moved, CopyError>>,
    ) {
        let (client, proxy_client) = duplex(1024);
        let (server, proxy_server) = duplex(1024);
        let task = tokio::spawn(async move {
            let (cr, cw) = split(proxy_client);
            let (sr, sw) = split(proxy_server);
            bidirectional(cr, cw, sr, sw, idle).await
        });
        (client, server, task)
    }

    #[tokio::test(start_paused = true)]
    async fn half_close_passes_eof_and_keeps_the_other_direction() {
        let (mut client, mut server, task) = rig(Duration::from_secs(60));
        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        // The server answers after seeing EOF; the client still reads it.
        server.write_all(b"response").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"response");
        let moved = task.await.unwrap().unwrap();
        assert_eq!(
            moved,
            Moved {
                client_to_server: 7,
                server_to_client: 8
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn large_transfer_in_both_directions_at_once() {
        let (client, mut server, task) = rig(Duration::from_secs(60));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let d2 = data.clone();
        let c = tokio::spawn(async move {
            let (mut r, mut w) = split(client);
            let send = async {
                w.write_all(&d2).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let recv = r.read_to_end(&mut got);
            let (_, n) = tokio::join!(send, recv);
            n.unwrap();
            got
        });
        // The server echoes until EOF, then closes its side.
        let (mut r, mut w) = split(&mut server);
        tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
        assert_eq!(c.await.unwrap(), data);
        let moved = task.await.unwrap().unwrap();
        assert_eq!(moved.client_to_server, data.len() as u64);
        assert_eq!(moved.server_to_client, data.len() as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_ends_a_silent_session_exactly_on_time() {
        let (_client, _server, task) = rig(Duration::from_secs(30));
        let started = Instant::now();
        let r = task.await.unwrap();
        assert!(matches!(r, Err(CopyError::Idle(d)) if d == Duration::from_secs(30)));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_resets_the_idle_timer() {
        let (mut client, mut server, task) = rig(Duration::from_secs(10));
        let started = Instant::now();
        let mut buf = [0u8; 1];
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(8)).await;
            client.write_all(b"x").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
        }
        assert!(!task.is_finished());
        let r = task.await.unwrap();
        assert!(matches!(r, Err(CopyError::Idle(_))));
        // Five pings 8 s apart, then 10 s of silence.
        assert_eq!(started.elapsed(), Duration::from_secs(50));
    }

    /// Runs a relay from client to server halves until done, moving once when asked.
    async fn relay_moving_once(
        proxy_client: tokio::io::DuplexStream,
        proxy_server: tokio::io::DuplexStream,
    ) -> (Moved, Vec<usize>) {
        let (mut cr, mut cw) = split(proxy_client);
        let (mut sr, mut sw) = split(proxy_server);
        let asked = std::sync::atomic::AtomicBool::new(false);
        let once = |_| (!asked.swap(true, Ordering::Relaxed)).then_some(1);
        let mut progress = Progress::default();
        let mut moves = Vec::new();
        loop {
            let halves = (&mut cr, &mut cw, &mut sr, &mut sw);
            match relay(
                halves,
                Outlets::default(),
                progress,
                Duration::from_secs(60),
                &once,
            )
            .await
            .unwrap()
            {
                Relay::Done(moved) => return (moved, moves),
                Relay::Move(to, p) => {
                    moves.push(to);
                    progress = p;
                }
            }
        }
    }

    /// The server answers only after it has written its own stream, so while it writes, the
    /// client's bytes back up in the proxy; the move is asked by the direction that reads
    /// the server. That direction must not stop reading while the other still holds a write
    /// the server will take only once its own write is done.
    #[tokio::test]
    async fn a_move_asked_while_the_other_direction_is_blocked_does_not_stall_it() {
        let (client, proxy_client) = duplex(64 * 1024);
        let (server, proxy_server) = duplex(64 * 1024);
        let down_size = (placement::CHECK_BYTES + 1024 * 1024) as usize;
        let up_size = 1024 * 1024;
        let down: Vec<u8> = (0..down_size).map(|i| (i % 251) as u8).collect();
        let up: Vec<u8> = (0..up_size).map(|i| (i % 241) as u8).collect();
        let (to_send, expect_down) = (down.clone(), down);
        let (client_sends, expect_up) = (up.clone(), up);
        let server = tokio::spawn(async move {
            let (mut r, mut w) = split(server);
            w.write_all(&to_send).await.unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            w.shutdown().await.unwrap();
            got
        });
        let client = tokio::spawn(async move {
            let (mut r, mut w) = split(client);
            let send = async {
                w.write_all(&client_sends).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let (_, n) = tokio::join!(send, r.read_to_end(&mut got));
            n.unwrap();
            got
        });
        let guard = Duration::from_secs(60);
        let (moved, moves) =
            tokio::time::timeout(guard, relay_moving_once(proxy_client, proxy_server))
                .await
                .expect("the relay stalled");
        assert_eq!(moves, vec![1]);
        assert_eq!(moved.client_to_server, up_size as u64);
        assert_eq!(moved.server_to_client, down_size as u64);
        assert!(
            server.await.unwrap() == expect_up,
            "the server got other bytes"
        );
        assert!(
            client.await.unwrap() == expect_down,
            "the client got other bytes"
        );
    }

    #[tokio::test]
    async fn a_relay_paused_to_move_loses_no_byte_and_goes_on() {
        let (client, proxy_client) = duplex(64 * 1024);
        let (server, proxy_server) = duplex(64 * 1024);
        let size = (placement::CHECK_BYTES + (placement::CHECK_BYTES / 2)) as usize;
        let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        let sent = data.clone();
        let (mut c, mut s) = (client, server);
        let writer = tokio::spawn(async move {
            c.write_all(&sent).await.unwrap();
            c.shutdown().await.unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            back
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(b"done").await.unwrap();
            s.shutdown().await.unwrap();
            got
        });
        let (moved, moves) = relay_moving_once(proxy_client, proxy_server).await;
        assert_eq!(moves, vec![1], "asked once past CHECK_BYTES, moved once");
        assert_eq!(reader.await.unwrap(), data);
        assert_eq!(writer.await.unwrap(), b"done");
        assert_eq!(moved.client_to_server, size as u64);
        assert_eq!(moved.server_to_client, 4);
    }

    #[tokio::test]
    async fn a_half_closed_direction_stays_ended_across_a_move() {
        let (mut client, proxy_client) = duplex(64 * 1024);
        let (mut server, proxy_server) = duplex(64 * 1024);
        // The client sends its request and half-closes; the server streams a bulk answer.
        let size = (2 * placement::CHECK_BYTES) as usize;
        let bulk: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let sent = bulk.clone();
        let back_end = tokio::spawn(async move {
            let mut req = Vec::new();
            server.read_to_end(&mut req).await.unwrap();
            server.write_all(&sent).await.unwrap();
            server.shutdown().await.unwrap();
            req
        });
        let front = tokio::spawn(async move {
            client.write_all(b"GET").await.unwrap();
            client.shutdown().await.unwrap();
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let (moved, moves) = relay_moving_once(proxy_client, proxy_server).await;
        assert_eq!(moves, vec![1]);
        assert_eq!(back_end.await.unwrap(), b"GET");
        assert_eq!(front.await.unwrap(), bulk);
        assert_eq!(
            moved,
            Moved {
                client_to_server: 3,
                server_to_client: size as u64
            }
        );
    }

    /// What a spinning task has counted when a chunk was read from the client and when it
    /// was first offered to the server: the counter moves only when the relay let other
    /// ready tasks run in between.
    #[derive(Default)]
    struct Ticks {
        spun: std::sync::atomic::AtomicU64,
        read_at: std::sync::Mutex<Option<u64>>,
        written_at: std::sync::Mutex<Option<u64>>,
    }

    struct Noted<IO> {
        io: IO,
        ticks: std::sync::Arc<Ticks>,
    }

    impl<IO> Noted<IO> {
        fn note(&self, at: &std::sync::Mutex<Option<u64>>) {
            let mut at = at.lock().unwrap();
            at.get_or_insert(self.ticks.spun.load(Ordering::SeqCst));
        }
    }

    impl<IO: AsyncRead + Unpin> AsyncRead for Noted<IO> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let before = buf.filled().len();
            let r = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
            if buf.filled().len() > before {
                self.note(&self.ticks.read_at);
            }
            r
        }
    }

    impl<IO: AsyncWrite + Unpin> AsyncWrite for Noted<IO> {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.note(&self.ticks.written_at);
            std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// Relays one chunk of `size` bytes from the client while another task keeps waking
    /// itself; returns how often that task ran between the read and the write.
    async fn turns_between_read_and_write(size: usize) -> u64 {
        let ticks = std::sync::Arc::new(Ticks::default());
        let (mut client, proxy_client) = duplex(64 * 1024);
        let (mut server, proxy_server) = duplex(64 * 1024);
        let spinner = {
            let ticks = std::sync::Arc::clone(&ticks);
            tokio::spawn(async move {
                for _ in 0..1_000_000 {
                    ticks.spun.fetch_add(1, Ordering::SeqCst);
                    crate::batch::pass().await;
                }
            })
        };
        let relay = {
            let ticks = std::sync::Arc::clone(&ticks);
            tokio::spawn(async move {
                let (cr, cw) = split(proxy_client);
                let (sr, sw) = split(proxy_server);
                let cr = Noted {
                    io: cr,
                    ticks: std::sync::Arc::clone(&ticks),
                };
                let sw = Noted { io: sw, ticks };
                bidirectional(cr, cw, sr, sw, Duration::from_secs(60)).await
            })
        };
        let chunk = vec![7u8; size];
        client.write_all(&chunk).await.unwrap();
        let mut got = vec![0u8; size];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, chunk);
        spinner.abort();
        relay.abort();
        let read = ticks.read_at.lock().unwrap().expect("the chunk was read");
        let written = ticks
            .written_at
            .lock()
            .unwrap()
            .expect("the chunk was written");
        written - read
    }

    /// Polls of a relay over loopback TCP for `rounds` request/answer exchanges, with small
    /// writes through the flusher (`outlets`) or each waiting a pass.
    async fn relay_polls(rounds: usize, outlets: bool) -> u64 {
        use std::os::fd::AsRawFd;
        use tenbin_testkit::backend::{tcp_echo, tcp_pair};
        let echo = tcp_echo().spawn().await;
        let (mut client, mut proxy_client) = tcp_pair().await;
        let mut proxy_server = tokio::net::TcpStream::connect(echo.addr()).await.unwrap();
        let polls = std::sync::Arc::new(AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&polls);
        let relay = tokio::spawn(async move {
            let outlets = match outlets {
                true => Outlets {
                    to_server: Some(proxy_server.as_raw_fd()),
                    to_client: Some(proxy_client.as_raw_fd()),
                },
                false => Outlets::default(),
            };
            let (mut cr, mut cw) = proxy_client.split();
            let (mut sr, mut sw) = proxy_server.split();
            let halves = (&mut cr, &mut cw, &mut sr, &mut sw);
            let never = |_| None;
            let mut run = std::pin::pin!(relay(
                halves,
                outlets,
                Progress::default(),
                Duration::from_secs(60),
                &never,
            ));
            std::future::poll_fn(|cx| {
                counted.fetch_add(1, Ordering::Relaxed);
                run.as_mut().poll(cx)
            })
            .await
        });
        for i in 0..rounds {
            let ask = format!("request {i:05}");
            client.write_all(ask.as_bytes()).await.unwrap();
            let mut got = vec![0u8; ask.len()];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(got, ask.as_bytes());
        }
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        let Relay::Done(moved) = relay.await.unwrap().unwrap() else {
            panic!("the relay was never asked to move");
        };
        assert_eq!(moved.client_to_server, moved.server_to_client);
        assert_eq!(moved.client_to_server, 13 * rounds as u64);
        echo.stop().await;
        polls.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn small_writes_through_the_flusher_save_the_relay_a_poll_each() {
        let rounds = 300;
        let flushed = relay_polls(rounds, true).await;
        let passed = relay_polls(rounds, false).await;
        // A pass costs the relay a second poll per chunk: about 4 per exchange against 2.
        assert!(
            flushed * 4 < passed * 3,
            "{flushed} polls through the flusher, {passed} waiting passes, {rounds} exchanges"
        );
    }

    #[tokio::test]
    async fn a_small_chunk_waits_one_pass_and_a_bulk_one_goes_straight_out() {
        // A request-sized chunk: the other ready task runs before the relay writes it.
        assert!(turns_between_read_and_write(100).await >= 1);
        assert!(turns_between_read_and_write(BATCHED_UP_TO).await >= 1);
        // A bulk read is written in the same poll that read it.
        assert_eq!(turns_between_read_and_write(BATCHED_UP_TO + 1).await, 0);
        assert_eq!(turns_between_read_and_write(BUFFER).await, 0);
    }
}
