//! tenbin-health: active probers and passive signals, turned into one published health view.
//!
//! Owns the four check levels of the seeds (ICMP echo, TCP connect, HTTP status, HTTP content),
//! HAProxy's agent-check text protocol, the check scheduler (interval, jitter, timeout,
//! rise/fall), passive outlier detection from live traffic, and the publication of the result as
//! a [`tokio::sync::watch`] of an `Arc<HealthSnapshot>` that every tier reads (the proxy now,
//! DNS and the Mux later).
//!
//! It must never choose backends: it says which targets are usable and how loaded they claim to
//! be; picking stays in `tenbin-core`'s balancers.
//!
//! Tour:
//! - [`target`]: the generic key of a checked thing (pool name + server name).
//! - [`outcome`]: what a probe returns and how a failure is classified (drain vs down).
//! - [`probe`]: the probers themselves (`icmp`, `tcp`, `http` incl. content, `agent`).
//! - [`agent`]: the pure parser of agent replies.
//! - [`hysteresis`]: rise/fall, and "unchecked until the first passing check".
//! - [`outlier`]: passive ejection with growing time, an ejection cap and panic mode.
//! - [`snapshot`]: the published view; [`hub`]: the single place results are folded and
//!   published, with the cheap [`hub::PassiveHandle`] the proxy reports through.
//! - [`bus`]: the node's one published view under typed keys (tier, pool and server, or
//!   datacenter and VIP) and the [`bus::NodeHealth`] (each tier's readiness) derived with it.
//! - [`scheduler`]: the tokio tasks that run checks on an interval with injected jitter.
//! - [`spec`]: runtime check specifications; [`from_config`] builds them (and registers and
//!   starts a pool's checks) from tenbin-config's `[[pool]]`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod bus;
pub mod from_config;
pub mod hub;
pub mod hysteresis;
pub mod outcome;
pub mod outlier;
pub mod probe;
pub mod scheduler;
pub mod snapshot;
pub mod spec;
pub mod target;

pub use hub::{HealthHub, PassiveHandle, PassiveSignal};
pub use outcome::{ProbeError, Verdict};
pub use snapshot::{HealthSnapshot, PoolHealth, TargetHealth};
pub use spec::{AgentSpec, CheckKind, CheckSpec, HttpCheck, OutlierSpec};
pub use target::TargetKey;
