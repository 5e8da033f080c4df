//! Plain HTTP/1.1 to servers, driven inline by the request that uses the connection.
//!
//! The proxy speaks HTTP/1.1 to its servers itself: [`wire`] writes the request head and
//! reads the response (head, length or chunked framing), and this module moves the bytes.
//! There is no connection task and no channel: the request's own task writes the request
//! and reads the response head ([`send`]), and the response body reads the rest as the
//! client side polls it ([`UpstreamBody`]). HAProxy and Pingora work the same way; hyper's
//! client connection, which this replaces, dispatched every request through a channel to
//! its connection state machine, and that cost more than the parsing.
//!
//! A connection whose response was read to the end, with nothing after it, goes back to an
//! idle list of the thread it finished on, keyed by server address only, so it outlives a
//! reload that keeps the server; with one current-thread runtime per worker, each worker
//! keeps its own connections and never locks. Idle connections are checked before reuse
//! and dropped after [`IDLE_TIMEOUT`]; each worker thread runs [`keep_idle`], which watches
//! its idle sockets with its own waker from the first tick (a second) after they came back,
//! so a server closing one is noticed (and its socket closed) then, not at the next
//! checkout.
//!
//! TLS towards servers and protocol upgrades stay on hyper-util's client (`forward`).

pub mod wire;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use self::wire::{ChunkDecoder, Decoded, RequestFraming, ResponseFraming, WireError};
use super::body::{BoxError, ProxyBody};
use crate::batch::flush::Outbox;
use crate::batch::GATHER;

/// How long a connection may sit unused before it is closed (hyper-util's default pool idle
/// timeout).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per server and thread; more are closed.
const MAX_IDLE_PER_SERVER: usize = 256;
/// Every this many check-ins, idle lists of every server are swept of expired connections
/// (servers removed by a reload are never checked out again).
const SWEEP_EVERY: u32 = 1024;
/// Request body bytes gathered behind the head (or a previous chunk) into one write.
const COALESCE: usize = 16 * 1024;
/// Room made in a connection's read buffer before each read.
const READ_AHEAD: usize = 16 * 1024;

/// Why an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("upstream: {0}")]
    Io(#[source] io::Error),
    #[error("upstream: {0}")]
    Wire(#[source] WireError),
    /// The client's request body failed while it was being sent (refused, cut short).
    #[error("request body: {0}")]
    Body(#[source] BoxError),
    #[error("upstream connection closed before a response")]
    Closed,
}

/// One upstream connection, the bytes read from it that no response has used yet, and the
/// buffer its requests are written from (kept with the connection: no allocation per
/// request).
pub(crate) struct Pooled {
    /// A bodiless request's head waits here for the worker's flusher (`crate::batch`);
    /// declared before `io`, so a head still held goes out before the socket closes.
    outbox: Option<Outbox>,
    io: TcpStream,
    buf: BytesMut,
    out: Vec<u8>,
    addr: SocketAddr,
}

impl Pooled {
    /// Whether the connection is still open and silent, as an idle one must be; `cx` is told
    /// when that changes. A byte from an idle server (or its close) ends the connection.
    fn quiet(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        loop {
            match self.io.poll_read_ready(cx) {
                Poll::Pending => return true,
                Poll::Ready(Err(_)) => return false,
                Poll::Ready(Ok(())) => match self.io.try_read(&mut [0u8; 1]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    _ => return false,
                },
            }
        }
    }

    fn reusable(&mut self) -> bool {
        self.outbox.as_ref().is_none_or(Outbox::is_empty)
            && self.quiet(&mut Context::from_waker(Waker::noop()))
    }

    /// Reads more of the server's bytes into the buffer; `Ok(0)` at its end of stream.
    /// A request head the flusher handed back is written on first (or its error returned).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if let Some(o) = self.outbox.as_ref().filter(|o| o.came_back()) {
            if let Poll::Ready(Err(e)) = o.poll_settle(cx, Pin::new(&mut self.io), false) {
                return Poll::Ready(Err(e));
            }
        }
        self.buf.reserve(READ_AHEAD);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }
}

#[derive(Default)]
struct Idle {
    // foldhash, not SipHash: looked up twice per request, keyed by the operator's addresses.
    by_server: HashMap<SocketAddr, Vec<(Instant, Pooled)>, foldhash::fast::RandomState>,
    checkins: u32,
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
            // Not handed to `keep_idle` now: under load the connection is checked out
            // again within microseconds, and a sweep per check-in cost more than the rest
            // of the idle list's work. The next tick starts watching it.
            list.push((now, c));
        }
    });
}

/// Keeps this thread's idle connections honest, forever (a worker runs it beside its
/// connections): every second it drops those idle longer than [`IDLE_TIMEOUT`] and watches
/// the rest with this task's waker, so a server's close or an unexpected byte ends a
/// connection watched since the last tick at once (one that came back since, at the next
/// tick). Without it a closed connection would hold its socket until the next request to
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

