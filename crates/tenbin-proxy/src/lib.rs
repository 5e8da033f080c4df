//! tenbin-proxy: the userspace proxy tier (tier 3).
//!
//! Owns the runtime server pool every listener draws from ([`pool`]), L4 switching for
//! `mode tcp` and `mode udp` ([`l4`]), L7 HTTP switching for `mode http` ([`http`]), the
//! PROXY protocol encoder ([`proxy_protocol`]), session persistence in every mode
//! ([`persist`]) and TLS termination, re-encryption and passthrough ([`tls`]); [`tier`] runs
//! all of it from a validated config and applies config changes live.
//!
//! It must not do XDP or DNS, run health checks itself (states arrive through
//! [`pool::Pool::apply_health`]) or read configuration files (certificate and key files
//! excepted): the binary converts validated config into the runtime types here and hands in
//! bound sockets and a shutdown signal, or hands [`tier::ProxyTier`] the validated config,
//! which binds the frontends' addresses itself.
#![forbid(unsafe_code)]

mod batch;
mod cancel;
pub mod http;
pub mod l4;
pub mod persist;
pub mod placement;
pub mod pool;
pub mod proxy_protocol;
pub mod tier;
pub mod tls;
