//! [`ProxyTier::stats`]: the whole tier's counters and pool states as plain data, read
//! without holding any lock across the call (each pool's lock is taken once, briefly, as
//! [`Pool::status`] does for the admin API).

use super::{Live, ProxyTier};
use crate::http::TrafficSnapshot;
use crate::l4::L4Stats;
use crate::persist::PersistStats;
use crate::pool::ServerStatus;

/// Every frontend and pool of the tier, as read at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyStats {
    pub frontends: Vec<FrontendStats>,
    pub pools: Vec<PoolStats>,
}

/// One frontend's counters.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontendStats {
    pub name: String,
    /// `http`, `https`, `tcp`, `tls` or `udp`.
    pub mode: &'static str,
    pub traffic: FrontendTraffic,
}

/// What a frontend counts depends on what it speaks.
#[derive(Clone, Debug, PartialEq)]
pub enum FrontendTraffic {
    Http {
        traffic: TrafficSnapshot,
        /// Client connections holding a slot now.
        open: usize,
        /// Refusals by [`crate::http::Reject`] name.
        rejected: Vec<(&'static str, u64)>,
    },
    /// tcp, tls and udp frontends.
    Stream(L4Snapshot),
}

/// [`L4Stats`] as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L4Snapshot {
    pub accepted: u64,
    pub active: u64,
    pub failed: u64,
    pub idle_closed: u64,
    /// Sessions moved to a less contended worker.
    pub moved: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One pool: its queue, every server with its counters, its persistence table.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolStats {
    pub name: String,
    pub queued: usize,
    pub servers: Vec<ServerStatus>,
    pub persistence: Option<PersistStats>,
}

impl L4Snapshot {
    fn of(s: &L4Stats) -> Self {
        L4Snapshot {
            accepted: L4Stats::get(&s.accepted),
            active: L4Stats::get(&s.active),
            failed: L4Stats::get(&s.failed),
            idle_closed: L4Stats::get(&s.idle_closed),
            moved: L4Stats::get(&s.moved),
            bytes_in: L4Stats::get(&s.bytes_in),
            bytes_out: L4Stats::get(&s.bytes_out),
        }
    }
}

impl ProxyTier {
    /// The tier's counters and pool states now. See the module docs.
    pub fn stats(&self) -> ProxyStats {
        let frontends = self
            .frontends
            .iter()
            .map(|(name, r)| {
                let (mode, traffic) = match &r.live {
                    Live::Stream {
                        handler,
                        service: Some(service),
                    } => {
                        let stats = service.stats();
                        let traffic = FrontendTraffic::Http {
                            traffic: stats.traffic.snapshot(),
                            open: service.open_connections(),
                            rejected: stats.snapshot(),
                        };
                        (handler.load().mode(), traffic)
                    }
                    Live::Stream { handler, .. } => (
                        handler.load().mode(),
                        FrontendTraffic::Stream(L4Snapshot::of(&r.stats)),
                    ),
                    Live::Datagram(_) => ("udp", FrontendTraffic::Stream(L4Snapshot::of(&r.stats))),
                };
                FrontendStats {
                    name: name.clone(),
                    mode,
                    traffic,
                }
            })
            .collect();
        let pools = self
            .pools
            .iter()
            .map(|(name, slot)| PoolStats {
                name: name.clone(),
                queued: slot.pool.queued(),
                servers: slot.pool.status(),
                persistence: slot.persistence.as_ref().map(|p| p.stats()),
            })
            .collect();
        ProxyStats { frontends, pools }
    }
}
