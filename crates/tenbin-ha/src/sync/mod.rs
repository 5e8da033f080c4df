//! Session sync: the proxy nodes' persistence tables replicated to their peers over TCP, so
//! a node taking over a VIP routes every persisted session to the server it had before.
//!
//! - [`frame`]: the wire format (length-prefixed frames at most [`frame::MAX_FRAME`] bytes,
//!   a versioned hello, HMAC-SHA256 per frame under a per-connection key with a sequence
//!   number), checked decoding that never panics.
//! - [`session`]: one connection as a sans-IO machine with injected time: full resync on
//!   every (re)connect, incremental changes after, a bounded change queue whose overflow
//!   schedules a full resync, acknowledgements for lag, keepalives and a dead-peer timer.
//! - [`driver`]: the tokio shell: a dialer per peer (push) and a listener (merge).
//!
//! Tables are opaque names here (the node uses `pool/NAME` and `udp/FRONTEND`); entries are
//! a key hash, a server name and an age, so peers need neither agreeing clocks nor agreeing
//! internal server ids. A full resync merges (the newer entry wins) and never deletes:
//! entries a peer forgot expire by their idle timeout.

pub mod driver;
pub mod frame;
pub mod session;

pub use driver::{start, FeedItem, PeerStatus, SyncHandle, SyncOptions, Tables};
pub use frame::{FrameError, Role, WireEntry};
pub use session::{Event, Session, SessionConfig, SessionError, SessionStats};

#[cfg(test)]
mod tests;
