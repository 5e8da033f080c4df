//! Wiring tiers from a validated config: the proxy tier's pools, their health checks and the
//! links between them (health snapshot → pool states, live-traffic outcomes → passive
//! detection), and the DNS tier.
//!
//! This is glue only: the algorithms live in tenbin-core, the probes in tenbin-health, the
//! data path in tenbin-proxy.

mod dns;
mod health;

pub use dns::{DnsTier, LoadError};
pub use health::ProxyHealth;
