//! The client side: accept loop; per client, plain bodiless HTTP/1.1 requests served by
//! [`super::h1`] until one needs hyper, then one hyper connection for the rest (HTTP/1.1
//! or h2c by prior knowledge); admission (connection limits), hyper's protocol limits, the
//! slowloris and idle timeouts (timed by [`super::activity`]), the HTTP/2 stream-reset
//! budget, graceful shutdown; refusals hyper makes on its own are counted from the error
//! that ends the connection. Live reconfiguration ([`HttpService::reconfigure`]): every
//! request reads the frontend current when it arrives, so requests in flight finish on the
//! snapshot they started with.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::activity::{Activity, Expired};
use super::admit::Slot;
use super::body::refusal;
use super::body::ProxyBody;
use super::forward::{ClientBody, ClientCancelled, State};
use super::h1::{self, Prefixed};
use super::stats::Reject;
use super::traffic::Counted;
use super::{strict, HttpFrontend};
use crate::batch::Batched;
use crate::cancel::OnWake;

/// Serves `frontend` on `listener` until `shutdown` resolves. Then it stops accepting and
/// asks open connections to finish their current requests and close; it returns without
/// waiting for them.
pub async fn serve<F>(listener: TcpListener, frontend: HttpFrontend, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    let service = HttpService::new(frontend);
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (service, stop) = (service.clone(), stop.clone());
                    tokio::spawn(async move {
                        service.serve_connection(stream, peer, false, stop).await;
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, frontend = %service.state.load().fe.name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    stop.cancel();
    Ok(())
}

/// An HTTP frontend ready to serve client connections from any transport: plain TCP through
/// [`serve`], or streams the TLS layer has already decrypted. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpService {
    state: Arc<ArcSwap<State>>,
}

impl HttpService {
    pub fn new(frontend: HttpFrontend) -> Self {
        HttpService {
            state: Arc::new(ArcSwap::from_pointee(State::new(frontend, None))),
        }
    }

    /// Replaces the frontend (rules, pools, headers, timeouts, limits, persistence, upstream
    /// TLS) for every request that arrives from now on, on connections open now too. Requests
    /// in flight keep the frontend they started with. Connection-level settings (header read
    /// and idle timeouts, protocol limits) apply to connections opened after the change; the
    /// admission table and refusal counters carry over while the limits stay the same, so
    /// open connections keep counting against them.
    pub fn reconfigure(&self, frontend: HttpFrontend) {
        let old = self.state.load_full();
        self.state.store(Arc::new(State::new(frontend, Some(&old))));
    }

    /// The frontend's name.
    pub fn name(&self) -> String {
        self.state.load().fe.name.clone()
    }

    /// Serves one client connection until the client closes it, it idles out, or `stop` is
    /// cancelled (then current requests finish first). `secure` marks a TLS client connection
    /// (`X-Forwarded-Proto: https`).
    pub async fn serve_connection<IO>(
        &self,
        io: IO,
        peer: SocketAddr,
        secure: bool,
        stop: CancellationToken,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        connection(Arc::clone(&self.state), io, peer, secure, stop).await;
    }

    /// The frontend's refusal counters.
    pub fn stats(&self) -> Arc<super::HttpStats> {
        Arc::clone(&self.state.load().fe.stats)
    }

    /// Client connections currently holding a slot.
    pub fn open_connections(&self) -> usize {
        self.state.load().admission.open()
    }
}

async fn connection<IO>(
    live: Arc<ArcSwap<State>>,
    stream: IO,
    peer: SocketAddr,
    secure: bool,
    stop: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The frontend as the connection opens: admission, connection-level timeouts and limits.
    let state = live.load_full();
    let fe_stats = Arc::clone(&state.fe.stats);
    fe_stats.traffic.accepted();
    let reject = |reason| fe_stats.reject(&state.fe.name, reason, peer);
    let slot = match state.admission.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(reason) => {
            reject(reason);
            let status = reason.status().unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            fe_stats.traffic.refused(status);
            refuse_connection(stream, reason).await;
            return;
        }
    };
    let movable_from = Some(Instant::now());
    serve_admitted(
        live,
        stream,
        peer,
        secure,
        stop,
        Arc::new(slot),
        movable_from,
    )
    .await;
}

