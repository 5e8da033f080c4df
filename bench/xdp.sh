#!/usr/bin/env bash
# tenbin Mux benchmark: BPF_PROG_TEST_RUN ns/packet for flow-table hits and new flows, IPv4
# and IPv6, L2 DSR and encapsulation; then packets per second end to end on veth (client ->
# XDP Mux -> decapsulating backend) in namespaces it creates and removes. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p tenbin-xdp --example xdp_bench
