//! TLS passthrough (mode tcp): route on the ClientHello's SNI without decrypting, and keep
//! TLS 1.2 sessions on the server that holds them by the session id the ServerHello gave.
//!
//! Per connection: read until the ClientHello parses (bounded in size and time), choose the
//! route (exact SNI, then `*.parent`, then the default), look the offered session id up in the
//! route's table, connect (bounded by `connect_timeout`), replay the hello, read until the ServerHello parses and learn its
//! session id (TLS 1.2 only: see [`super::hello`]), then relay bytes both ways untouched.

use std::sync::Arc;
use std::time::Duration;

use tenbin_core::persist::PersistKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::hello::{parse_client_hello, parse_server_hello, HelloError, MAX_HELLO};
use crate::persist::{hold, Decision, PersistConfig, PersistMode, Persistence, ServerSet};
use crate::pool::{Outcome, Pool};

/// Key domain of TLS session ids in a persistence table.
const SESSION_DOMAIN: u8 = 5;

/// One SNI route: `sni` is a host name or `*.parent` (one label), lower case.
#[derive(Debug)]
pub struct Route {
    pub sni: String,
    pub pool: Pool,
    /// Session-id stickiness for this pool (`None`: none).
    pub sessions: Option<Arc<Persistence>>,
}

impl Route {
    pub fn new(sni: impl Into<String>, pool: Pool) -> Self {
        Route {
            sni: sni.into().to_ascii_lowercase(),
            pool,
            sessions: None,
        }
    }

    /// Sticks TLS 1.2 sessions to their server with a table of `size` entries.
    pub fn sticky(mut self, size: usize, idle: Duration) -> Self {
        let mut cfg = PersistConfig::new(PersistMode::TlsSession, "");
        cfg.table_size = size;
        cfg.idle_timeout = idle;
        self.sessions = Some(Arc::new(Persistence::new(cfg)));
        self
    }
}

/// A passthrough frontend's routing.
#[derive(Debug)]
pub struct Passthrough {
    pub routes: Vec<Route>,
    /// For clients without SNI or with an unrouted name; `None` closes them.
    pub default: Option<Route>,
    /// How long a client may take to send its ClientHello (and a server its ServerHello).
    pub hello_timeout: Duration,
    /// A server that has not accepted the connection by then fails it (reported to the pool).
    pub connect_timeout: Duration,
    /// No byte in either direction for this long ends a relayed session.
    pub idle_timeout: Duration,
}

impl Passthrough {
    pub fn new(routes: Vec<Route>, default: Option<Route>) -> Self {
        Passthrough {
            routes,
            default,
            hello_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(300),
        }
    }

    /// The route for `sni`: exact, then wildcard, then the default.
    pub fn route(&self, sni: Option<&str>) -> Option<&Route> {
        if let Some(name) = sni {
            let name = name.trim_end_matches('.');
            if let Some(r) = self.routes.iter().find(|r| r.sni == name) {
                return Some(r);
            }
            if let Some((_, parent)) = name.split_once('.') {
                let found = self
                    .routes
                    .iter()
                    .find(|r| r.sni.strip_prefix("*.") == Some(parent));
                if found.is_some() {
                    return found;
                }
            }
        }
        self.default.as_ref()
    }
}

/// Accepts connections until `shutdown` resolves; each is relayed on its own task.
pub async fn serve(
    listener: TcpListener,
    pass: Arc<Passthrough>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!("passthrough: accept: {e}");
                    continue;
                }
            },
        };
        let pass = Arc::clone(&pass);
        tokio::spawn(async move { serve_connection(tcp, &pass).await });
    }
}

/// Relays one accepted connection by the SNI of its ClientHello.
pub async fn serve_connection(tcp: TcpStream, pass: &Passthrough) {
    if let Err(e) = relay(tcp, pass).await {
        tracing::debug!("passthrough: {e}");
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("client hello: {0}")]
    Hello(HelloError),
    #[error("no route for SNI {0:?}")]
    NoRoute(Option<String>),
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("timed out waiting for a hello")]
    Timeout,
    #[error("timed out connecting to the server")]
    ConnectTimeout,
}

async fn relay(mut client: TcpStream, pass: &Passthrough) -> Result<(), RelayError> {
    let mut hello_bytes = Vec::with_capacity(1024);
    let hello = tokio::time::timeout(
        pass.hello_timeout,
        read_hello(&mut client, &mut hello_bytes, parse_client_hello),
    )
    .await
    .map_err(|_| RelayError::Timeout)??;
    let route = pass
        .route(hello.sni.as_deref())
        .ok_or_else(|| RelayError::NoRoute(hello.sni.clone()))?;
    let servers = ServerSet::from_pool(&route.pool);
    let mut decision = Decision::default();
    if let (Some(table), false) = (&route.sessions, hello.session_id.is_empty()) {
        let key = PersistKey::from_bytes(SESSION_DOMAIN, &hello.session_id);
        decision.pinned = table.lookup(key, table.current());
    }
    decision.redispatch_always();
    let target = decision.target(&servers);
    let held = hold(&route.pool, target, None, &[]).await?;
    let connect = tokio::time::timeout(pass.connect_timeout, TcpStream::connect(held.addr()));
    let mut upstream = match connect.await {
        Ok(Ok(s)) => s,
        failed => {
            held.report(Outcome::ConnectFailed);
            return Err(match failed {
                Ok(Err(e)) => e.into(),
                _ => RelayError::ConnectTimeout,
            });
        }
    };
    upstream.set_nodelay(true)?;
    upstream.write_all(&hello_bytes).await?;
    let mut reply = Vec::with_capacity(4096);
    let server_hello = tokio::time::timeout(
        pass.hello_timeout,
        read_hello(&mut upstream, &mut reply, parse_server_hello),
    )
    .await
    .map_err(|_| RelayError::Timeout)?;
    client.write_all(&reply).await?;
    if let (Some(table), Ok(sh)) = (&route.sessions, &server_hello) {
        if let Some(id) = sh.sticky_session_id() {
            let key = PersistKey::from_bytes(SESSION_DOMAIN, id);
            table.learn(key, held.id(), table.current());
        }
    }
    if matches!(server_hello, Err(RelayError::Io(_))) {
        return Ok(());
    }
    let (cr, cw) = client.split();
    let (sr, sw) = upstream.split();
    let _ = crate::l4::copy::bidirectional(cr, cw, sr, sw, pass.idle_timeout).await;
    drop(held);
    Ok(())
}

/// Reads into `buf` until `parse` accepts it or says it never will.
async fn read_hello<T>(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    parse: fn(&[u8]) -> Result<T, HelloError>,
) -> Result<T, RelayError> {
    let mut chunk = [0u8; 4096];
    loop {
        match parse(buf) {
            Err(HelloError::Incomplete) => {}
            other => return other.map_err(RelayError::Hello),
        }
        if buf.len() > MAX_HELLO + 5 * 8 {
            return Err(RelayError::Hello(HelloError::TooLarge));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(RelayError::Hello(HelloError::Incomplete));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
