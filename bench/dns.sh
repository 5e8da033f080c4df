#!/usr/bin/env bash
# DNS tier benchmark: dnsperf on loopback, one server thread each, side by side.
#   1. static A record:   tenbin vs Knot vs gdnsd
#   2. geo answer + ECS:  tenbin vs gdnsd (network map 10/8 -> fra, 172.16/12 -> nrt)
# Prints qps per server and the ratios. Servers are pinned to CPU 0, dnsperf to CPU 1.
# Usage: bench/dns.sh [seconds per run, default 10]   (ROUNDS=n, default 2, best of n)
set -euo pipefail

DUR=${1:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/tenbin-dnsbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

for t in dnsperf knotd gdnsd dig taskset; do
  command -v "$t" >/dev/null || { echo "dns.sh: needs $t (scripts/install-deps)" >&2; exit 1; }
done

free_port() {
  python3 -c 'import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
t = socket.socket(); t.bind(("127.0.0.1", p)); print(p)'
}

wait_up() { # port name
  for _ in $(seq 1 100); do
    dig +time=1 +tries=1 +short @127.0.0.1 -p "$1" static.example.test A | grep -q 192.0.2.10 && return 0
    sleep 0.1
  done
  echo "dns.sh: $2 did not come up on port $1" >&2; exit 1
}

perf() { # port queryfile [extra dnsperf args...]
  local port=$1 file=$2; shift 2
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$DUR" -c 8 -q 256 -T 1 "$@" 2>&1 \
    | awk '/Queries per second/ { printf "%d", $4 } /Queries lost/ { lost = $3 } END { }'
}

echo "building tenbin (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p tenbin-dns --example serve)
TENBIN="$ROOT/target/release/examples/serve"

# Query files.
for _ in $(seq 1 1000); do echo "static.example.test A"; done > "$W/static.q"
for _ in $(seq 1 1000); do echo "www.example.test A"; done > "$W/geo.q"
# ECS 10.1.2.0/24: family 1, source 24, scope 0, address 0a0102.
ECS="-E 8:000118000a0102"

# --- tenbin ---
TP=$(free_port)
cat > "$W/tenbin.toml" <<CONF
listen = ["127.0.0.1:$TP"]
udp_sockets = 1
CONF
cat "$ROOT/crates/tenbin-dns/tests/data/two_datacenters.toml" >> "$W/tenbin.toml"
cat >> "$W/tenbin.toml" <<CONF
[[zones]]
origin = "example.test."
soa = { mname = "ns1", rname = "hostmaster" }
records = [
  { name = "@", type = "NS", data = "ns1" },
  { name = "ns1", type = "A", data = "192.0.2.53" },
  { name = "static", type = "A", data = "192.0.2.10" },
]
[[gslb]]
name = "www.example.test."
ttl = 30
pools = [
  { datacenter = "fra", addresses = ["198.51.100.1"] },
  { datacenter = "nrt", addresses = ["203.0.113.1"] },
]
CONF
taskset -c 0 "$TENBIN" "$W/tenbin.toml" 1 >/dev/null 2>&1 &
PIDS+=($!)

# --- knot ---
KP=$(free_port)
mkdir -p "$W/knot/db"
cat > "$W/knot/example.test.zone" <<ZONE
\$ORIGIN example.test.
\$TTL 300
@ SOA ns1 hostmaster 1 3600 600 604800 60
@ NS ns1
ns1 A 192.0.2.53
static A 192.0.2.10
ZONE
cat > "$W/knot/knot.conf" <<CONF
server:
  listen: 127.0.0.1@$KP
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  rundir: "$W/knot"
  pidfile: "$W/knot/knot.pid"
control:
  listen: "$W/knot/knot.sock"
database:
  storage: "$W/knot/db"
log:
  - target: stderr
    any: error
zone:
  - domain: example.test.
    storage: "$W/knot"
    file: "example.test.zone"
CONF
taskset -c 0 knotd -c "$W/knot/knot.conf" >"$W/knot/log" 2>&1 &
PIDS+=($!)

# --- gdnsd ---
GP=$(free_port)
mkdir -p "$W/gdnsd/zones" "$W/gdnsd/run" "$W/gdnsd/state"
cat > "$W/gdnsd/config" <<CONF
options => {
  listen => [ 127.0.0.1:$GP ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => $W/gdnsd/run
  state_dir => $W/gdnsd/state
}
plugins => {
  geoip => {
    maps => {
      m => {
        datacenters => [fra, nrt]
        nets => { 10.0.0.0/8 => [fra, nrt], 172.16.0.0/12 => [nrt, fra] }
      }
    }
    resources => {
      www => { map => m, dcmap => { fra => 198.51.100.1, nrt => 203.0.113.1 } }
    }
  }
}
CONF
cat > "$W/gdnsd/zones/example.test" <<ZONE
\$TTL 300
@ SOA ns1 hostmaster 1 3600 600 604800 60
@ NS ns1
ns1 A 192.0.2.53
static A 192.0.2.10
www 30 DYNA geoip!www
ZONE
taskset -c 0 gdnsd -c "$W/gdnsd" start >"$W/gdnsd/log" 2>&1 &
PIDS+=($!)

wait_up "$TP" tenbin
wait_up "$KP" knot || { cat "$W/knot/log"; exit 1; }
wait_up "$GP" gdnsd || { cat "$W/gdnsd/log"; exit 1; }

# Sanity: the geo answer with ECS must be the eu datacenter from both geo servers.
for p in "$TP" "$GP"; do
  a=$(dig +short @127.0.0.1 -p "$p" www.example.test A +subnet=10.1.2.0/24)
  [ "$a" = "198.51.100.1" ] || { echo "dns.sh: port $p geo answer '$a'" >&2; exit 1; }
done

# Interleaved rounds, best of each: a busy machine then biases no server in particular.
ROUNDS=${ROUNDS:-2}
best() { [ "${1:-0}" -gt "${2:-0}" ] && echo "$1" || echo "${2:-0}"; }
T_STATIC=0 K_STATIC=0 G_STATIC=0 T_GEO=0 G_GEO=0
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: ${DUR}s per server..." >&2
  T_STATIC=$(best "$T_STATIC" "$(perf "$TP" "$W/static.q")")
  K_STATIC=$(best "$K_STATIC" "$(perf "$KP" "$W/static.q")")
  G_STATIC=$(best "$G_STATIC" "$(perf "$GP" "$W/static.q")")
  T_GEO=$(best "$T_GEO" "$(perf "$TP" "$W/geo.q" $ECS)")
  G_GEO=$(best "$G_GEO" "$(perf "$GP" "$W/geo.q" $ECS)")
done

ratio() { python3 -c "print(f'{$1/$2:.2f}' if $2 else 'n/a')"; }
printf '\n%-28s %12s %12s %12s\n' "test (1 server thread)" "tenbin qps" "knot qps" "gdnsd qps"
printf '%-28s %12s %12s %12s\n' "static A" "$T_STATIC" "$K_STATIC" "$G_STATIC"
printf '%-28s %12s %12s %12s\n' "geo A + ECS /24" "$T_GEO" "-" "$G_GEO"
printf '\nratios: static tenbin/knot %s, tenbin/gdnsd %s; geo+ECS tenbin/gdnsd %s\n' \
  "$(ratio "$T_STATIC" "$K_STATIC")" "$(ratio "$T_STATIC" "$G_STATIC")" "$(ratio "$T_GEO" "$G_GEO")"
