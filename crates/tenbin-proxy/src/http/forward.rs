//! One request through the proxy: route, lease, send, retry safely, answer. Plain servers
//! are sent to inline (`upstream`); TLS servers and upgrades through hyper-util's client.
//!
//! Retry rules (Pingora's and HAProxy's): a connect failure is always safe to retry, since
//! the server never saw the request; any other failure before a response head is safe only
//! for idempotent methods. Either way the body must be replayable (buffered), and each retry
//! excludes the servers already tried.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tenbin_core::BackendId;
use tokio::time::Instant;

use super::admit::Admission;
use super::body::{
    body_refusal, empty, error_response, full, refusal, BoxError, GuardedBody, LeaseBody, ProxyBody,
};
use super::headers::{add_forwarded, strip_hop_by_hop, wants_upgrade};
use super::key::request_key;
use super::log::Entry;
use super::rules::host_of;
use super::stats::Reject;
use super::upstream::{self, UpstreamBody, UpstreamError};
use super::{AccessLogFormat, HttpFrontend};
use crate::persist::{acquire, Sticky};
use crate::pool::{Lease, Outcome, PoolError};
use crate::tls::connector::{upstream_connector, UpstreamConnector};

/// A frontend with its upstream client, shared by every connection.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) fe: HttpFrontend,
    pub(crate) admission: Arc<Admission>,
    client: Client<UpstreamConnector, ProxyBody>,
    /// Pools (by index) whose servers are reached over TLS, through `client`.
    tls_pools: Vec<Option<usize>>,
    /// Server addresses as URI authorities, formatted once (read-mostly).
    authorities: RwLock<HashMap<SocketAddr, Authority>>,
}

/// What the access log needs to know about the request being served.
struct Exchange<'a> {
    parts: &'a http::request::Parts,
    client: SocketAddr,
    started: Instant,
    pool: Option<usize>,
}

/// How one attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Connect,
    ConnectTimeout,
    /// The request reached the server; no response head came back.
    Upstream,
    ServerTimeout,
}

impl Failure {
    fn status(self) -> StatusCode {
        match self {
            Failure::Connect | Failure::Upstream => StatusCode::BAD_GATEWAY,
            Failure::ConnectTimeout | Failure::ServerTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            Failure::Connect => Outcome::ConnectFailed,
            Failure::ConnectTimeout => Outcome::ConnectTimeout,
            Failure::Upstream => Outcome::ServerError,
            Failure::ServerTimeout => Outcome::Timeout,
        }
    }

    /// Whether the server may have acted on the request.
    fn reached_server(self) -> bool {
        matches!(self, Failure::Upstream | Failure::ServerTimeout)
    }
}

impl State {
    /// The state for `fe`; `previous`, when reconfiguring, hands over its refusal counters
    /// and, while the limits are unchanged, its admission table (open connections keep their
    /// slots counted).
    pub(crate) fn new(mut fe: HttpFrontend, previous: Option<&State>) -> Self {
        let admission = match previous {
            Some(old) => {
                fe.stats = Arc::clone(&old.fe.stats);
                if old.fe.limits == fe.limits {
                    Arc::clone(&old.admission)
                } else {
                    Admission::new(&fe.limits)
                }
            }
            None => Admission::new(&fe.limits),
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(fe.timeouts.connect));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(upstream_connector(connector, &fe));
        let tls_pools = (fe.upstream_tls.iter().enumerate())
            .filter(|(_, t)| t.is_some())
            .map(|(i, _)| Some(i))
            .collect();
        State {
            admission,
            fe,
            client,
            tls_pools,
            authorities: RwLock::default(),
        }
    }

