//! VRRPv3 (RFC 5798): the wire format, the state machine and its driver.
//!
//! - [`packet`]: the advertisement as a byte view and a checked [`packet::Repr`], both
//!   checksum modes.
//! - [`machine`]: one virtual router, sans-IO, with Fault and cable-safe promotion.
//! - [`driver`]: raw sockets, netlink VIPs and link watch, ARP/NA, probes, notify hook.

pub mod driver;
pub mod machine;
pub mod packet;

pub use machine::{Machine, Output, Probe, Received, Settings, State};
pub use packet::ChecksumMode;
