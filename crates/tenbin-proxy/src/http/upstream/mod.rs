//! Plain HTTP/1.1 to servers, driven inline by the request that uses the connection.
//!
//! hyper-util's pooled client runs every upstream connection as its own task and hands each
//! request and response through channels to it: two task wake-ups per request on top of the
//! client connection's. Here the request's own task polls the upstream connection: while it
//! waits for the response head ([`send`]), and while the response body streams to the client
//! ([`UpstreamBody`]). A connection whose response was read to the end goes back to an idle
//! list of the thread it finished on, keyed by server address only, so it outlives a reload
//! that keeps the server; with one current-thread runtime per worker, each worker keeps its
//! own connections and never locks. Idle connections are checked before reuse and dropped
//! after [`IDLE_TIMEOUT`]; each worker thread runs [`keep_idle`], which polls its idle
//! connections with its own waker, so a server closing one is noticed (and its socket
//! closed) at once, not at the next checkout.
//!
//! TLS towards servers and protocol upgrades stay on hyper-util's client (`forward`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::ProxyBody;

/// How long a connection may sit unused before it is closed (hyper-util's default pool idle
/// timeout, which this replaces).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per server and thread; more are closed.
const MAX_IDLE_PER_SERVER: usize = 256;
/// Every this many check-ins, idle lists of every server are swept of expired connections
/// (servers removed by a reload are never checked out again).
const SWEEP_EVERY: u32 = 1024;

type Conn = Connection<TokioIo<TcpStream>, ProxyBody>;

/// Why an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("upstream: {0}")]
    Http(#[source] hyper::Error),
    #[error("upstream connection closed before a response")]
    Closed,
}

/// One upstream connection: the handle requests are sent on and the connection state
/// machine, which whoever uses the connection polls.
pub(crate) struct Pooled {
    send: SendRequest<ProxyBody>,
    /// `None` once the connection ended.
    conn: Option<Pin<Box<Conn>>>,
    addr: SocketAddr,
}

impl Pooled {
    /// Polls the connection (reads, writes, keep-alive bookkeeping); false once it ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(c) = &mut self.conn {
            if c.as_mut().poll(cx).is_ready() {
                self.conn = None;
            }
        }
        self.conn.is_some()
    }

    /// Whether another request can be sent now. Polls once without a waker: whoever takes
    /// the connection polls it again with theirs.
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.drive(&mut cx) && self.send.is_ready()
    }
}

#[derive(Default)]
struct Idle {
    by_server: HashMap<SocketAddr, Vec<(Instant, Pooled)>>,
    checkins: u32,
    /// The thread's [`keep_idle`] task, woken when a connection comes back so that it polls
    /// that one with its own waker too.
    keeper: Option<Waker>,
}

thread_local! {
    static IDLE: RefCell<Idle> = RefCell::default();
}

fn checkout(addr: SocketAddr) -> Option<Pooled> {
    IDLE.try_with(|idle| {
        let mut idle = idle.try_borrow_mut().ok()?;
        let list = idle.by_server.get_mut(&addr)?;
        while let Some((since, mut c)) = list.pop() {
            if since.elapsed() < IDLE_TIMEOUT && c.reusable() {
                return Some(c);
            }
        }
        None
    })
    .ok()
    .flatten()
}

/// Keeps `c` for the next request to its server, if it can carry one.
fn checkin(mut c: Pooled) {
    if !c.reusable() {
        return;
    }
    let _ = IDLE.try_with(|idle| {
        let Ok(mut idle) = idle.try_borrow_mut() else {
            return;
        };
        let now = Instant::now();
        idle.checkins = idle.checkins.wrapping_add(1);
        if idle.checkins % SWEEP_EVERY == 0 {
            idle.by_server.retain(|_, list| {
                list.retain(|(since, _)| now.duration_since(*since) < IDLE_TIMEOUT);
                !list.is_empty()
            });
        }
        let list = idle.by_server.entry(c.addr).or_default();
        if list.len() < MAX_IDLE_PER_SERVER {
            list.push((now, c));
            if let Some(w) = &idle.keeper {
                w.wake_by_ref();
            }
        }
    });
}

/// Keeps this thread's idle connections honest, forever (a worker runs it beside its
/// connections): polls each with this task's waker, so a server's close or an unexpected
/// byte ends it at once, and drops those idle longer than [`IDLE_TIMEOUT`] (checked every
/// second). Without it a closed connection would hold its socket until the next request to
/// that server.
pub(crate) async fn keep_idle() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = poll_fn(sweep) => {}
        }
    }
}

/// One pass of [`keep_idle`]: never ready, it is woken by a connection's socket, a check-in
/// or the tick.
fn sweep(cx: &mut Context<'_>) -> Poll<()> {
    let _ = IDLE.try_with(|idle| {
        let Ok(mut idle) = idle.try_borrow_mut() else {
            return;
        };
        idle.keeper = Some(cx.waker().clone());
        let now = Instant::now();
        idle.by_server.retain(|_, list| {
            list.retain_mut(|(since, c)| {
                now.duration_since(*since) < IDLE_TIMEOUT && c.drive(cx) && c.send.is_ready()
            });
            !list.is_empty()
        });
    });
    Poll::Pending
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Pooled, UpstreamError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
        Err(_) => return Err(UpstreamError::ConnectTimeout),
    };
    let _ = stream.set_nodelay(true);
    let (send, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Http)?;
    Ok(Pooled {
        send,
        conn: Some(Box::pin(conn)),
        addr,
    })
}

/// Sends `req` (origin-form target, Host set) to `addr` on an idle connection of this thread
/// or a new one, and drives the connection until the response head arrives. The connection
/// travels on with the response body.
pub(crate) async fn send(
    addr: SocketAddr,
    req: Request<ProxyBody>,
    connect_timeout: Duration,
) -> Result<Response<UpstreamBody>, UpstreamError> {
    let mut c = match checkout(addr) {
        Some(c) => c,
        None => connect(addr, connect_timeout).await?,
    };
    let mut head = pin!(c.send.send_request(req));
    let resp = poll_fn(|cx| {
        if let Poll::Ready(r) = head.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(UpstreamError::Http));
        }
        if c.drive(cx) {
            return Poll::Pending;
        }
        // The connection ended: the request learns why, or it never will.
        match head.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r.map_err(UpstreamError::Http)),
            Poll::Pending => Poll::Ready(Err(UpstreamError::Closed)),
        }
    })
    .await?;
    let (parts, body) = resp.into_parts();
    let done = body.is_end_stream();
    Ok(Response::from_parts(
        parts,
        UpstreamBody {
            inner: body,
            conn: Some(c),
            done,
        },
    ))
}

/// A server's response body that drives its connection while it streams, and hands the
/// connection back for reuse once read to the end (dropped earlier, the connection closes:
/// HTTP/1 cannot abandon half a response).
pub(crate) struct UpstreamBody {
    inner: Incoming,
    conn: Option<Pooled>,
    done: bool,
}

impl UpstreamBody {
    /// A body whose connection someone else drives (hyper-util's client).
    pub(crate) fn detached(inner: Incoming) -> Self {
        UpstreamBody {
            inner,
            conn: None,
            done: false,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(c) = &mut this.conn {
            c.drive(cx);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.done = true,
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if self.done || self.inner.is_end_stream() {
                checkin(c);
            }
        }
    }
}