    /// Serves one client request; never fails (errors become 5xx responses).
    pub(crate) async fn handle(
        self: Arc<Self>,
        client: SocketAddr,
        proto: &'static str,
        mut req: Request<ClientBody>,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let pool_index = self.fe.router.route(&req);
        let sticky = pool_index.and_then(|i| {
            let persistence = self.fe.persistence.get(i)?.as_ref()?;
            Some(Sticky::begin(
                persistence,
                &self.fe.pools[i],
                &mut req,
                client.ip(),
            ))
        });
        let key = pool_index.and_then(|i| request_key(&self.fe.pools[i], &req, client));
        let upgrade = req.version() == Version::HTTP_11 && wants_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

        let (mut parts, body) = req.into_parts();
        // The access log reads the client's headers after the exchange; without it they move
        // into the upstream request instead of being copied.
        let mut headers = if self.fe.access_log == AccessLogFormat::Off {
            std::mem::take(&mut parts.headers)
        } else {
            parts.headers.clone()
        };
        let host = host_of(&parts.uri, &headers).map(str::to_string);
        strip_hop_by_hop(&mut headers, upgrade);
        add_forwarded(
            &mut headers,
            self.fe.forwarded,
            client,
            proto,
            host.as_deref(),
        );
        if !headers.contains_key(header::HOST) {
            if let Some(v) = host_header_of(&parts.uri) {
                headers.insert(header::HOST, v);
            }
        }
        self.fe.request_headers.apply(&mut headers);
        // Shares the parsed request's bytes: no copy, no re-parse per attempt.
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));

        let x = Exchange {
            parts: &parts,
            client,
            started,
            pool: pool_index,
        };
        let deadline = started + self.fe.timeouts.total;
        let h1 = parts.version < Version::HTTP_2;
        let mut body = match Prepared::new(body, &self.fe, deadline).await {
            Ok(b) => Some(b),
            Err(reason) => {
                self.fe.stats.reject(&self.fe.name, reason, client);
                let status = reason.status().unwrap_or(StatusCode::BAD_REQUEST);
                return self.log(&x, refusal(status, h1), None, 0);
            }
        };
        let Some(pool) = pool_index.map(|i| &self.fe.pools[i]) else {
            // No rule took it and there is no default pool.
            return self.log(&x, error_response(StatusCode::SERVICE_UNAVAILABLE), None, 0);
        };
        let idempotent = is_idempotent(&parts.method);
        let mut tried: Vec<BackendId> = Vec::new();
        let mut last = StatusCode::SERVICE_UNAVAILABLE;
        let mut attempts = 0;
        loop {
            let acquired =
                tokio::time::timeout_at(deadline, acquire(sticky.as_ref(), pool, key, &tried))
                    .await;
            let mut lease = match acquired {
                Ok(Ok(lease)) => lease,
                Ok(Err(PoolError::QueueTimeout(_))) if attempts == 0 => {
                    last = StatusCode::SERVICE_UNAVAILABLE;
                    break;
                }
                // Nobody else to try: answer with what the last attempt earned.
                Ok(Err(_)) => break,
                Err(_) => {
                    last = StatusCode::GATEWAY_TIMEOUT;
                    break;
                }
            };
            attempts += 1;
            tried.push(lease.id());
            let Some((this_body, next_body)) = body.take().map(Prepared::split) else {
                break;
            };
            // Plain servers get the request inline on this task (`upstream`), written
            // straight from the edited headers; TLS servers and upgrades go through
            // hyper-util's client, which owns their connections and needs a request of its
            // own.
            let inline = client_upgrade.is_none() && !self.tls_pools.contains(&pool_index);
            let sent = Instant::now();
            let wait = deadline.min(sent + self.fe.timeouts.server);
            let result = if inline {
                // HTTP/1.0 without Host: name the server, as hyper-util's client does.
                let host = (!headers.contains_key(header::HOST))
                    .then(|| HeaderValue::try_from(lease.addr().to_string()).ok())
                    .flatten();
                let out = upstream::Outgoing {
                    method: &parts.method,
                    path: path.as_str(),
                    headers: &headers,
                    host: host.as_ref(),
                };
                let exchange =
                    upstream::send(lease.addr(), out, this_body, self.fe.timeouts.connect);
                match tokio::time::timeout_at(wait, exchange).await {
                    Ok(r) => Ok(r.map_err(Sent::Inline)),
                    Err(e) => Err(e),
                }
            } else {
                let mut up = Request::new(this_body);
                *up.method_mut() = parts.method.clone();
                *up.headers_mut() = headers.clone();
                match self.upstream_uri(lease.addr(), &path) {
                    Some(u) => *up.uri_mut() = u,
                    None => {
                        last = StatusCode::BAD_REQUEST;
                        break;
                    }
                }
                match tokio::time::timeout_at(wait, self.client.request(up)).await {
                    Ok(r) => Ok(r
                        .map(|resp| resp.map(UpstreamBody::detached))
                        .map_err(Sent::Pooled)),
                    Err(e) => Err(e),
                }
            };
            let failure = match result {
                Ok(Ok(mut resp)) => {
                    if let Some(s) = &sticky {
                        let status = resp.status();
                        s.on_response(resp.headers_mut(), status, lease.id());
                    }
                    let latency = sent.elapsed();
                    lease.set_latency(latency);
                    if resp.status().is_server_error() {
                        lease.report(Outcome::ServerError);
                    } else {
                        lease.report(Outcome::Success { latency });
                    }
                    let name = (self.fe.access_log != AccessLogFormat::Off)
                        .then(|| lease.name().to_string());
                    let resp = self.respond(resp, lease, client_upgrade);
                    return self.log(&x, resp, name.as_deref(), attempts);
                }
                Ok(Err(e)) => match body_refusal(e.as_error()) {
                    // The client's body was refused (malformed, too large, too slow): not
                    // the server's fault, so no signal and no retry.
                    Some(reason) => {
                        drop(lease);
                        self.fe.stats.reject(&self.fe.name, reason, client);
                        let status = reason.status().unwrap_or(StatusCode::BAD_REQUEST);
                        let mut resp = refusal(status, h1);
                        if !h1 && reason == Reject::BadBody {
                            // An h2 body ends in error when the client reset the stream;
                            // driven inline, the upstream attempt sees that before hyper
                            // drops the request, so the reset budget is told here.
                            resp.extensions_mut().insert(ClientCancelled);
                        }
                        return self.log(&x, resp, None, attempts);
                    }
                    None => e.failure(),
                },
                Err(_) => Failure::ServerTimeout,
            };
            lease.report(failure.outcome());
            last = failure.status();
            let safe = !failure.reached_server() || idempotent;
            let retry = safe
                && attempts <= self.fe.retries
                && Instant::now() < deadline
                && next_body.is_some();
            if retry {
                lease.count_retry();
            }
            drop(lease);
            if !retry {
                break;
            }
            body = next_body;
        }
        self.log(&x, error_response(last), None, attempts)
    }

    fn upstream_uri(&self, addr: SocketAddr, path: &PathAndQuery) -> Option<Uri> {
        let cached = self
            .authorities
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
            .cloned();
        let authority = match cached {
            Some(a) => a,
            None => {
                let a = Authority::try_from(addr.to_string()).ok()?;
                let mut map = self.authorities.write().unwrap_or_else(|e| e.into_inner());
                // Servers come and go with reconfiguration; keep the map bounded.
                if map.len() >= 4096 {
                    map.clear();
                }
                map.insert(addr, a.clone());
                a
            }
        };
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(authority);
        uri.path_and_query = Some(path.clone());
        Uri::from_parts(uri).ok()
    }

    /// Turns a server's response into the client's: headers cleaned and edited, the lease
    /// held by the body, and for `101 Switching Protocols` the tunnel set up.
    fn respond(
        &self,
        mut resp: Response<UpstreamBody>,
        lease: Lease,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Response<ProxyBody> {
        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching || !resp.body().is_inline() {
            strip_hop_by_hop(resp.headers_mut(), switching);
        }
        self.fe.response_headers.apply(resp.headers_mut());
        if switching {
            if let Some(client_side) = client_upgrade {
                let server_side = hyper::upgrade::on(&mut resp);
                tokio::spawn(tunnel(client_side, server_side, lease));
                let (parts, _) = resp.into_parts();
                return Response::from_parts(parts, empty());
            }
        }
        let (parts, body) = resp.into_parts();
        let body = LeaseBody::new(body, lease).map_err(BoxError::from);
        Response::from_parts(parts, body.boxed())
    }

    /// Counts `resp` in the frontend's traffic, writes the access log line (when enabled)
    /// and passes it on.
    fn log(
        &self,
        x: &Exchange<'_>,
        resp: Response<ProxyBody>,
        server: Option<&str>,
        attempts: u32,
    ) -> Response<ProxyBody> {
        self.fe
            .stats
            .traffic
            .responded(resp.status(), x.started.elapsed());
        if self.fe.access_log == AccessLogFormat::Off {
            return resp;
        }
        let parts = x.parts;
        let text = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let entry = Entry {
            time: SystemTime::now()
                .checked_sub(x.started.elapsed())
                .unwrap_or(UNIX_EPOCH),
            frontend: &self.fe.name,
            client: x.client,
            method: parts.method.as_str(),
            uri: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
            version: parts.version,
            status: resp.status().as_u16(),
            bytes: resp.body().size_hint().exact(),
            pool: x.pool.map_or("-", |i| self.fe.pools[i].name()),
            server,
            attempts,
            duration: x.started.elapsed(),
            referer: text(header::REFERER),
            user_agent: text(header::USER_AGENT),
        };
        if let Some(line) = entry.format(self.fe.access_log) {
            self.fe.log_sink.write_line(&line);
        }
        resp
    }
}

