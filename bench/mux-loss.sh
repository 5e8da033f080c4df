#!/usr/bin/env bash
# What losing one of three Muxes costs: the scale-out lab (BIRD 2 with multipath in front of
# three XDP Muxes announcing the VIP over BGP, three backends with the host agent) run once
# per failure, printing the time until the router's FIB dropped the Mux and the fraction of
# 48 established keep-alive connections that kept working on their backend:
#   kill -9          (TCP closes: BIRD withdraws at once)
#   graceful drain   (SIGTERM: withdraw, linger, close; counted as failed requests)
#   silent failure   (the Mux's port drops everything; the process lives: hold time, 3 s)
#                    and the same with BFD (200 ms x 3)
#   plain ECMP       (kill -9 with Muxes that do not share a flow hash: measured, not computed)
# kill -9 and drain do not wait for BFD (TCP closes, or the Mux withdraws first), so only
# the silent failure has a BFD row. Root only (namespaces, XDP).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "mux-loss: needs root (network namespaces, XDP)" >&2; exit 1; }
out=$(cargo test -q --release -p tenbin --test bgp_scale_out -- --nocapture --test-threads 1 2>&1) || {
  echo "$out" >&2
  exit 1
}
line() { echo "$out" | grep -m1 "$1" || echo "($1: not measured)"; }
# shellcheck source=bench/versions.sh
source bench/versions.sh
peer_versions bird
echo "mux-loss: 3 Muxes, 48 established connections, hold time 3 s, linger 2 s"
line "new flows per Mux"
line "^kill -9: "
line "^graceful drain"
line "^silent failure: "
line "^silent failure with BFD"
line "^kill -9 without a shared flow hash"
