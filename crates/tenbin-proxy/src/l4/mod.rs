//! L4 switching: `mode tcp` and `mode udp` listeners in front of a [`crate::pool::Pool`].
//!
//! Full proxy (the seeds' NAT mode): tenbin terminates the client's connection and opens its
//! own to the server, so the server sees tenbin's address unless the frontend sends a PROXY
//! protocol header. Entry points take an already bound socket and a shutdown future:
//! [`tcp::run`] and [`udp::run`].
//!
//! - [`tcp`]: accept → lease a server → connect with a timeout, trying another server when a
//!   connect fails → optional PROXY header → bidirectional copy with half-close and an idle
//!   timeout ([`copy`]), through `splice(2)` when [`TcpFrontend::splice`] is set.
//! - [`udp`]: a session per client address with its own upstream socket, replies relayed back
//!   from the listening socket, sessions expiring after the idle timeout.

pub mod copy;
pub mod serve;
mod splice;
pub mod tcp;
pub mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tenbin_config::frontend::ProxyProtocol;

use crate::pool::Pool;
use crate::proxy_protocol::Version;

pub use serve::{pools, serve, Listener, ServeError};
pub use tcp::TcpFrontend;
pub use udp::UdpFrontend;

/// Counters of one L4 frontend, cheap to read from an admin endpoint or a test.
#[derive(Debug, Default)]
pub struct L4Stats {
    /// Connections accepted (tcp) or sessions created (udp).
    pub accepted: AtomicU64,
    /// Connections or sessions open now.
    pub active: AtomicU64,
    /// Connections that never reached a server (no server, queue, every connect failed).
    pub failed: AtomicU64,
    /// Sessions ended by the idle timeout.
    pub idle_closed: AtomicU64,
    /// Bytes client → server and server → client.
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Sessions moved to a less contended worker (`crate::placement`).
    pub moved: AtomicU64,
}

impl L4Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Holds `active` up while a session lives.
struct ActiveGuard<'a>(&'a L4Stats);

impl<'a> ActiveGuard<'a> {
    fn new(stats: &'a L4Stats) -> Self {
        L4Stats::bump(&stats.active);
        ActiveGuard(stats)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The key a hashing pool places this client by; `None` for the other algorithms.
fn client_key(pool: &Pool, ip: std::net::IpAddr) -> Option<u64> {
    pool.is_hashing().then(|| pool.source_key(ip))
}

fn version_of(p: Option<ProxyProtocol>) -> Option<Version> {
    p.map(|p| match p {
        ProxyProtocol::V1 => Version::V1,
        ProxyProtocol::V2 => Version::V2,
    })
}

/// Defaults matching the config schema's.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TCP_IDLE: Duration = Duration::from_secs(300);
const UDP_IDLE: Duration = Duration::from_secs(30);