/// A client's request body: none (a head-only request the plain HTTP/1.1 loop read, see
/// `h1`) or hyper's.
#[derive(Debug)]
pub(crate) enum ClientBody {
    Empty,
    Hyper(Incoming),
}

/// A request body ready for its first attempt: buffered bytes (replayable) or a stream that
/// can be sent once.
enum Prepared {
    Buffered(Bytes),
    Stream(ProxyBody),
}

impl Prepared {
    /// Buffers bodies known to be at most the replay limit; others stream once. Either way
    /// the body is guarded by the frontend's size limit and slow-body timeout.
    async fn new(
        body: ClientBody,
        fe: &HttpFrontend,
        deadline: Instant,
    ) -> Result<Prepared, Reject> {
        let body = match body {
            ClientBody::Empty => return Ok(Prepared::Buffered(Bytes::new())),
            ClientBody::Hyper(b) => b,
        };
        if body.is_end_stream() {
            return Ok(Prepared::Buffered(Bytes::new()));
        }
        let exact = body.size_hint().exact();
        let body = GuardedBody::new(body, fe.limits.max_body_bytes, fe.timeouts.client_body);
        match exact {
            Some(n) if n <= fe.replay_limit as u64 => {
                match tokio::time::timeout_at(deadline, body.collect()).await {
                    Ok(Ok(c)) => Ok(Prepared::Buffered(c.to_bytes())),
                    Ok(Err(e)) => Err(body_refusal(&*e).unwrap_or(Reject::BadBody)),
                    Err(_) => Err(Reject::BodyTimeout),
                }
            }
            _ => Ok(Prepared::Stream(body.boxed())),
        }
    }

