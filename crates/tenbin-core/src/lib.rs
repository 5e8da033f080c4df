//! tenbin-core: the pure heart of tenbin.
//!
//! Owns the vocabulary every tier shares ([`BackendId`], [`Weight`], [`ServerState`]), every
//! balancing algorithm behind one picking interface ([`pick::Balancer`]), Maglev and ring
//! hashing, the flow hash shared with the XDP data plane, persistence tables and health
//! hysteresis.
//!
//! It must never do I/O, read a clock or own a random number generator: `now` and randomness
//! are arguments, so every algorithm is deterministic under test and identical in every tier.
//!
//! Tour:
//! - [`backend`]: ids, weights, states, the static description of a server.
//! - [`pick`]: the [`pick::Balancer`] that owns a pool's per-server state and picks.
//! - [`maglev`] and [`ketama`]: consistent hashing tables built once, looked up many times.
//! - [`flow`]: the keyed 5-tuple hash the XDP Mux computes in BPF; Rust and C agree bit for bit.
//! - [`health`]: rise/fall hysteresis and slow-start weight ramps.
//! - [`persist`]: bounded session-persistence tables with idle expiry, mergeable between peers.
//! - [`counter`]: sharded counters and a latency histogram for the tiers' hot paths.
#![forbid(unsafe_code)]

pub mod backend;
pub mod counter;
pub mod flow;
pub mod health;
pub mod ketama;
pub mod maglev;
pub mod persist;
pub mod pick;

pub use backend::{BackendId, ServerSpec, ServerState, Weight};
