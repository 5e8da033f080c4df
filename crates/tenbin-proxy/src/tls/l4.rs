//! TLS on `mode tcp` frontends, built from validated config: passthrough (SNI routes, TLS 1.2
//! session stickiness for pools with `persistence.mode = "tls-session"`) or termination in
//! front of the default pool. The L4 tier calls [`L4Tls::from_config`] per frontend and, when
//! it returns a value, [`L4Tls::spawn`] per bound listener instead of its plain TCP loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tenbin_config::persist::PersistMode as ConfigMode;
use tenbin_config::tls::{FrontendTls, TlsMode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::passthrough::{self, Passthrough, Route};
use super::{
    provider, server, terminate_tcp, CertFiles, CertStore, OffloadTimeouts, TerminateConfig,
    TlsError, TlsVersion,
};
use crate::pool::Pool;

/// How often certificate files are checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// A `mode tcp` frontend's TLS runtime.
#[derive(Debug)]
pub enum L4Tls {
    Passthrough(Arc<Passthrough>),
    Terminate {
        config: Arc<ServerConfig>,
        store: Arc<CertStore>,
        pool: Pool,
        timeouts: OffloadTimeouts,
    },
}

impl L4Tls {
    /// `None` when the frontend has no `[frontend.tls]`.
    pub fn from_config(
        f: &tenbin_config::Frontend,
        config: &tenbin_config::Config,
        pools: &BTreeMap<String, Pool>,
    ) -> Result<Option<Self>, TlsError> {
        let Some(tls) = &f.tls else {
            return Ok(None);
        };
        let pool_of = |name: &str| {
            pools
                .get(name)
                .cloned()
                .ok_or_else(|| TlsError::UnknownPool(name.to_owned()))
        };
        let route = |sni: &str, name: &str| -> Result<Route, TlsError> {
            let mut r = Route::new(sni, pool_of(name)?);
            let persistence = config.pool(name).and_then(|p| p.persistence.as_ref());
            if let Some(p) = persistence.filter(|p| *p.mode.get_ref() == ConfigMode::TlsSession) {
                r = r.sticky(*p.table_size.get_ref(), p.idle_timeout);
            }
            Ok(r)
        };
        match tls.mode {
            TlsMode::Passthrough => Ok(Some(L4Tls::Passthrough(Arc::new(passthrough(f, route)?)))),
            TlsMode::Terminate => {
                let name = f.default_pool.as_ref().map(|p| p.get_ref().as_str());
                let pool = pool_of(name.unwrap_or(""))?;
                let (config, store) = terminate_config(tls)?;
                let timeouts = OffloadTimeouts::of(f);
                Ok(Some(L4Tls::Terminate {
                    config,
                    store,
                    pool,
                    timeouts,
                }))
            }
        }
    }

    /// Serves one bound listener until `shutdown` resolves.
    pub fn spawn(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<io::Result<()>> {
        match self {
            L4Tls::Passthrough(p) => {
                let p = Arc::clone(p);
                tokio::spawn(async move {
                    passthrough::serve(listener, p, shutdown).await;
                    Ok(())
                })
            }
            L4Tls::Terminate {
                config,
                store,
                pool,
                timeouts,
            } => {
                let watcher = store.watch(RELOAD_POLL);
                let (config, pool, timeouts) = (Arc::clone(config), pool.clone(), *timeouts);
                tokio::spawn(async move {
                    terminate_tcp(listener, config, pool, timeouts, shutdown).await;
                    watcher.abort();
                    Ok(())
                })
            }
        }
    }
}

/// A passthrough frontend's SNI routes (and default route) from `f`, each built by
/// `route(sni, pool name)`, with the frontend's hello and idle timeouts.
pub fn passthrough<E>(
    f: &tenbin_config::Frontend,
    route: impl Fn(&str, &str) -> Result<Route, E>,
) -> Result<Passthrough, E> {
    let routes = f
        .sni_route
        .iter()
        .map(|r| route(r.sni.get_ref(), r.pool.get_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let default = f
        .default_pool
        .as_ref()
        .map(|p| route("", p.get_ref()))
        .transpose()?;
    let mut pass = Passthrough::new(routes, default);
    pass.hello_timeout = f.timeouts.client_header;
    pass.idle_timeout = f.timeouts.tcp_idle;
    pass.connect_timeout = f.timeouts.connect;
    Ok(pass)
}

/// The rustls server config and certificate store of a terminating `[frontend.tls]`.
pub fn terminate_config(
    tls: &FrontendTls,
) -> Result<(Arc<ServerConfig>, Arc<CertStore>), TlsError> {
    let cfg = TerminateConfig {
        alpn: tls.alpn.clone(),
        min_version: TlsVersion::parse(tls.min_version.get_ref())?,
        max_version: TlsVersion::parse(tls.max_version.get_ref())?,
        cipher_suites: tls
            .cipher_suites
            .iter()
            .map(|s| s.get_ref().clone())
            .collect(),
    };
    let files = tls
        .certificate
        .iter()
        .map(|c| CertFiles::new(c.cert.clone(), c.key.clone()))
        .collect();
    let store = Arc::new(CertStore::load(files, Arc::new(provider()))?);
    let config = server::server_config(&cfg, Arc::clone(&store))?;
    Ok((config, store))
}