/// One pass of [`keep_idle`]: never ready, it is woken by a watched connection's socket or
/// the tick.
fn sweep(cx: &mut Context<'_>) -> Poll<()> {
    let _ = IDLE.try_with(|idle| {
        let Ok(mut idle) = idle.try_borrow_mut() else {
            return;
        };
        let now = Instant::now();
        idle.by_server.retain(|_, list| {
            list.retain_mut(|(since, c)| now.duration_since(*since) < IDLE_TIMEOUT && c.quiet(cx));
            !list.is_empty()
        });
    });
    Poll::Pending
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Pooled, UpstreamError> {
    let io = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
        Err(_) => return Err(UpstreamError::ConnectTimeout),
    };
    let _ = io.set_nodelay(true);
    Ok(Pooled {
        outbox: Outbox::new(io.as_raw_fd()),
        io,
        buf: BytesMut::new(),
        out: Vec::with_capacity(512),
        addr,
    })
}

/// How `body` is framed towards the server: by its exact length when known (a buffered
/// body, or the client's Content-Length), else chunked.
fn request_framing(method: &Method, body: &ProxyBody) -> RequestFraming {
    if body.is_end_stream() {
        // An empty POST still says so; a GET says nothing (as hyper's client did).
        return if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            RequestFraming::Length(0)
        } else {
            RequestFraming::None
        };
    }
    match body.size_hint().exact() {
        Some(n) => RequestFraming::Length(n),
        None => RequestFraming::Chunked,
    }
}

/// A request head as the proxy forwards it, borrowed from the client's request: a retry
/// sends the same one again.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a Method,
    /// Origin form.
    pub(crate) path: &'a str,
    /// Hop-by-hop fields removed.
    pub(crate) headers: &'a HeaderMap,
    /// Host, when `headers` has none.
    pub(crate) host: Option<&'a HeaderValue>,
}

/// Sends `req` with `body` to `addr` on an idle connection of this thread or a new one,
/// and reads until the response head. The connection travels on with the response body.
pub(crate) async fn send(
    addr: SocketAddr,
    req: Outgoing<'_>,
    body: ProxyBody,
    connect_timeout: Duration,
) -> Result<Response<UpstreamBody>, UpstreamError> {
    let mut c = match checkout(addr) {
        Some(c) => c,
        None => connect(addr, connect_timeout).await?,
    };
    let framing = request_framing(req.method, &body);
    c.out.clear();
    wire::encode_request_head(
        &mut c.out,
        req.method,
        req.path,
        req.headers,
        req.host,
        framing,
    );
    // The request leaves with the other tasks' writes of this scheduler pass, so the
    // server wakes once per burst (see `crate::batch`): a bodiless one queued for the
    // worker's flusher, the task going straight on to read the response; any other after
    // a pass.
    let queued = match c.outbox.as_ref() {
        Some(o) if body.is_end_stream() && c.out.len() <= GATHER => {
            poll_fn(|cx| Poll::Ready(o.offer(cx, &[IoSlice::new(&c.out)], GATHER))).await
        }
        _ => false,
    };
    if queued {
        c.out.clear();
    } else {
        if let Some(o) = c.outbox.as_ref() {
            o.settle(&mut c.io).await.map_err(UpstreamError::Io)?;
        }
        tokio::task::yield_now().await;
        write_body(&mut c.io, &mut c.out, body, framing).await?;
    }
    if c.out.capacity() > 4 * COALESCE {
        // A huge head (up to the header limit) does not pin its buffer to the connection.
        c.out = Vec::with_capacity(512);
    }
    let head = read_head(&mut c, *req.method == Method::HEAD).await?;
    let mut resp = Response::new(UpstreamBody {
        inner: Inner::Inline {
            state: match head.framing {
                ResponseFraming::Empty => State::Done,
                ResponseFraming::Length(n) => State::Length(n),
                ResponseFraming::Chunked => State::Chunked(ChunkDecoder::default()),
                ResponseFraming::Close => State::Close,
            },
            keep_alive: head.keep_alive,
            conn: Some(c),
        },
    });
    *resp.status_mut() = head.status;
    *resp.version_mut() = head.version;
    *resp.headers_mut() = head.headers;
    Ok(resp)
}

