#!/usr/bin/env bash
# tenbin Mux benchmark: BPF_PROG_TEST_RUN ns/packet for flow-table hits, misses and new flows
# (distinct keys into a nearly full flow table), IPv4 and IPv6, L2 DSR and encapsulation, each
# next to a baseline measured in the same run (pass.bpf.o, a fixed verdict) and as a ratio to
# it; then packets per second end to end on veth (client -> XDP Mux -> decapsulating backend)
# in namespaces it creates and removes. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/versions.sh
source bench/versions.sh
echo "bpf objects: $(cat crates/tenbin-xdp/bpf/prebuilt/CLANG_VERSION) (committed prebuilt); $(peer_versions)"
cargo run --quiet --release -p tenbin-xdp --example xdp_bench