/// Serves an admitted client connection (holding `slot`), from its first request or, after
/// a move from another worker, from the next one. A plain TCP connection may move to a less
/// contended worker between two requests from `movable_from` on ([`move_to`]).
async fn serve_admitted<IO>(
    live: Arc<ArcSwap<State>>,
    stream: IO,
    peer: SocketAddr,
    secure: bool,
    stop: CancellationToken,
    slot: Arc<Slot>,
    movable_from: Option<Instant>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let proto = if secure { "https" } else { "http" };
    let state = live.load_full();
    let fe_stats = Arc::clone(&state.fe.stats);
    let reject = |reason| fe_stats.reject(&state.fe.name, reason, peer);
    let movable_from = movable_from.filter(|_| tcp_of(&stream).is_some());
    let timeouts = state.fe.timeouts;
    let limits = state.fe.limits;
    let activity = Arc::new(Activity::new(limits.h2_max_resets));
    // Counted outside Batched: a write queued in the outbox counts as written.
    let outlet = tcp_of(&stream).map(|tcp| tcp.as_raw_fd());
    let batched = Batched::with_outlet(stream, outlet);
    let mut io = Counted::new(batched, Arc::clone(&fe_stats), Arc::clone(&activity));
    let ask = Ask {
        live,
        activity: Arc::clone(&activity),
        slot,
        peer,
        proto,
    };
    // What ends a connection besides its client, watched beside it: polled only when one of
    // them woke the task, not on every read and write of the connection.
    let (idle, header) = (timeouts.client_idle, timeouts.client_header);
    let watched_activity = Arc::clone(&activity);
    let stop_after_move = stop.clone();
    let mut watch = OnWake::new(async move {
        let activity = watched_activity;
        let mut stopped = std::pin::pin!(stop.cancelled_owned());
        loop {
            let wake = activity.deadline(idle, header);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {
                    if let Some(reason) = activity.expired(idle, header) {
                        return Watch::Expired(reason);
                    }
                }
                _ = activity.over_budget.notified() => return Watch::ResetBudget,
                () = &mut stopped => return Watch::Stop,
            }
        }
    });

    // Plain HTTP/1.1 requests first, without hyper (`h1`); hyper takes the connection over
    // at the first request that needs it.
    let stopping = AtomicBool::new(false);
    let max_head = limits.max_header_bytes.max(64 * 1024);
    let ended = {
        let plain = h1::serve(&mut io, &stopping, movable_from, |req| ask.answer(req));
        let mut plain = std::pin::pin!(plain);
        let mut stop_seen = false;
        loop {
            tokio::select! {
                biased;
                ended = plain.as_mut() => break ended,
                w = &mut watch, if !stop_seen => match w {
                    Watch::Expired(Expired::Idle) => return reject(Reject::IdleTimeout),
                    Watch::Expired(Expired::Header) => return reject(Reject::HeaderTimeout),
                    Watch::ResetBudget => return reject(Reject::H2Reset),
                    // The request in flight is answered with `connection: close`.
                    Watch::Stop => {
                        stopping.store(true, Ordering::Relaxed);
                        if activity.is_idle() {
                            return;
                        }
                        stop_seen = true;
                    }
                },
            }
        }
    };
    let prefix = match ended {
        h1::Ended::Handover(prefix) if !stopping.load(Ordering::Relaxed) => prefix,
        h1::Ended::Move(to) => {
            let (live, slot) = (Arc::clone(&ask.live), Arc::clone(&ask.slot));
            drop(watch);
            return move_to(to, io, live, peer, stop_after_move, slot).await;
        }
        _ => return,
    };

    let io = TokioIo::new(Prefixed::new(prefix, io));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // `activity` times heads itself: hyper's timer would also cut idle keep-alive.
        .header_read_timeout(None)
        .max_headers(limits.max_headers)
        // Bounds what a half-sent head can make the connection buffer (hyper answers 431
        // when it fills); `strict` checks the exact head size once parsed. Not smaller:
        // the same buffer carries bodies both ways.
        .max_buf_size(max_head)
        .keep_alive(true);
    let keepalive = &limits.h2_keepalive_interval;
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.h2_max_header_list_bytes)
        .keep_alive_interval((!keepalive.is_zero()).then_some(*keepalive))
        .keep_alive_timeout(limits.h2_keepalive_timeout);
    let svc = service_fn(move |req: Request<Incoming>| {
        let answered = ask.answer(req.map(ClientBody::Hyper));
        async move { Ok::<_, Infallible>(answered.await) }
    });
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let watched = tokio::select! {
        biased;
        ended = conn.as_mut() => {
            if let Some(reason) = ended.err().and_then(|e| connection_refusal(&*e)) {
                reject(reason);
            }
            return;
        }
        w = &mut watch => w,
    };
    match watched {
        Watch::Expired(Expired::Idle) => reject(Reject::IdleTimeout),
        // A head still arriving: a graceful shutdown would wait for it.
        Watch::Expired(Expired::Header) => {
            reject(Reject::HeaderTimeout);
            return;
        }
        // Dropping the connection closes it at once: the client has spent its budget.
        Watch::ResetBudget => {
            reject(Reject::H2Reset);
            return;
        }
        Watch::Stop => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// The plain TCP stream under `io`, if that is what it is (not TLS, not a test's pipe).
fn tcp_of<IO: 'static>(io: &IO) -> Option<&TcpStream> {
    (io as &dyn std::any::Any).downcast_ref()
}