/// Writes the request head in `out` and then the body, framed as `framing` says; small
/// pieces are gathered into one write, and whatever is gathered goes out before waiting on
/// a body that is not ready. `out` is empty again when it returns `Ok`.
async fn write_body(
    io: &mut TcpStream,
    out: &mut Vec<u8>,
    mut body: ProxyBody,
    framing: RequestFraming,
) -> Result<(), UpstreamError> {
    let chunked = framing == RequestFraming::Chunked;
    while !body.is_end_stream() {
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        let frame = match ready {
            Poll::Ready(f) => f,
            Poll::Pending => {
                flush(io, out).await?;
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(UpstreamError::Body(e)),
            // Trailers are not forwarded (hyper's client did not send them either).
            Some(Ok(f)) => match f.into_data() {
                Ok(d) if !d.is_empty() => d,
                _ => continue,
            },
        };
        if chunked {
            wire::chunk_header(out, data.len());
        }
        if out.len() + data.len() <= COALESCE {
            out.extend_from_slice(&data);
        } else {
            flush(io, out).await?;
            io.write_all(&data).await.map_err(UpstreamError::Io)?;
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        }
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    flush(io, out).await
}

async fn flush(io: &mut TcpStream, out: &mut Vec<u8>) -> Result<(), UpstreamError> {
    if !out.is_empty() {
        io.write_all(out).await.map_err(UpstreamError::Io)?;
        out.clear();
    }
    Ok(())
}

/// Reads the final response head (interim 1xx responses other than 101 are skipped).
async fn read_head(c: &mut Pooled, head_request: bool) -> Result<wire::Head, UpstreamError> {
    loop {
        if !c.buf.is_empty() {
            if let Some((used, head)) =
                wire::parse_response_head(&c.buf, head_request).map_err(UpstreamError::Wire)?
            {
                // Advancing keeps the buffer unique (and reusable); splitting would share it.
                c.buf.advance(used);
                if head.status.is_informational()
                    && head.status != http::StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                return Ok(head);
            }
        }
        match poll_fn(|cx| c.poll_fill(cx)).await {
            Ok(0) => return Err(UpstreamError::Closed),
            Ok(_) => {}
            Err(e) => return Err(UpstreamError::Io(e)),
        }
    }
}

/// A server's response body. Inline, it reads its connection as the client side polls it,
/// and hands the connection back for reuse once read to the end (dropped earlier, the
/// connection closes: HTTP/1 cannot abandon half a response).
pub(crate) struct UpstreamBody {
    inner: Inner,
}

enum Inner {
    /// A body whose connection someone else drives (hyper-util's client).
    Detached(Incoming),
    Inline {
        state: State,
        keep_alive: bool,
        /// `None` once the connection failed.
        conn: Option<Pooled>,
    },
}

enum State {
    Length(u64),
    Chunked(ChunkDecoder),
    Close,
    Done,
}

impl UpstreamBody {
    /// A body whose connection someone else drives (hyper-util's client).
    pub(crate) fn detached(inner: Incoming) -> Self {
        UpstreamBody {
            inner: Inner::Detached(inner),
        }
    }

    /// Whether this is the body of a response [`send`] read, whose head holds end-to-end
    /// fields only (`wire` leaves hop-by-hop ones out).
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.inner, Inner::Inline { .. })
    }
}

fn data(b: Bytes) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    Poll::Ready(Some(Ok(Frame::data(b))))
}

fn failed(e: impl Into<BoxError>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    Poll::Ready(Some(Err(e.into())))
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let (state, conn, keep_alive) = match &mut self.inner {
            Inner::Detached(b) => return Pin::new(b).poll_frame(cx).map_err(BoxError::from),
            Inner::Inline {
                state,
                conn,
                keep_alive,
            } => (state, conn, keep_alive),
        };
        loop {
            let Some(c) = conn.as_mut() else {
                return Poll::Ready(None);
            };
            match state {
                State::Done => return Poll::Ready(None),
                State::Length(left) if !c.buf.is_empty() => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX);
                    let b = wire::take(&mut c.buf, n);
                    *left -= b.len() as u64;
                    if *left == 0 {
                        *state = State::Done;
                    }
                    return data(b);
                }
                State::Close if !c.buf.is_empty() => {
                    return data(wire::take(&mut c.buf, usize::MAX))
                }
                State::Chunked(dec) if !c.buf.is_empty() => match dec.decode(&mut c.buf) {
                    Ok(Decoded::Data(b)) => return data(b),
                    Ok(Decoded::End) => {
                        *state = State::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::NeedMore) => {}
                    Err(e) => {
                        *conn = None;
                        return failed(e);
                    }
                },
                _ => {}
            }
            match c.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) if matches!(state, State::Close) => {
                    *state = State::Done;
                    *keep_alive = false;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    *conn = None;
                    return failed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection inside a response body",
                    ));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    *conn = None;
                    return failed(e);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Detached(b) => b.is_end_stream(),
            Inner::Inline { state, conn, .. } => conn.is_none() || matches!(state, State::Done),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Detached(b) => b.size_hint(),
            Inner::Inline {
                state: State::Length(n),
                ..
            } => SizeHint::with_exact(*n),
            Inner::Inline {
                state: State::Done, ..
            } => SizeHint::with_exact(0),
            Inner::Inline { .. } => SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let Inner::Inline {
            state: State::Done,
            keep_alive: true,
            conn,
        } = &mut self.inner
        {
            if let Some(c) = conn.take() {
                checkin(c);
            }
        }
    }
}
