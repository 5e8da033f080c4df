//! The tenbin binary: CLI, daemon wiring, admin API, metrics and dashboard. No algorithms.
#![forbid(unsafe_code)]

fn main() {
    println!("tenbin {}", env!("CARGO_PKG_VERSION"));
}
