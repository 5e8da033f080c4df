#!/usr/bin/env bash
# The client-visible outage of a failover, tenbin vs keepalived + HAProxy (Debian), side by
# side in one run. The VRRP lab of LABS.md (a bridge, nodes a and b, client c, in network
# namespaces of this run): each node runs a backend on 127.0.0.1:8081 and either
#   tenbin:     `tenbin run` with [vrrp] and an HTTP frontend on :80, or
#   keepalived: keepalived (VRRPv3) and HAProxy (mode http, :80),
# a with priority 200 (master), b with 100. The client sends one GET to the VIP every 5 ms,
# each on a new connection with a 100 ms timeout, whether or not the previous one answered;
# the outage is the longest time between two successive successful requests. Then the
# master fails:
#   kill -9:  SIGKILL to tenbin run (its VIP guard lives on: it removes the VIP and sends
#             the priority 0 advert) / to keepalived (both processes) and HAProxy
#   graceful: SIGTERM to tenbin run / SIGTERM to keepalived, then HAProxy's soft stop
# at 1 s and 0.1 s advertisements, ROUNDS times each (default 3); the median is printed,
# and tenbin / keepalived as a ratio. A round whose last answer did not come from b is
# marked (the VIP did not move). Root only.
#
#   bench/failover.sh                    # builds tenbin --release
#   TENBIN_BIN=target/debug/tenbin ROUNDS=5 INTERVALS="100" bench/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_NAME=failover
# shellcheck source=bench/lib.sh
source bench/lib.sh

[ "$(id -u)" -eq 0 ] || { echo "failover: needs root (network namespaces)" >&2; exit 1; }
for t in ip keepalived haproxy python3; do
  command -v "$t" >/dev/null || { echo "failover: $t missing (scripts/install-deps)" >&2; exit 1; }
done
ROUNDS=${ROUNDS:-3}
CLIENT="$ROOT/bench/failover-client.py"
if [ -z "${TENBIN_BIN:-}" ]; then
  log "building tenbin --release"
  cargo build --release -q -p tenbin
  TENBIN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tenbin"
fi
TENBIN_BIN=$(realpath "$TENBIN_BIN")

P="fo$(($$ % 100000))"
VIP=10.77.0.100
ns() { echo "$P-$1"; }
teardown() { # also ends whatever still runs inside the namespaces
  local h
  for h in a b c sw; do
    ip netns pids "$(ns $h)" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$(ns $h)" 2>/dev/null || true
  done
}
trap 'cleanup; teardown' EXIT INT TERM

teardown
ip netns add "$(ns sw)"
ip -n "$(ns sw)" link add br0 type bridge
ip -n "$(ns sw)" link set br0 up
n=1
for h in a b c; do
  ip netns add "$(ns $h)"
  ip link add "$P-$h" type veth peer name "port-$h" netns "$(ns sw)"
  ip link set "$P-$h" netns "$(ns $h)"
  ip -n "$(ns $h)" link set "$P-$h" name eth0
  ip -n "$(ns sw)" link set "port-$h" master br0 up
  ip -n "$(ns $h)" link set lo up
  ip -n "$(ns $h)" addr add "10.77.0.$n/24" dev eth0
  ip -n "$(ns $h)" link set eth0 up
  n=$((n + 1))
done
for h in a b; do
  start "backend-$h" ip netns exec "$(ns $h)" python3 "$CLIENT" serve 8081 "node-$h"
done

cat >"$WORK/notify.sh" <<EOF
#!/bin/sh
echo "\$3" > "$WORK/state-\$NODE"
EOF
chmod +x "$WORK/notify.sh"

