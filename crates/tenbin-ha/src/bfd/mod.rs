//! BFD (RFC 5880 asynchronous mode, single hop over IPv4 per RFC 5881), so a router drops a
//! dead Mux in a few hundred milliseconds instead of a BGP hold time.
//!
//! - [`packet`]: the control packet, checked (no authentication).
//! - [`session`]: one session's state machine (sans-IO, seeded jitter).
//! - [`driver`]: UDP sockets with TTL 255 both ways; events per peer.

pub mod driver;
pub mod packet;
pub mod session;

pub use packet::State;
pub use session::{BfdConfig, BfdOutput, BfdSession};
