#!/usr/bin/env bash
# tenbin Mux benchmark: BPF_PROG_TEST_RUN ns/packet for flow-table hits and new flows, IPv4
# and IPv6, L2 DSR and encapsulation. Needs root; prints a skip line otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p tenbin-xdp --example xdp_bench
