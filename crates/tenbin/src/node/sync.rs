//! The `[sync]` role: the proxy tier's persistence tables pushed to the peers and the
//! peers' tables merged here (tenbin-ha's `sync` protocol over the proxy's `SyncTables`).
//!
//! One task forwards the proxy's change feed to every peer connection, naming servers by
//! their configured names and turning times into ages; a change the feed had to drop
//! makes every peer resync in full. Tables travel under the proxy's names (`pool/NAME`,
//! `udp/FRONTEND`).

use std::sync::Arc;

use anyhow::Context as _;
use tenbin_config::api::{SyncPeerState, SyncState};
use tenbin_config::sync::SyncSection;
use tenbin_ha::sync::{self as proto, FeedItem, SessionConfig, SyncHandle, SyncOptions, WireEntry};
use tenbin_proxy::persist::{Feed, Persistence};
use tenbin_proxy::tier::{SyncEntry, SyncTables};
use tokio::sync::broadcast;

use super::control::NodeContext;

/// The running role.
#[derive(Debug)]
pub(super) struct SyncRole {
    handle: SyncHandle,
    feed: Feed,
}

/// Starts `[sync]` over `tables`: binds the listener, dials the peers.
pub(super) async fn start(
    section: &SyncSection,
    tables: SyncTables,
    ctx: &NodeContext,
) -> anyhow::Result<SyncRole> {
    let key = section
        .key
        .as_ref()
        .context("sync: no key (validation requires key or key_file)")?;
    let queue = *section.queue.get_ref();
    let (feed, mut learned) = tables.subscribe(queue);
    let (tx, _) = broadcast::channel(queue);
    let opts = SyncOptions {
        listen: section.listen,
        peers: section.peers.iter().map(|p| *p.get_ref()).collect(),
        key: key.expose().as_bytes().to_vec(),
        session: SessionConfig {
            name: section.name.clone(),
            queue_bound: queue,
            keepalive: section.keepalive,
            dead_after: section.dead_after,
        },
        reconnect: section.reconnect,
    };
    let shared = Arc::new(NodeTables(tables.clone()));
    let handle = proto::start(opts, shared, tx.clone(), ctx.shutdown.clone(), &ctx.tracker)
        .await
        .with_context(|| format!("sync: cannot listen on {:?}", section.listen))?;
    let (shutdown, lost) = (ctx.shutdown.clone(), feed.clone());
    ctx.tracker.spawn(async move {
        let mut seen_lost = 0;
        loop {
            let change = tokio::select! {
                () = shutdown.cancelled() => return,
                c = learned.recv() => match c { Some(c) => c, None => return },
            };
            if lost.lost() != seen_lost {
                seen_lost = lost.lost();
                let _ = tx.send(FeedItem::Lost);
            }
            let Some(server) = tables.server_name(&change.table, change.server) else {
                continue;
            };
            let entry = WireEntry {
                key: change.key.0,
                server,
                age: Persistence::now().saturating_sub(change.last_seen),
            };
            // No receiver yet (no peer connected): the next snapshot carries it.
            let _ = tx.send(FeedItem::Change {
                table: change.table,
                entry,
            });
        }
    });
    Ok(SyncRole { handle, feed })
}

impl SyncRole {
    pub(super) fn state(&self) -> SyncState {
        let peers = self
            .handle
            .stats()
            .into_values()
            .map(|p| SyncPeerState {
                direction: p.direction.to_string(),
                address: p.address,
                name: p.session.peer,
                state: p.session.state.to_string(),
                entries_sent: p.session.entries_sent,
                entries_received: p.session.entries_received,
                resyncs: p.session.resyncs,
                overflows: p.session.overflows,
                queued: p.session.queued,
                unacked: p.session.unacked,
                lag_ms: u64::try_from(p.session.lag.as_millis()).unwrap_or(u64::MAX),
                connects: p.connects,
                errors: p.errors,
                last_error: p.last_error,
            })
            .collect();
        SyncState {
            listen: self.handle.listen(),
            feed_lost: self.feed.lost(),
            peers,
        }
    }
}

/// The proxy's tables under the protocol's table names.
struct NodeTables(SyncTables);

impl proto::Tables for NodeTables {
    fn snapshot(&self) -> Vec<(String, Vec<WireEntry>)> {
        self.0
            .snapshot()
            .into_iter()
            .map(|(table, entries)| {
                let entries = entries
                    .into_iter()
                    .map(|e| WireEntry {
                        key: e.key,
                        server: e.server,
                        age: e.age,
                    })
                    .collect();
                (table, entries)
            })
            .collect()
    }

    fn merge(&self, table: &str, entries: Vec<WireEntry>) -> u64 {
        let entries = entries
            .into_iter()
            .map(|e| SyncEntry {
                key: e.key,
                server: e.server,
                age: e.age,
            })
            .collect();
        self.0.merge(table, entries) as u64
    }
}
