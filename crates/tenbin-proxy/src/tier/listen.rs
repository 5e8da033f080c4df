//! Accept loops whose per-connection handler can be replaced while they run.
//!
//! A listener never closes because its frontend changed: each accepted connection reads the
//! frontend's current [`Handler`] (one `ArcSwap` load) and runs on it; connections already
//! open keep the handler they started with. Every connection task runs on the tier's
//! `TaskTracker`, so shutdown can wait for them, and ends early only when its frontend's
//! `abort` token fires (the grace period of a removed frontend or of the node is over).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::HttpService;
use crate::l4::{tcp, udp, TcpFrontend, UdpFrontend};
use crate::pool::Pool;
use crate::tls::passthrough::{self, Passthrough};
use crate::tls::server::{handshake, terminate_connection, OffloadTimeouts};

/// What one accepted TCP connection of a frontend runs.
#[derive(Debug)]
pub(super) enum Handler {
    Http(HttpService),
    Https {
        service: HttpService,
        tls: Arc<ServerConfig>,
        handshake: Duration,
    },
    Tcp(Arc<TcpFrontend>),
    Passthrough(Arc<Passthrough>),
    Terminate {
        tls: Arc<ServerConfig>,
        pool: Pool,
        timeouts: OffloadTimeouts,
    },
}

impl Handler {
    /// The mode name the admin API shows.
    pub(super) fn mode(&self) -> &'static str {
        match self {
            Handler::Http(_) => "http",
            Handler::Https { .. } => "https",
            Handler::Tcp(_) => "tcp",
            Handler::Passthrough(_) | Handler::Terminate { .. } => "tls",
        }
    }

    async fn serve(&self, stream: TcpStream, peer: SocketAddr, soft: CancellationToken) {
        match self {
            Handler::Http(service) => {
                let _ = stream.set_nodelay(true);
                service.serve_connection(stream, peer, false, soft).await;
            }
            Handler::Https {
                service,
                tls,
                handshake: limit,
            } => {
                let _ = stream.set_nodelay(true);
                let stats = service.stats();
                if let Some(tls) = handshake(tls, stream, *limit, Some(&stats.traffic)).await {
                    service.serve_connection(tls, peer, true, soft).await;
                }
            }
            Handler::Tcp(fe) => tcp::serve_connection(stream, peer, Arc::clone(fe)).await,
            Handler::Passthrough(p) => passthrough::serve_connection(stream, p).await,
            Handler::Terminate {
                tls,
                pool,
                timeouts,
            } => terminate_connection(tls, stream, pool, *timeouts).await,
        }
    }
}

/// The tokens and tracker the connections of one frontend run under.
#[derive(Clone, Debug)]
pub(super) struct Conns {
    /// Cancelled when the frontend goes away or the node stops: finish current requests.
    pub soft: CancellationToken,
    /// Cancelled when the grace period is over: cut what is left.
    pub hard: CancellationToken,
    pub tracker: TaskTracker,
}

impl Conns {
    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let hard = crate::cancel::Cancelled::cancelled(self.hard.clone());
        self.tracker.spawn(async move {
            tokio::select! {
                biased;
                () = f => {}
                () = hard => {}
            }
        });
    }
}

/// Accepts on `listener` until `stop` is cancelled; each connection runs the frontend's
/// handler of the moment.
pub(super) async fn accept_tcp(
    listener: TcpListener,
    handler: Arc<ArcSwap<Handler>>,
    stop: CancellationToken,
    conns: Conns,
) {
    let mut stopped = crate::cancel::Cancelled::cancelled(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stopped => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                // Out of descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let (h, soft) = (handler.load_full(), conns.soft.clone());
        conns.spawn(async move { h.serve(stream, peer, soft).await });
    }
}

/// Serves a `mode udp` socket until `stop` is cancelled (its sessions end with it).
pub(super) fn serve_udp(
    socket: UdpSocket,
    live: Arc<ArcSwap<UdpFrontend>>,
    stop: CancellationToken,
    conns: &Conns,
) {
    conns.spawn(async move {
        let _ = udp::run_live(socket, live, crate::cancel::Cancelled::cancelled(stop)).await;
    });
}
