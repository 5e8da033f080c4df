//! Wiring a whole validated config's L4 frontends: bind every `mode tcp` / `mode udp`
//! address and run it until shutdown. This is what `tenbin run` calls for the L4 tier.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tenbin_config::{Config, Mode};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{tcp, udp, TcpFrontend, UdpFrontend};
use crate::pool::{Pool, PoolConfig};

/// Every pool of `config`, by name, ready to be shared by L4 and L7 frontends and fed by
/// health checks. Queue waits default to 5 s; frontends pass their own `timeouts.queue`.
pub fn pools(config: &Config) -> BTreeMap<String, Pool> {
    config
        .pool
        .iter()
        .map(|p| {
            let pc = PoolConfig::from_config(p, std::time::Duration::from_secs(5));
            (pc.name.clone(), Pool::new(pc))
        })
        .collect()
}

/// Why the L4 tier could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("frontend {frontend}: pool {pool:?} is not defined")]
    NoPool {
        frontend: String,
        pool: Option<String>,
    },
    #[error("frontend {frontend}: {source}")]
    Tls {
        frontend: String,
        #[source]
        source: crate::tls::TlsError,
    },
    #[error("frontend {frontend}: cannot bind {addr}: {source}")]
    Bind {
        frontend: String,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A running L4 listener.
#[derive(Debug)]
pub struct Listener {
    pub frontend: String,
    pub addr: SocketAddr,
    pub task: JoinHandle<io::Result<()>>,
}

/// Binds and starts every tcp/udp frontend of `config` over `pools`; each stops accepting
/// once `shutdown` holds `true`. `mode http` frontends are left to the L7 tier.
pub async fn serve(
    config: &Config,
    pools: &BTreeMap<String, Pool>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<Listener>, ServeError> {
    let mut out = Vec::new();
    let persistence = crate::persist::from_config(config);
    for f in &config.frontend {
        if f.mode == Mode::Http {
            continue;
        }
        let name = f.name.get_ref().clone();
        let pool_name = f.default_pool.as_ref().map(|p| p.get_ref().clone());
        let Some(pool) = pool_name.as_ref().and_then(|p| pools.get(p)) else {
            return Err(ServeError::NoPool {
                frontend: name,
                pool: pool_name,
            });
        };
        let tcp_fe = (f.mode == Mode::Tcp).then(|| {
            let mut fe = TcpFrontend::from_config(f, pool.clone());
            fe.splice = f.splice;
            fe.persistence = pool_name.as_ref().and_then(|p| persistence.get(p).cloned());
            Arc::new(fe)
        });
        let udp_fe =
            (f.mode == Mode::Udp).then(|| Arc::new(UdpFrontend::from_config(f, pool.clone())));
        // TLS passthrough or termination replaces the plain tcp loop (issue 4).
        let tls = crate::tls::l4::L4Tls::from_config(f, config, pools).map_err(|source| {
            ServeError::Tls {
                frontend: name.clone(),
                source,
            }
        })?;
        for addr in f.bind.iter().map(|a| *a.get_ref()) {
            let bind_err = |source| ServeError::Bind {
                frontend: name.clone(),
                addr,
                source,
            };
            let stop = stopped(shutdown.clone());
            let (local, task) = if let Some(fe) = &tcp_fe {
                let l = bind_tcp(addr).map_err(bind_err)?;
                let local = l.local_addr().unwrap_or(addr);
                let task = match &tls {
                    Some(tls) => tls.spawn(l, stop),
                    None => tokio::spawn(tcp::run(l, Arc::clone(fe), stop)),
                };
                (local, task)
            } else if let Some(fe) = &udp_fe {
                let s = UdpSocket::bind(addr).await.map_err(bind_err)?;
                let local = s.local_addr().unwrap_or(addr);
                (local, tokio::spawn(udp::run(s, Arc::clone(fe), stop)))
            } else {
                continue;
            };
            out.push(Listener {
                frontend: name.clone(),
                addr: local,
                task,
            });
        }
    }
    Ok(out)
}

/// Resolves when the watched flag becomes `true` (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

pub(crate) fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_tcp_shared(addr, false)
}

/// `reuseport`: join (or start) the `SO_REUSEPORT` group on `addr`, one listener per worker.
pub(crate) fn bind_tcp_shared(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    if reuseport {
        s.set_reuseport(true)?;
    }
    s.bind(addr)?;
    s.listen(4096)
}