tenbin_conf() { # priority interval
  cat <<EOF
[[frontend]]
name = "web"
bind = ["0.0.0.0:80"]
default_pool = "web"

[[pool]]
name = "web"
[[pool.server]]
name = "local"
address = "127.0.0.1:8081"

[vrrp]
notify = "$WORK/notify.sh"
[[vrrp.instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = $1
interval = "$2"
vips = ["$VIP/24"]
vip_lifetime = "1s"
probe = ["10.77.0.3"]
EOF
}

keepalived_conf() { # node priority advert_int
  cat <<EOF
global_defs {
  vrrp_version 3
  script_user root
}
vrrp_instance V {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority $2
  advert_int $3
  virtual_ipaddress {
    $VIP/24
  }
  notify "/usr/bin/env NODE=$1 $WORK/notify.sh"
}
EOF
}

cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 2000
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend web
  bind :80
  default_backend web
backend web
  server local 127.0.0.1:8081
EOF

# Per node: the pids to kill (main first).
declare -A MAIN HAPROXY
up() { # stack node priority interval(ms)
  local stack=$1 h=$2 prio=$3 ms=$4
  rm -f "$WORK/state-$h"
  if [ "$stack" = tenbin ]; then
    tenbin_conf "$prio" "${ms}ms" >"$WORK/$h.toml"
    ip netns exec "$(ns $h)" env NODE="$h" NO_COLOR=1 "$TENBIN_BIN" run -c "$WORK/$h.toml" \
      >"$WORK/$h-tenbin.log" 2>&1 &
    MAIN[$h]=$!
  else
    keepalived_conf "$h" "$prio" "$(awk -v m="$ms" 'BEGIN { printf "%g", m / 1000 }')" \
      >"$WORK/$h-keepalived.conf"
    ip netns exec "$(ns $h)" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/$h-haproxy.log" 2>&1 &
    HAPROXY[$h]=$!
    ip netns exec "$(ns $h)" keepalived --vrrp -n -l -D -f "$WORK/$h-keepalived.conf" \
      -p "$WORK/$h-k.pid" -r "$WORK/$h-kv.pid" -c "$WORK/$h-kc.pid" -i "$P" \
      >"$WORK/$h-keepalived.log" 2>&1 &
    MAIN[$h]=$!
  fi
}

wait_state() { # node state: at most ~15 s
  for _ in $(seq 1 300); do
    [ "$(cat "$WORK/state-$1" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.05
  done
  log "$1 never reached $2"
  return 1
}

pids_of() { # node: every process of its stack, keepalived's VRRP child first
  local h=$1
  cat "$WORK/$h-kv.pid" 2>/dev/null || true
  echo "${HAPROXY[$h]:-}" "${MAIN[$h]:-}"
}

down() { # node signal...: stop node h's stack
  local h=$1 p
  for p in $(pids_of "$h"); do kill -KILL "$p" 2>/dev/null || true; done
  for p in $(pids_of "$h"); do wait "$p" 2>/dev/null || true; done
  # keepalived leaves its VIP behind when killed; tenbin's guard removes it.
  ip -n "$(ns $h)" addr del "$VIP/24" dev eth0 2>/dev/null || true
  rm -f "$WORK/$h-kv.pid" "$WORK/$h-k.pid" "$WORK/$h-kc.pid"
  MAIN[$h]= HAPROXY[$h]=
}

fail() { # stack event: the master (a) fails
  local stack=$1 event=$2
  if [ "$event" = kill9 ]; then
    # One kill(1) for all, VRRP child first: killed alone, keepalived's parent would
    # respawn it, and its parent killed first makes the child resign (priority 0) as on a
    # graceful stop. tenbin's VIP guard is not killed: it is how tenbin meets a crash.
    # shellcheck disable=SC2046
    kill -KILL $(pids_of a) 2>/dev/null || true
  elif [ "$stack" = tenbin ]; then
    kill -TERM "${MAIN[a]}"
    wait "${MAIN[a]}" 2>/dev/null || true
  else
    kill -TERM "${MAIN[a]}"
    wait "${MAIN[a]}" 2>/dev/null || true
    kill -USR1 "${HAPROXY[a]}" 2>/dev/null || true
  fi
}

round() { # stack event interval(ms): prints the outage in ms ("!" appended: VIP did not move)
  local stack=$1 event=$2 ms=$3 secs out
  up "$stack" a 200 "$ms"
  wait_state a MASTER
  up "$stack" b 100 "$ms"
  wait_state b BACKUP
  rm -f "$WORK/ready"
  # Long enough for the slowest takeover (kill -9 at 1 s adverts: 3.6 s) and some after.
  secs=$(awk -v m="$ms" 'BEGIN { printf "%.1f", 0.5 + m * 0.006 }')
  ip netns exec "$(ns c)" python3 "$CLIENT" "$VIP" 80 5 100 "$secs" "$WORK/ready" \
    >"$WORK/client.out" 2>&1 &
  local client=$!
  for _ in $(seq 1 300); do [ -e "$WORK/ready" ] && break; sleep 0.05; done
  sleep 0.3
  fail "$stack" "$event"
  wait "$client" || true
  out=$(cat "$WORK/client.out")
  down a
  down b
  # LOGS=DIR keeps every round's daemon logs there.
  if [ -n "${LOGS:-}" ]; then
    local d="$LOGS/$stack-$event-${ms}ms-$(date +%s%N)"
    mkdir -p "$d" && cp "$WORK"/*.log "$WORK/client.out" "$d/" 2>/dev/null || true
  fi
  local outage=${out#*outage_ms=}
  outage=${outage%% *}
  if [[ "$out" != *"answered_by=node-b"* ]]; then
    log "$stack $event ${ms}ms: $out"
    outage="$outage!"
  fi
  echo "$outage"
}

median() { tr ' ' '\n' | grep -v '^$' | tr -d '!' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

peer_versions keepalived haproxy
echo "failover: client GET every 5 ms (100 ms timeout) to the VIP; outage = longest gap"
echo "between successful requests, median of $ROUNDS rounds (ms; every round in brackets)"
printf "%-10s %-9s %-22s %-22s %s\n" ADVERTS EVENT TENBIN KEEPALIVED+HAPROXY RATIO
for ms in ${INTERVALS:-1000 100}; do
  for event in kill9 graceful; do
    t=() k=()
    for _ in $(seq 1 "$ROUNDS"); do
      t+=("$(round tenbin "$event" "$ms")")
      k+=("$(round keepalived "$event" "$ms")")
    done
    tm=$(echo "${t[*]}" | median)
    km=$(echo "${k[*]}" | median)
    printf "%-10s %-9s %-22s %-22s %s\n" "${ms}ms" "$event" "$tm [${t[*]}]" "$km [${k[*]}]" \
      "$(ratio "$tm" "$km")"
  done
done
