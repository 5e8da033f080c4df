#!/usr/bin/env bash
# DNS tier benchmark: dnsperf on loopback, one server thread each, side by side.
#   1. static A record:   tenbin vs Knot vs gdnsd
#   2. geo answer + ECS:  tenbin vs gdnsd (network map 10/8 -> fra, 172.16/12 -> nrt)
#   3. mixed queries:     tenbin vs Knot vs gdnsd; several names and types (A, AAAA with no
#                         data, SOA, NS, MX with no data) and one in four for names that do not exist
# Prints per server and run: qps, queries lost, the rcode mix, and queries per CPU-second of
# the server process (utime + stime from /proc/PID/stat before and after the run: dnsperf on
# one core can be the bottleneck, and then qps alone says little about the server). Then the
# ratios. Servers are pinned to CPU 0, dnsperf to CPU 1. Names the peers' versions.
# Usage: bench/dns.sh [seconds per run, default 10]   (ROUNDS=n, default 2, best qps of n)
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

cpu_ticks() { # pid: utime + stime of the whole process, in clock ticks
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
TCK=$(getconf CLK_TCK)

# Results of the best round per key (server/test): qps, lost, rcode mix, queries per CPU-second.
declare -A QPS LOST RCODES QCPU
perf() { # key pid port queryfile [extra dnsperf args...]
  local key=$1 pid=$2 port=$3 file=$4; shift 4
  local before after out qps done lost rcodes
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$DUR" -c 8 -q 256 -T 1 "$@" 2>&1)
  after=$(cpu_ticks "$pid")
  qps=$(awk '/Queries per second/ { printf "%d", $4 }' <<<"$out")
  done=$(awk '/Queries completed/ { print $3 }' <<<"$out")
  lost=$(awk '/Queries lost/ { print $3, $4 }' <<<"$out")
  rcodes=$(sed -n 's/^ *Response codes: *//p' <<<"$out")
  [ -n "$qps" ] || { echo "dns.sh: dnsperf printed no figures for $key:" >&2; echo "$out" >&2; exit 1; }
  if [ "$qps" -gt "${QPS[$key]:-0}" ]; then
    QPS[$key]=$qps LOST[$key]=$lost RCODES[$key]=$rcodes
    QCPU[$key]=$(awk -v n="$done" -v t=$((after - before)) -v hz="$TCK" \
      'BEGIN { if (t > 0) printf "%d", n / (t / hz); else print "n/a" }')
  fi
}

# shellcheck source=bench/versions.sh
source "$ROOT/bench/versions.sh"
echo "building tenbin (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p tenbin-dns --example serve)
TENBIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve"

# Query files.
for _ in $(seq 1 1000); do echo "static.example.test A"; done > "$W/static.q"
for _ in $(seq 1 1000); do echo "www.example.test A"; done > "$W/geo.q"
# Mixed: 3/4 existing names and types (NOERROR, some with no data), 1/4 NXDOMAIN.
for i in $(seq 1 125); do
  printf '%s\n' "static.example.test A" "ns1.example.test A" "example.test SOA" "example.test NS" \
    "static.example.test AAAA" "example.test MX" "nx$i.example.test A" "nx$i.example.test AAAA"
done > "$W/mixed.q"
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
PIDS+=($!); T_PID=$!

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
PIDS+=($!); K_PID=$!

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
PIDS+=($!); G_PID=$!

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
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: ${DUR}s per server and test..." >&2
  perf tenbin/static "$T_PID" "$TP" "$W/static.q"
  perf knot/static "$K_PID" "$KP" "$W/static.q"
  perf gdnsd/static "$G_PID" "$GP" "$W/static.q"
  perf tenbin/geo "$T_PID" "$TP" "$W/geo.q" $ECS
  perf gdnsd/geo "$G_PID" "$GP" "$W/geo.q" $ECS
  perf tenbin/mixed "$T_PID" "$TP" "$W/mixed.q"
  perf knot/mixed "$K_PID" "$KP" "$W/mixed.q"
  perf gdnsd/mixed "$G_PID" "$GP" "$W/mixed.q"
done

ratio() { python3 -c "print(f'{$1/$2:.2f}' if $2 else 'n/a')"; }
echo
peer_versions knotd gdnsd dnsperf
echo "dnsperf -c 8 -q 256 -T 1 on CPU 1, ${DUR}s per run, best qps of $ROUNDS; each server one thread on CPU 0"
printf '%-16s %-7s %9s %12s %14s  %s\n' "test" "server" "qps" "q/CPU-s" "lost" "rcodes"
for key in tenbin/static knot/static gdnsd/static tenbin/geo gdnsd/geo tenbin/mixed knot/mixed gdnsd/mixed; do
  case ${key#*/} in static) t="static A" ;; geo) t="geo A + ECS /24" ;; mixed) t="mixed, 1/4 NX" ;; esac
  printf '%-16s %-7s %9s %12s %14s  %s\n' "$t" "${key%/*}" "${QPS[$key]}" "${QCPU[$key]}" "${LOST[$key]}" "${RCODES[$key]}"
done
printf '\nratios (qps): static tenbin/knot %s, tenbin/gdnsd %s; geo+ECS tenbin/gdnsd %s; mixed tenbin/knot %s, tenbin/gdnsd %s\n' \
  "$(ratio "${QPS[tenbin/static]}" "${QPS[knot/static]}")" "$(ratio "${QPS[tenbin/static]}" "${QPS[gdnsd/static]}")" \
  "$(ratio "${QPS[tenbin/geo]}" "${QPS[gdnsd/geo]}")" \
  "$(ratio "${QPS[tenbin/mixed]}" "${QPS[knot/mixed]}")" "$(ratio "${QPS[tenbin/mixed]}" "${QPS[gdnsd/mixed]}")"
q() { [ "${QCPU[$1]}" = n/a ] && echo 0 || echo "${QCPU[$1]}"; }
printf 'ratios (queries per CPU-second): static tenbin/knot %s, tenbin/gdnsd %s; geo+ECS tenbin/gdnsd %s; mixed tenbin/knot %s, tenbin/gdnsd %s\n' \
  "$(ratio "$(q tenbin/static)" "$(q knot/static)")" "$(ratio "$(q tenbin/static)" "$(q gdnsd/static)")" \
  "$(ratio "$(q tenbin/geo)" "$(q gdnsd/geo)")" \
  "$(ratio "$(q tenbin/mixed)" "$(q knot/mixed)")" "$(ratio "$(q tenbin/mixed)" "$(q gdnsd/mixed)")"
