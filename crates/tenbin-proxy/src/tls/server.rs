//! Terminating TLS: a rustls `ServerConfig` from configuration, and TLS offload in front of a
//! plain TCP pool.

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::{ServerConfig, SupportedProtocolVersion};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::{CertStore, TlsError};
use crate::pool::Pool;

/// A TLS protocol version tenbin can be limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// "1.2" or "1.3" (the config file's spelling).
    pub fn parse(s: &str) -> Result<Self, TlsError> {
        match s.trim().trim_start_matches("TLS").trim_start_matches("v") {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            _ => Err(TlsError::UnknownVersion(s.to_owned())),
        }
    }
}

/// A terminating frontend's TLS settings.
#[derive(Clone, Debug)]
pub struct TerminateConfig {
    /// ALPN protocols offered, in preference order ("h2", "http/1.1").
    pub alpn: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// rustls suite names (e.g. "TLS13_AES_128_GCM_SHA256"); empty = the provider's defaults.
    pub cipher_suites: Vec<String>,
}

impl Default for TerminateConfig {
    fn default() -> Self {
        TerminateConfig {
            alpn: vec!["h2".into(), "http/1.1".into()],
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
        }
    }
}

/// The names of the suites [`crate::tls::provider`] offers (for validation and error text).
pub fn suite_names() -> Vec<String> {
    super::provider()
        .cipher_suites
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect()
}

/// The provider limited to the configured suites.
pub fn provider_with_suites(names: &[String]) -> Result<CryptoProvider, TlsError> {
    let mut p = super::provider();
    if names.is_empty() {
        return Ok(p);
    }
    let mut chosen = Vec::with_capacity(names.len());
    for n in names {
        let found = p
            .cipher_suites
            .iter()
            .find(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(n))
            .ok_or_else(|| TlsError::UnknownSuite(n.clone(), suite_names().join(", ")))?;
        chosen.push(*found);
    }
    p.cipher_suites = chosen;
    Ok(p)
}

pub(crate) fn versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    if min > max {
        return Err(TlsError::VersionRange);
    }
    let mut v = Vec::new();
    if min <= TlsVersion::Tls13 && max >= TlsVersion::Tls13 {
        v.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls12 {
        v.push(&rustls::version::TLS12);
    }
    Ok(v)
}

/// Sessions a terminating frontend remembers for resumption by id (HAProxy's
/// `tune.ssl.cachesize` default).
const SESSION_CACHE: usize = 20_000;

/// A server config answering with `store`'s certificates. The store is also the provider of
/// suites: build it with the provider [`provider_with_suites`] returns for the same names.
pub fn server_config(
    cfg: &TerminateConfig,
    store: Arc<CertStore>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider_with_suites(&cfg.cipher_suites)?);
    let versions = versions(cfg.min_version, cfg.max_version)?;
    let usable = provider
        .cipher_suites
        .iter()
        .any(|s| versions.iter().any(|v| s.version().version == v.version));
    if !usable {
        return Err(TlsError::NoSuites);
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = cfg.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // Resumption as HAProxy sets it by default: a 20000-entry session cache
    // (`tune.ssl.cachesize`) and stateless tickets under a rotating key; rustls' defaults
    // are a 256-entry cache and no tickets. TLS 1.3 clients get rustls' two tickets per
    // handshake, as from OpenSSL.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

/// The timeouts of [`terminate_tcp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadTimeouts {
    /// A client that has not finished its handshake by then is closed (nothing sent, or half a
    /// ClientHello, holds no task for longer).
    pub handshake: Duration,
    /// A server that has not accepted the connection by then fails it (reported to the pool).
    pub connect: Duration,
}

impl OffloadTimeouts {
    /// A `[[frontend]]`'s `client_header` and `connect` timeouts.
    pub fn of(f: &tenbin_config::Frontend) -> Self {
        OffloadTimeouts {
            handshake: f.timeouts.client_header,
            connect: f.timeouts.connect,
        }
    }
}

impl Default for OffloadTimeouts {
    /// The frontend defaults: `client_header` and `connect` of `[frontend.timeouts]`.
    fn default() -> Self {
        OffloadTimeouts {
            handshake: Duration::from_secs(10),
            connect: Duration::from_secs(3),
        }
    }
}

/// TLS offload for mode tcp: terminate each connection and relay the plaintext to a server
/// leased from `pool`, until `shutdown` resolves.
pub async fn terminate_tcp(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    pool: Pool,
    timeouts: OffloadTimeouts,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("tls: accept: {e}");
                    continue;
                }
            },
        };
        let (config, pool) = (Arc::clone(&config), pool.clone());
        tokio::spawn(async move { terminate_connection(&config, tcp, &pool, timeouts).await });
    }
}

/// One connection of [`terminate_tcp`]: handshake (bounded), lease, connect (bounded), relay
/// the plaintext.
pub async fn terminate_connection(
    config: &Arc<ServerConfig>,
    tcp: TcpStream,
    pool: &Pool,
    timeouts: OffloadTimeouts,
) {
    let Some(mut tls) = handshake(config, tcp, timeouts.handshake, None).await else {
        return;
    };
    let Ok(lease) = pool.acquire(None, &[]).await else {
        let _ = tls.shutdown().await;
        return;
    };
    let connect = tokio::time::timeout(timeouts.connect, TcpStream::connect(lease.addr()));
    let Ok(Ok(mut upstream)) = connect.await else {
        lease.report(crate::pool::Outcome::ConnectFailed);
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
}

/// The server side of a TLS handshake on an accepted connection, bounded by `limit` (a client
/// that stalls its handshake is a slowloris like any other). `None` when it fails. The
/// result is counted in `traffic` (an HTTPS frontend's) when given.
pub async fn handshake(
    config: &Arc<ServerConfig>,
    tcp: TcpStream,
    limit: std::time::Duration,
    traffic: Option<&crate::http::Traffic>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = TlsAcceptor::from(Arc::clone(config));
    // Indices into `http::traffic::TLS_FAILURES`.
    let (tls, result) = match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => (Some(tls), Ok(())),
        Ok(Err(e)) => {
            tracing::debug!("tls: handshake failed: {e}");
            let closed = e.kind() == std::io::ErrorKind::UnexpectedEof;
            (None, Err(if closed { 2 } else { 1 }))
        }
        Err(_) => (None, Err(0)),
    };
    if let Some(t) = traffic {
        t.handshake(result);
    }
    tls
}

/// An HTTPS frontend: accepts on `listener`, terminates TLS (ALPN picks h2 or http/1.1) and
/// hands each decrypted stream to the L7 `service` as a secure connection, until `shutdown`
/// resolves; then open connections are asked to finish their requests and close.
pub async fn serve_https(
    listener: TcpListener,
    service: crate::http::HttpService,
    config: Arc<ServerConfig>,
    handshake_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("https: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (service, config, stop) = (service.clone(), Arc::clone(&config), stop.clone());
        tokio::spawn(async move {
            let stats = service.stats();
            if let Some(tls) =
                handshake(&config, tcp, handshake_timeout, Some(&stats.traffic)).await
            {
                service.serve_connection(tls, peer, true, stop).await;
            }
        });
    }
    stop.cancel();
}
