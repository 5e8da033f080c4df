//! Wiring the proxy tier from a validated config: pools, their health checks, and the links
//! between them (health snapshot → pool states, live-traffic outcomes → passive detection).
//!
//! This is glue only: the algorithms live in tenbin-core, the probes in tenbin-health, the
//! data path in tenbin-proxy.

mod health;

pub use health::ProxyHealth;
