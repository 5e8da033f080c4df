//! `NodeState.sync`: session sync as the admin API shows it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The `[sync]` role: where it listens and every connection to or from a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The bound listen address, if any.
    pub listen: Option<SocketAddr>,
    /// Changes the proxy's feed dropped because it was full (each led to a full resync).
    pub feed_lost: u64,
    pub peers: Vec<SyncPeerState>,
}

/// One sync connection: `out` to a peer this node pushes to, `in` from one pushing here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPeerState {
    pub direction: String,
    pub address: Option<SocketAddr>,
    /// The peer's `[sync].name`, once it authenticated.
    pub name: Option<String>,
    /// `connecting`, `handshake`, `resync`, `established` or `closed`.
    pub state: String,
    pub entries_sent: u64,
    pub entries_received: u64,
    /// Full snapshots sent (`out`) or received (`in`).
    pub resyncs: u64,
    /// Times the change queue overflowed into a full resync.
    pub overflows: u64,
    /// Changes waiting to be sent.
    pub queued: u64,
    /// Frames sent and not yet acknowledged.
    pub unacked: u64,
    /// Age of the oldest change the peer has not acknowledged, in milliseconds.
    pub lag_ms: u64,
    pub connects: u64,
    /// Connections ended by an error (authentication, malformed frame, timeout).
    pub errors: u64,
    pub last_error: Option<String>,
}
