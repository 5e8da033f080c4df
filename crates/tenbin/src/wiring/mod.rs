//! Wiring the proxy tier from a validated config: its pools' health checks and the links
//! between them (health snapshot → pool states and the node's health bus, live-traffic
//! outcomes → passive detection).
//!
//! This is glue only: the algorithms live in tenbin-core, the probes in tenbin-health, the
//! data path in tenbin-proxy (the DNS tier wires itself: `tenbin_dns::tier`).

mod health;

pub use health::ProxyHealth;
