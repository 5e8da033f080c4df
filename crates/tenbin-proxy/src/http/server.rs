//! The client side: accept loop, one hyper connection per client (HTTP/1.1 or h2c by prior
//! knowledge), slowloris and idle timeouts, graceful shutdown, and live reconfiguration
//! ([`HttpService::reconfigure`]: every request reads the frontend current when it arrives,
//! so requests in flight finish on the snapshot they started with).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::forward::State;
use super::HttpFrontend;

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
            state: Arc::new(ArcSwap::from_pointee(State::new(frontend))),
        }
    }

    /// Replaces the frontend (rules, pools, headers, timeouts, persistence, upstream TLS)
    /// for every request that arrives from now on, on connections open now too. Requests in
    /// flight keep the frontend they started with. Connection-level timeouts (header read,
    /// idle) apply to connections opened after the change.
    pub fn reconfigure(&self, frontend: HttpFrontend) {
        self.state.store(Arc::new(State::new(frontend)));
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
}

async fn connection<IO>(
    state: Arc<ArcSwap<State>>,
    stream: IO,
    peer: SocketAddr,
    secure: bool,
    stop: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let proto = if secure { "https" } else { "http" };
    let timeouts = state.load().fe.timeouts;
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(stream);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.client_header)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let act = Arc::clone(&activity);
    let svc = service_fn(move |req| {
        let state = state.load_full();
        let guard = act.begin();
        async move {
            let resp = state.handle(peer, proto, req).await;
            drop(guard);
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    loop {
        let wake = activity.idle_deadline(timeouts.client_idle);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep_until(wake) => {
                if activity.is_idle(timeouts.client_idle) {
                    break;
                }
            }
            _ = stop.cancelled() => break,
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// When a client connection last started or finished a request, and how many are in flight.
/// Request boundaries are enough: between requests hyper's header timeout guards a half-sent
/// head, and a response still streaming when the window ends is finished by the graceful
/// shutdown before the connection closes. Not touching the clock per read and write keeps
/// the hot path cheap.
#[derive(Debug)]
struct Activity {
    base: Instant,
    last_nanos: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_nanos: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let n = self.base.elapsed().as_nanos() as u64;
        self.last_nanos.store(n, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.last_nanos.load(Ordering::Relaxed))
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(Arc::clone(self))
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            Instant::now() + idle
        } else {
            self.last() + idle
        }
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.last() + idle <= Instant::now()
    }
}

/// A request being served: the connection is not idle meanwhile.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn idle_only_after_the_window_with_nothing_in_flight() {
        let a = Arc::new(Activity::new());
        assert!(!a.is_idle(IDLE));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!a.is_idle(IDLE));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(a.is_idle(IDLE));
        // Bytes moving reset the window.
        a.touch();
        assert!(!a.is_idle(IDLE));
        assert_eq!(a.idle_deadline(IDLE), Instant::now() + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_is_never_idle() {
        let a = Arc::new(Activity::new());
        let guard = a.begin();
        tokio::time::advance(IDLE * 3).await;
        assert!(
            !a.is_idle(IDLE),
            "a slow upstream does not make the client idle"
        );
        assert_eq!(a.idle_deadline(IDLE), Instant::now() + IDLE);
        drop(guard);
        assert!(
            !a.is_idle(IDLE),
            "the window restarts when the request ends"
        );
        tokio::time::advance(IDLE).await;
        assert!(a.is_idle(IDLE));
    }
}
