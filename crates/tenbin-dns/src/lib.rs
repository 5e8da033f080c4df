//! tenbin-dns: the authoritative GSLB DNS tier (tier 1).
//!
//! Owns: the query path (hickory-proto for the wire format; our own answer logic, EDNS0,
//! ECS per RFC 7871, size budget and truncation), the GSLB policy pipeline as pure stages, and
//! the UDP/TCP server with counters and atomic reload.
//!
//! Must not: probe health itself (the [`tier`] façade runs tenbin-health's checks of the VIPs
//! and turns their states into the [`HealthSnapshot`] the pipeline reads from a watch
//! channel), read the clock or own an RNG inside the pipeline (both are injected).
//!
//! Tour: [`records`] reads owner names and record data, [`zone`] compiles zones from them;
//! [`gslb`] is the pipeline (view → locality → capacity → select), with [`netmap`] and the
//! optional MaxMind database of [`geoip`] placing clients; [`ecs`] checks client subnets;
//! [`state`] is what a query reads; [`query`] turns bytes into bytes, after [`fast`] has had its
//! try at the common GSLB query (hand-parsed, written straight to bytes, byte-identical to
//! [`query`]'s answer); [`engine`] swaps states and calls both; [`server`] runs sockets, with
//! [`tcp`] serving DNS over TCP under [`TcpLimits`] (defaults: a client idle or mid-message
//! for [`tcp::TCP_IDLE`] is closed, so is one that does not take its answer within
//! [`tcp::TCP_WRITE`]; at [`tcp::TCP_MAX_CONNS`] connections a new client closes the idlest).
//! [`tier`] is the façade a node runs (`start(section, ctx) -> DnsHandle` with `apply`,
//! `stats`, `shutdown`) with the tier's health policy ([`tier::policy`]: which VIPs are
//! checked, how check states, overrides and loads become the snapshot). Below it the entry
//! point is [`serve`]:
//!
//! ```no_run
//! # async fn f(cfg: tenbin_config::dns::DnsSection) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tenbin_dns::{Engine, HealthSnapshot, Sockets};
//! let engine = Arc::new(Engine::new(&cfg)?);
//! let (_health_tx, health_rx) = tokio::sync::watch::channel(Arc::new(HealthSnapshot::default()));
//! let sockets = Sockets::bind(&cfg.listen, cfg.udp_sockets)?;
//! tenbin_dns::serve(engine, health_rx, sockets, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod batch;
pub mod counters;
pub mod ecs;
pub mod engine;
pub mod fast;
pub mod fasthash;
pub mod geoip;
pub mod gslb;
pub mod health;
pub mod netmap;
pub mod query;
pub mod records;
pub mod server;
pub mod state;
pub mod tcp;
pub mod tier;
pub mod zone;

pub use counters::Stats;
pub use engine::Engine;
pub use health::{AdminOverride, DcReport, HealthSnapshot};
pub use server::{serve, serve_with, Sockets};
pub use state::{State, Transport};
pub use tcp::TcpLimits;