/// Moves a keep-alive connection, between two requests, to worker `to`, and waits there for
/// its end (so the tier's tracker and its hard cancel still cover it). The socket is
/// duplicated, the original leaves this worker's reactor as it closes and the copy joins the
/// other one's; the client sees nothing. If the socket cannot be duplicated (no file
/// descriptor left) the connection closes between requests, as an idle keep-alive one may.
async fn move_to<IO: AsyncWrite + Unpin + 'static>(
    to: usize,
    mut io: Counted<Batched<IO>>,
    live: Arc<ArcSwap<State>>,
    peer: SocketAddr,
    stop: CancellationToken,
    slot: Arc<Slot>,
) {
    let handle = crate::placement::worker(to);
    let copy = tcp_of(io.get_ref().get_ref()).map(|tcp| tcp.as_fd().try_clone_to_owned());
    let (Some(handle), Some(Ok(copy))) = (handle, copy) else {
        return;
    };
    // The last response leaves from here, whole, before the socket changes hands.
    if io.get_mut().settle().await.is_err() {
        return;
    }
    drop(io);
    live.load().fe.stats.traffic.moved();
    tracing::debug!(client = %peer, worker = to, "keep-alive connection moves to a less contended worker");
    let there = handle.spawn(resume(
        live,
        std::net::TcpStream::from(copy),
        peer,
        stop,
        slot,
    ));
    let _ = tokio_util::task::AbortOnDropHandle::new(there).await;
}

/// A moved connection, on its new worker: it stays there for [`crate::placement::SETTLE`].
fn resume(
    live: Arc<ArcSwap<State>>,
    stream: std::net::TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
    slot: Arc<Slot>,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let Ok(stream) = TcpStream::from_std(stream) else {
            return;
        };
        let settled = Some(Instant::now() + crate::placement::SETTLE);
        serve_admitted(live, stream, peer, false, stop, slot, settled).await;
    })
}

/// What every request of a connection is answered with, on either path.
struct Ask {
    live: Arc<ArcSwap<State>>,
    activity: Arc<Activity>,
    slot: Arc<Slot>,
    peer: SocketAddr,
    proto: &'static str,
}

impl Ask {
    /// The per-source rate, the strict head checks, then the proxy; the request counts as
    /// in flight for `activity` until its response is ready.
    fn answer(
        &self,
        req: Request<ClientBody>,
    ) -> impl Future<Output = Response<ProxyBody>> + Send + 'static {
        let state = self.live.load_full();
        let guard = self.activity.begin(req.version());
        let verdict = if self.slot.allow_request() {
            strict::check(&req, &state.fe.limits)
        } else {
            Err(Reject::SourceRate)
        };
        let (peer, proto) = (self.peer, self.proto);
        async move {
            let resp = match verdict {
                Ok(()) => state.handle(peer, proto, req).await,
                Err(reason) => {
                    state.fe.stats.reject(&state.fe.name, reason, peer);
                    let status = reason.status().unwrap_or(StatusCode::BAD_REQUEST);
                    state.fe.stats.traffic.refused(status);
                    refusal(status, req.version() < Version::HTTP_2)
                }
            };
            // Dropped unfinished, the guard counts a cancelled request.
            if resp.extensions().get::<ClientCancelled>().is_none() {
                guard.finish();
            }
            resp
        }
    }
}

/// Why a connection ends other than by its client or hyper.
enum Watch {
    Expired(Expired),
    ResetBudget,
    Stop,
}

/// What hyper refused on its own, from the error that ended the connection (`None`: the
/// client just went away).
fn connection_refusal(e: &(dyn std::error::Error + 'static)) -> Option<Reject> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            // No timeout comes from hyper: `activity` times heads and idling.
            if h.is_parse_too_large() {
                return Some(Reject::HeaderTooLarge);
            }
            if h.is_parse() {
                return Some(Reject::Malformed);
            }
        }
        if let Some(h) = s.downcast_ref::<h2::Error>() {
            if h.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) {
                return Some(Reject::H2Reset);
            }
            if h.is_library() || (h.is_go_away() && !h.is_remote()) {
                return Some(Reject::H2Protocol);
            }
        }
        source = s.source();
    }
    None
}

/// Answers a connection that got no slot with a plain HTTP/1.1 response, then reads what
/// the client already sent (bounded) so closing does not reset the answer away.
async fn refuse_connection<IO>(mut io: IO, reason: Reject)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let status = reason.status().unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let text = status.canonical_reason().unwrap_or("");
    let head = format!(
        "HTTP/1.1 {} {text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{} {text}\n",
        status.as_u16(),
        status.as_str().len() + text.len() + 2,
        status.as_u16(),
    );
    let linger = async {
        io.write_all(head.as_bytes()).await?;
        io.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            let n = io.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), linger).await;
}
