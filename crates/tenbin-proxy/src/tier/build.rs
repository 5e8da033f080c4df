//! From validated config to what the tier runs: pool slots (one `Pool` and one persistence
//! table per `[[pool]]`) and each frontend's handler over them. Building has no visible
//! effect; the tier commits what was built only when everything built.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::ServerConfig;
use tenbin_config::persist::PersistMode as ConfigMode;
use tenbin_config::tls::{FrontendTls, TlsMode};
use tenbin_config::{Config, Frontend, Mode};

use super::listen::Handler;
use super::TierError;
use crate::http::HttpFrontend;
use crate::l4::{L4Stats, TcpFrontend, UdpFrontend};
use crate::persist::{PersistConfig, Persistence};
use crate::pool::{Pool, PoolConfig};
use crate::tls::passthrough::{Passthrough, Route};
use crate::tls::server::OffloadTimeouts;
use crate::tls::CertStore;

/// One `[[pool]]` at run time, shared by every frontend that uses it.
#[derive(Debug, Clone)]
pub(super) struct PoolSlot {
    pub pool: Pool,
    pub cfg: tenbin_config::Pool,
    /// The pool's one persistence table (any mode, `tls-session` included).
    pub persistence: Option<Arc<Persistence>>,
}

impl PoolSlot {
    pub fn new(cfg: &tenbin_config::Pool) -> PoolSlot {
        PoolSlot {
            pool: Pool::new(runtime_config(cfg)),
            cfg: cfg.clone(),
            persistence: persistence(cfg),
        }
    }

    /// The same pool described by `cfg`: the `Pool` handle (and so its algorithm state)
    /// stays; the persistence table stays unless `[pool.persistence]` changed.
    pub fn next(&self, cfg: &tenbin_config::Pool) -> PoolSlot {
        let persistence = if self.cfg.persistence == cfg.persistence {
            self.persistence.clone()
        } else {
            persistence(cfg)
        };
        PoolSlot {
            pool: self.pool.clone(),
            cfg: cfg.clone(),
            persistence,
        }
    }

    /// Whether anything but the server list differs from `other` (frontends over this pool
    /// then rebuild: persistence and re-encryption live in their snapshot).
    pub fn settings_differ(&self, cfg: &tenbin_config::Pool) -> bool {
        let bare = |p: &tenbin_config::Pool| tenbin_config::Pool {
            server: Vec::new(),
            ..p.clone()
        };
        bare(&self.cfg) != bare(cfg)
    }
}

pub(super) fn runtime_config(cfg: &tenbin_config::Pool) -> PoolConfig {
    PoolConfig::from_config(cfg, std::time::Duration::from_secs(5))
}

fn persistence(cfg: &tenbin_config::Pool) -> Option<Arc<Persistence>> {
    let p = cfg.persistence.as_ref()?;
    Some(Arc::new(Persistence::new(PersistConfig::from_config(p))))
}

fn is_tls_session(cfg: &tenbin_config::Pool) -> bool {
    cfg.persistence
        .as_ref()
        .is_some_and(|p| *p.mode.get_ref() == ConfigMode::TlsSession)
}

