//! tenbin-xdp: the VIP tier's data plane, the Ananta/Katran shape.
//!
//! Owns the C BPF programs in `bpf/` (compiled by `build.rs` with clang): the Mux
//! (`mux.bpf.c`: VIP lookup, per-CPU-LRU flow table, Maglev ring lookup, IPIP/GRE
//! encapsulation or L2 DSR, ICMP too-big, counters), the host agent's decapsulation
//! (`decap.bpf.c`) and a pass-through program for veth peers; and the Rust that loads them
//! with aya, programs their maps and reads their counters.
//!
//! It must not compute placement itself: rings come from tenbin-core's Maglev, and the flow
//! hash is tenbin-core's [`tenbin_core::flow::flow_hash`], which the C code reproduces word
//! for word.
//!
//! Tour:
//! - [`abi`]: the Rust twins of the C structs and counter names.
//! - [`writer`]: the [`writer::MapWriter`] seam and its in-memory implementation.
//! - [`control`]: desired state → map writes; stable ids, whole-ring swaps.
//! - [`agent`]: the host agent's VIPs on `lo` and ARP sysctls for DSR.
//! - [`explain`]: where a 5-tuple goes and why, model and real program side by side.
//! - [`loader`]: aya loading, the kernel `MapWriter`, test runs, attach, counters (root).
//! - [`report`]: authenticated host-agent health reports and the Mux's book of them.
//! - [`metrics`]: the counters in the Prometheus text format.
//! - [`packet`]: frame builders and parsers used by tests, `explain` and benchmarks.
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