    /// The body for one attempt and what is left for the next one.
    fn split(self) -> (ProxyBody, Option<Prepared>) {
        match self {
            Prepared::Buffered(b) => (full(b.clone()), Some(Prepared::Buffered(b))),
            Prepared::Stream(s) => (s, None),
        }
    }
}

/// Marks a response to a request its client cancelled (see `server`'s reset budget).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientCancelled;

/// A failed attempt's error, from whichever client sent it.
#[derive(Debug)]
enum Sent {
    Inline(UpstreamError),
    Pooled(hyper_util::client::legacy::Error),
}

impl Sent {
    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            Sent::Inline(e) => e,
            Sent::Pooled(e) => e,
        }
    }

    fn failure(&self) -> Failure {
        match self {
            Sent::Inline(UpstreamError::Connect(_)) => Failure::Connect,
            Sent::Inline(UpstreamError::ConnectTimeout) => Failure::ConnectTimeout,
            Sent::Inline(
                UpstreamError::Io(_)
                | UpstreamError::Wire(_)
                | UpstreamError::Body(_)
                | UpstreamError::Closed,
            ) => Failure::Upstream,
            Sent::Pooled(e) => classify(e),
        }
    }
}

fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    if !e.is_connect() {
        return Failure::Upstream;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Failure::ConnectTimeout;
            }
        }
        source = s.source();
    }
    Failure::Connect
}

/// RFC 9110 §9.2.2.
fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn host_header_of(uri: &Uri) -> Option<HeaderValue> {
    HeaderValue::from_str(uri.authority()?.as_str()).ok()
}

async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    server: hyper::upgrade::OnUpgrade,
    lease: Lease,
) {
    let (Ok(c), Ok(s)) = (client.await, server.await) else {
        return;
    };
    let mut c = TokioIo::new(c);
    let mut s = TokioIo::new(s);
    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
    drop(lease);
}