/// The pools a frontend sends traffic to, by name, sorted and without repeats.
pub(super) fn pools_of(f: &Frontend) -> Vec<String> {
    let mut names: Vec<String> = f
        .default_pool
        .iter()
        .chain(f.rule.iter().map(|r| &r.pool))
        .chain(f.sni_route.iter().map(|r| &r.pool))
        .map(|p| p.get_ref().clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A terminating frontend's certificates and the rustls config answering with them.
#[derive(Debug, Clone)]
pub(super) struct TlsRuntime {
    pub cfg: FrontendTls,
    pub server: Arc<ServerConfig>,
    pub store: Arc<CertStore>,
}

impl TlsRuntime {
    /// Reuses `old` when the section is unchanged (certificate contents are reloaded by
    /// the file watcher, not by a config apply).
    pub fn for_section(tls: &FrontendTls, old: Option<&TlsRuntime>) -> Result<Self, TierError> {
        if let Some(old) = old.filter(|o| o.cfg == *tls) {
            return Ok(old.clone());
        }
        let (server, store) =
            crate::tls::l4::terminate_config(tls).map_err(|e| TierError::Build(e.to_string()))?;
        Ok(TlsRuntime {
            cfg: tls.clone(),
            server,
            store,
        })
    }
}

/// What a frontend runs, before it is swapped in.
#[derive(Debug)]
pub(super) enum Built {
    /// Plain HTTP, or HTTPS with `tls`; the tier reconfigures the frontend's running
    /// `HttpService` with `fe` so keep-alive connections see the new rules.
    Http {
        fe: Box<HttpFrontend>,
        tls: Option<TlsRuntime>,
        handshake: std::time::Duration,
    },
    Stream {
        handler: Handler,
        tls: Option<TlsRuntime>,
    },
    Datagram(UdpFrontend),
}

/// Builds what `f` runs over `pools`; `stats` carry over for L4 frontends, `old_tls` is
/// reused when the frontend's TLS section did not change, and a UDP frontend keeps
/// `old_sessions` while its bounds are unchanged.
pub(super) fn frontend(
    f: &Frontend,
    config: &Config,
    pools: &BTreeMap<String, PoolSlot>,
    old_tls: Option<&TlsRuntime>,
    stats: &Arc<L4Stats>,
    old_sessions: Option<&Arc<Persistence>>,
) -> Result<Built, TierError> {
    let name = f.name.get_ref();
    let slot = |p: &str| {
        pools
            .get(p)
            .ok_or_else(|| TierError::Build(format!("frontend {name}: pool {p} is not defined")))
    };
    let default = f
        .default_pool
        .as_ref()
        .map(|p| slot(p.get_ref()))
        .transpose()?;
    match f.mode {
        Mode::Http => {
            let slots = pools_of(f)
                .iter()
                .map(|p| slot(p))
                .collect::<Result<Vec<_>, _>>()?;
            let list: Vec<Pool> = slots.iter().map(|s| s.pool.clone()).collect();
            let mut fe =
                HttpFrontend::from_config(f, list).map_err(|e| TierError::Build(e.to_string()))?;
            fe.persistence = slots
                .iter()
                .map(|s| s.persistence.clone().filter(|_| !is_tls_session(&s.cfg)))
                .collect();
            fe.upstream_tls = crate::tls::upstream::for_pools(config, &fe.pools)
                .map_err(|e| TierError::Build(format!("frontend {name}: {e}")))?;
            let tls = f
                .tls
                .as_ref()
                .map(|t| TlsRuntime::for_section(t, old_tls))
                .transpose()
                .map_err(|e| TierError::Build(format!("frontend {name}: tls: {e}")))?;
            Ok(Built::Http {
                fe: Box::new(fe),
                tls,
                handshake: f.timeouts.client_header,
            })
        }
        Mode::Tcp => {
            let Some(default) = default else {
                return Err(TierError::Build(format!(
                    "frontend {name}: no default_pool"
                )));
            };
            let handler = match f.tls.as_ref().map(|t| t.mode) {
                None => {
                    let mut fe = TcpFrontend::from_config(f, default.pool.clone());
                    fe.stats = Arc::clone(stats);
                    fe.splice = f.splice;
                    fe.persistence = default.persistence.clone();
                    return Ok(Built::Stream {
                        handler: Handler::Tcp(Arc::new(fe)),
                        tls: None,
                    });
                }
                Some(TlsMode::Passthrough) => {
                    Handler::Passthrough(Arc::new(passthrough(f, pools)?))
                }
                Some(TlsMode::Terminate) => {
                    let t = f.tls.as_ref().map(|t| TlsRuntime::for_section(t, old_tls));
                    let t = t
                        .transpose()?
                        .ok_or_else(|| TierError::Build(name.clone()))?;
                    let handler = Handler::Terminate {
                        tls: Arc::clone(&t.server),
                        pool: default.pool.clone(),
                        timeouts: OffloadTimeouts::of(f),
                    };
                    return Ok(Built::Stream {
                        handler,
                        tls: Some(t),
                    });
                }
            };
            Ok(Built::Stream { handler, tls: None })
        }
        Mode::Udp => {
            let Some(default) = default else {
                return Err(TierError::Build(format!(
                    "frontend {name}: no default_pool"
                )));
            };
            let mut fe = UdpFrontend::from_config(f, default.pool.clone());
            fe.stats = Arc::clone(stats);
            let same = |t: &&Arc<Persistence>| {
                t.config().idle_timeout == fe.idle_timeout
                    && t.config().table_size == fe.max_sessions
            };
            fe.sessions = Some(
                old_sessions
                    .filter(same)
                    .map_or_else(|| crate::l4::udp::session_table(&fe), Arc::clone),
            );
            Ok(Built::Datagram(fe))
        }
    }
}

/// SNI routes over the pools' own session tables (`tls-session` persistence).
fn passthrough(f: &Frontend, pools: &BTreeMap<String, PoolSlot>) -> Result<Passthrough, TierError> {
    let route = |sni: &str, pool: &str| -> Result<Route, TierError> {
        let slot = pools
            .get(pool)
            .ok_or_else(|| TierError::Build(format!("pool {pool} is not defined")))?;
        let mut r = Route::new(sni, slot.pool.clone());
        if is_tls_session(&slot.cfg) {
            r.sessions = slot.persistence.clone();
        }
        Ok(r)
    };
    crate::tls::l4::passthrough(f, route)
}
