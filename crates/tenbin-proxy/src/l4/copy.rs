//! Bidirectional copy with half-close and an idle timeout.
//!
//! Each direction is its own loop, so a peer that stops reading stalls only its direction.
//! When one side ends its stream (EOF) the other side's write half is shut down and the
//! opposite direction keeps flowing until it ends too (TCP half-close). Any byte moved in
//! either direction resets the idle timer; when it fires the whole session ends.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Per-direction buffer, HAProxy's `tune.bufsize`. One iperf3 stream over loopback moved
/// 9.5-10.3 Gbit/s through 16 KiB buffers and 6.4-7.9 through 64 KiB ones (HAProxy: 9.1-9.6,
/// same run): a smaller read hands each chunk on sooner, so both sockets keep moving.
pub const BUFFER: usize = 16 * 1024;

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
    let activity = Activity::new();
    let up = one_way(&mut client_read, &mut server_write, &activity);
    let down = one_way(&mut server_read, &mut client_write, &activity);
    join_directions(up, down, &activity, idle).await
}

/// How one direction failed: the error and whether its read side (`true`) failed.
pub(crate) type DirectionError = (io::Error, bool);

/// Runs both directions of a session to their end, or until nothing moved for `idle`.
/// Shared by the userspace copy and the splice path.
pub(crate) async fn join_directions<U, D>(
    up: U,
    down: D,
    activity: &Activity,
    idle: Duration,
) -> Result<Moved, CopyError>
where
    U: Future<Output = Result<u64, DirectionError>>,
    D: Future<Output = Result<u64, DirectionError>>,
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
        r = async { tokio::try_join!(up, down) } => r.map(|(a, b)| Moved {
            client_to_server: a,
            server_to_client: b,
        }),
        _ = activity.expired(idle) => Err(CopyError::Idle(idle)),
    }
}

/// One direction; errors say whether the read side (`true`) or the write side failed.
async fn one_way<R, W>(r: &mut R, w: &mut W, activity: &Activity) -> Result<u64, DirectionError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.map_err(|e| (e, true))?;
        if n == 0 {
            // Half-close: pass the EOF on and keep the other direction running.
            w.shutdown().await.map_err(|e| (e, false))?;
            return Ok(total);
        }
        activity.touch();
        w.write_all(&buf[..n]).await.map_err(|e| (e, false))?;
        activity.touch();
        total += n as u64;
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
}
