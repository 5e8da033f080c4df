//! tenbin-xdp: the VIP tier's data plane, the Ananta/Katran shape.
//!
//! Owns the C BPF programs in `bpf/` (compiled by `build.rs` with clang): the Mux
//! (`mux.bpf.c`: VIP lookup, per-CPU-LRU flow table, Maglev ring lookup, IPIP/GRE
//! encapsulation or L2 DSR, ICMP too-big, counters), the host agent's decapsulation
//! (`decap.bpf.c`) and a pass-through program for veth peers; and the Rust that loads them
//! with aya, programs their maps and reads their counters; and the two roles of the tier,
//! the Mux and the host agent, as event loops behind a façade each.
//!
//! It must not compute placement itself: rings come from tenbin-core's Maglev, and the flow
//! hash is tenbin-core's [`tenbin_core::flow::flow_hash`], which the C code reproduces word
//! for word.
//!
//! Tour:
//! - [`abi`]: the Rust twins of the C structs and counter names.
//! - [`writer`]: the [`writer::MapWriter`] seam and its in-memory implementation.
//! - [`control`]: desired state → map writes; stable ids, whole-ring swaps.
//! - [`mux`]: the Mux role: façade and event loop (see below).
//! - [`agent`]: the host agent role: façade, checks and reports (see below).
//! - [`host`]: the host agent's VIPs on `lo` and ARP sysctls for DSR.
//! - [`tier`]: the context the roles start in and their errors.
//! - [`explain`]: where a 5-tuple goes and why, model and real program side by side.
//! - [`loader`]: aya loading, the kernel `MapWriter`, test runs, attach, counters (root).
//! - [`report`]: authenticated host-agent health reports and the Mux's book of them.
//! - [`metrics`]: the counters in the Prometheus text format.
//! - [`packet`]: frame builders and parsers used by tests, `explain` and benchmarks.
//!
//! # The two roles
//!
//! Each role starts from its validated config section inside a tokio runtime (any flavour;
//! it spawns one task on the current runtime) and returns a handle:
//!
//! ```no_run
//! # async fn node(m: tenbin_config::mux::MuxSection, a: tenbin_config::mux::AgentSection)
//! # -> Result<(), tenbin_xdp::TierError> {
//! let ctx = tenbin_xdp::TierContext::default(); // or one sharing the node's token
//! let mux = tenbin_xdp::mux::start(m.clone(), ctx.clone())?; // root: attaches the program
//! let mut ready = mux.readiness(); // watch::Receiver<MuxReadiness>
//! mux.apply(m)?; // a new [mux]: rings swapped at once, or an error and no change
//! let text = mux.stats()?.counters.render(); // what `mux run --metrics` serves
//! ready.changed().await.ok(); // attached / per-VIP healthy changed
//! mux.shutdown().await; // readiness turns detached, the program detaches
//!
//! let agent = tenbin_xdp::agent::start(a, ctx)?; // root: VIPs on lo, decap attached
//! let checks = agent.stats().checks; // each [[agent.check]]'s state and probe counts
//! agent.shutdown().await; // VIPs leave lo, the program detaches
//! # Ok(()) }
//! ```
//!
//! The Mux loop wakes on an agent report (a socket read), on a reporting host falling silent
//! (a timer at its report timeout), on a new section (a channel) and on the 10-second counters
//! log; after each it writes the configuration overlaid with the reports' verdicts. The agent
//! runs one task per check (its interval and jitter, its prober's timeout), folds results
//! through rise/fall and reports on the report interval and at once on a change. Neither
//! polls. [`mux::start_on`] runs the Mux loop over any [`writer::MapWriter`] (tests use
//! [`writer::MemWriter`]).
//!
//! The only `unsafe` is in the private `pod` module: aya's `Pod` marker impls.
#![deny(unsafe_code)]

pub mod abi;
pub mod agent;
pub mod control;
pub mod explain;
pub mod host;
pub mod loader;
pub mod metrics;
pub mod mux;
pub mod packet;
mod pod;
pub mod report;
pub mod tier;
pub mod writer;

pub use tier::{ApplyError, StartError, TierContext, TierError};
