//! tenbin-ha: the protocols that take away single points of failure.
//!
//! - [`vrrp`]: VRRPv3 (RFC 5798) between proxy nodes.
//! - [`bgp`]: BGP-4 (RFC 4271), announce only, from each Mux (and DNS node) to its routers.
//! - [`sync`]: session sync, the proxies' persistence tables replicated to their peers.
//! - [`bfd`]: BFD (RFC 5880/5881) beside BGP, for failure detection faster than a hold time.
//!
//! Each protocol is a sans-IO state machine (`handle_input(bytes, now)`, `handle_timeout(now)`,
//! `poll_timeout()`, `poll_output()`) plus a thin driver that owns the socket and the timer.
//! Nothing here programs BPF maps or pools: drivers emit events, the node runtime applies them,
//! and the node feeds tier health in as plain inputs (see ARCHITECTURE.md, "Seams").
#![forbid(unsafe_code)]

pub mod bfd;
pub mod bgp;
pub mod sync;
pub mod vrrp;
