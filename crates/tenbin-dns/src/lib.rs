//! tenbin-dns: the authoritative GSLB DNS tier (tier 1).
//!
//! Owns: the query path (hickory-proto for the wire format; our own answer logic, EDNS0,
//! ECS per RFC 7871, size budget and truncation), the GSLB policy pipeline as pure stages, and
//! the UDP/TCP server with counters and atomic reload.
//! Must not: probe health itself (health arrives as a [`health::HealthSnapshot`] on a watch
//! channel), read the clock or own an RNG in the pipeline (both are injected).
#![forbid(unsafe_code)]

pub mod gslb;
pub mod health;
pub mod netmap;
