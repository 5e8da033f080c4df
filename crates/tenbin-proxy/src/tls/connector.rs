//! The L7 upstream connector: plain TCP to most servers, TLS (re-encryption) to the servers of
//! pools that configure it. A server whose certificate fails verification fails the connect,
//! which the L7 path answers with 502 and reports as a connect failure.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tower_service::Service;

use super::Upstream;
use crate::pool::Pool;

/// Which TLS settings (if any) apply to a server address.
pub type UpstreamResolver = Arc<dyn Fn(SocketAddr) -> Option<Upstream> + Send + Sync>;

/// Resolves a server address to the re-encryption of the pool that holds it (`tls[i]` for
/// `pools[i]`).
pub fn resolver(pools: Vec<Pool>, tls: Vec<Option<Upstream>>) -> UpstreamResolver {
    Arc::new(move |addr| {
        pools.iter().zip(&tls).find_map(|(pool, up)| {
            let up = up.as_ref()?;
            let holds = pool.servers().iter().any(|(s, _, _)| s.addr == addr);
            holds.then(|| up.clone())
        })
    })
}

/// The L7 client's connector for `fe`: TLS towards the pools with `upstream_tls`.
pub fn upstream_connector(
    http: HttpConnector,
    fe: &crate::http::HttpFrontend,
) -> UpstreamConnector {
    let tls = fe.upstream_tls.iter().any(Option::is_some);
    let resolve = tls.then(|| resolver(fe.pools.clone(), fe.upstream_tls.clone()));
    UpstreamConnector::new(http, resolve)
}

/// A hyper-util connector that adds TLS where the resolver says so.
#[derive(Clone)]
pub struct UpstreamConnector {
    http: HttpConnector,
    resolve: Option<UpstreamResolver>,
}

impl std::fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("tls", &self.resolve.is_some())
            .finish_non_exhaustive()
    }
}

impl UpstreamConnector {
    /// `resolve: None` is a plain HTTP connector.
    pub fn new(http: HttpConnector, resolve: Option<UpstreamResolver>) -> Self {
        UpstreamConnector { http, resolve }
    }
}

impl Service<Uri> for UpstreamConnector {
    type Response = UpstreamIo;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamIo, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let addr: Option<SocketAddr> = uri.authority().and_then(|a| a.as_str().parse().ok());
        let upstream = match (&self.resolve, addr) {
            (Some(r), Some(a)) => r(a).map(|u| (u, a)),
            _ => None,
        };
        let connecting = self.http.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            match upstream {
                None => Ok(UpstreamIo::Plain(io)),
                Some((up, addr)) => {
                    let tls = up.connect(io.into_inner(), addr).await?;
                    Ok(UpstreamIo::Tls(Box::new(TokioIo::new(tls))))
                }
            }
        })
    }
}

/// A connection to a server, plain or re-encrypted.
#[derive(Debug)]
pub enum UpstreamIo {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        match self {
            UpstreamIo::Plain(io) => io.connected(),
            UpstreamIo::Tls(_) => Connected::new(),
        }
    }
}

impl hyper::rt::Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_flush(cx),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            UpstreamIo::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}
