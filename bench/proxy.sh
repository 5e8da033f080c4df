#!/usr/bin/env bash
# bench/proxy.sh: the proxy tier against HAProxy at equal cores, on loopback, in interleaved
# rounds (each figure tenbin then HAProxy in odd rounds, HAProxy then tenbin in even ones) so
# that load from other processes on a shared host lands on both alike; per figure the median
# and the spread (min-max) over the rounds.
#
#   http: wrk keep-alive through tenbin mode http and HAProxy mode http (keep-alive and
#         connection reuse to the backends on both, the same X-Forwarded-* headers, the same
#         timeouts, no logging), round robin over NGINX static backends: req/s, p50, p99,
#         and the proxy's CPU time (user + system, /proc) per request.
#   tcp:  the same wrk load through mode tcp on both (no splice on either): the same figures.
#   tcp single stream: one iperf3 stream through mode tcp on both, then through tenbin's
#         `splice = true` frontend and HAProxy with `option splice-auto`: Gbit/s. On loopback
#         splice-auto leaves one iperf3 stream to recv/send (strace shows no splice call), so
#         a last row puts the same tenbin frontend against HAProxy forced to splice
#         (`option splice-request` and `splice-response`): splice against splice.
# For each worker count in THREADS_LIST: tenbin `run --threads N`, HAProxy `nbthread N`, both
# pinned with taskset to the same PROXY_CPUS, and (PIN=1) each worker thread to its own CPU of
# them: tenbin `--pin-workers`, HAProxy `cpu-map auto:1/1-N`. wrk, iperf3 and the backends are
# pinned to LOAD_CPUS.
# Only 2xx responses count: a wrk run with any non-2xx/3xx response or socket error is a
# failed row (printed "fail", and the script exits 1 at the end).
#
# Peers come from Debian via scripts/install-deps; their versions are read from the binaries.
# Everything binds 127.0.0.1 on free ports in a private temp dir; every process started here
# is killed on exit. Knobs (env), defaults in brackets:
#   ROUNDS [3] DURATION [5s] IPERF_SECS [3] CONNS [64] WRK_THREADS [1] BACKENDS [3]
#   THREADS_LIST ["1 2"]; PROXY_CPUS_1 [1] PROXY_CPUS_2 [0,1] (PROXY_CPUS_N for other N);
#   LOAD_CPUS [0]; NGINX_WORKERS [one per LOAD_CPUS CPU]; BENCH_QUICK=1 (2 rounds of 2s, iperf 1s: for iterating, not for figures);
#   TENBIN_BIN=path to a release tenbin (default: built into PROXY_BENCH_TARGET
#   [target/proxy-bench]); SPLICE=0 skips the splice rows; PIN [1] (0: threads float within
#   PROXY_CPUS); MAX_STEAL [unset]: a wrk run during which the host stole more than this
#   percentage of the CPUs (steal time, /proc/stat) is run again, at most STEAL_TRIES [3] runs
#   in all. Each wrk figure's steal is reported either way: on a busy host it sets the p99.
set -euo pipefail

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-2}; DURATION=${DURATION:-2s}; IPERF_SECS=${IPERF_SECS:-1}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
IPERF_SECS=${IPERF_SECS:-3}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
BACKENDS=${BACKENDS:-3}
THREADS_LIST=${THREADS_LIST:-"1 2"}
LOAD_CPUS=${LOAD_CPUS:-0}
SPLICE=${SPLICE:-1}
MAX_STEAL=${MAX_STEAL:-}
STEAL_TRIES=${STEAL_TRIES:-3}
PROXY_CPUS_1=${PROXY_CPUS_1:-1}
PROXY_CPUS_2=${PROXY_CPUS_2:-0,1}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH="$PATH:/usr/sbin:/sbin"
for c in haproxy nginx wrk iperf3 ss curl taskset; do
  command -v "$c" >/dev/null 2>&1 || { bash "$ROOT/scripts/install-deps"; break; }
done

BENCH_NAME=proxy
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
FAILED=0
pin() { taskset -c "$@"; } # cpus command...

# ---------------------------------------------------------------- builds
RUNNER_TARGET=${PROXY_BENCH_TARGET:-"$ROOT/target/proxy-bench"}
if [ -n "${TENBIN_BIN:-}" ]; then
  TENBIN=$TENBIN_BIN
else
  log "building tenbin (release; the first build takes minutes)"
  TENBIN="$RUNNER_TARGET/release/tenbin"
  (cd "$ROOT" && CARGO_TARGET_DIR="$RUNNER_TARGET" cargo build --release -q -p tenbin) >"$WORK/build-tenbin.log" 2>&1 \
    || { cat "$WORK/build-tenbin.log"; exit 1; }
fi

# ---------------------------------------------------------------- backends: NGINX static
BACK_PORTS=()
for _ in $(seq 1 "$BACKENDS"); do BACK_PORTS+=("$(free_port)"); done
# One worker per load CPU (lib.sh: cpu_count); NGINX_WORKERS overrides.
NGINX_WORKERS=${NGINX_WORKERS:-$(cpu_count "$LOAD_CPUS")} NGINX_CONNECTIONS=8192 NGINX_CPUS=$LOAD_CPUS start_nginx_backends
IPERF_PORT=$(free_port)
start iperf3 taskset -c "$LOAD_CPUS" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
wait_port "$IPERF_PORT"

# ---------------------------------------------------------------- proxy configs
HA_HTTP=$(free_port); HA_TCP=$(free_port); HA_IPERF=$(free_port); HA_SPLICE=$(free_port)
HA_FORCED=$(free_port)
TB_HTTP=$(free_port); TB_TCP=$(free_port); TB_IPERF=$(free_port); TB_SPLICE=$(free_port)
haproxy_cfg() { # nbthread
  echo "global"
  echo "  maxconn 4000"
  echo "  nbthread $1"
  [ "$PIN" = 1 ] && echo "  cpu-map auto:1/1-$1 $CPUS"
  echo "defaults"
  # tenbin's defaults: connect 3s, header 10s, idle 60s, server 30s, queue 5s, tcp idle 300s.
  echo "  timeout connect 3s"
  echo "  timeout client 60s"
  echo "  timeout server 30s"
  echo "  timeout http-request 10s"
  echo "  timeout http-keep-alive 60s"
  echo "  timeout queue 5s"
  echo "  retries 2"
  echo "frontend http_in"
  echo "  mode http"
  echo "  bind 127.0.0.1:$HA_HTTP"
  echo "  option http-keep-alive"
  # tenbin's default `forwarded = \"x-forwarded\"`: X-Forwarded-For, -Proto and -Host.
  echo "  option forwardfor"
  echo "  http-request set-header X-Forwarded-Proto http"
  echo "  http-request set-header X-Forwarded-Host %[req.hdr(host)]"
  echo "  default_backend http_be"
  echo "backend http_be"
  echo "  mode http"
  echo "  balance roundrobin"
  echo "  http-reuse always"
  i=0; for p in "${BACK_PORTS[@]}"; do i=$((i + 1)); echo "  server b$i 127.0.0.1:$p"; done
  echo "listen tcp_in"
  echo "  mode tcp"
  echo "  timeout client 300s"
  echo "  timeout server 300s"
  echo "  bind 127.0.0.1:$HA_TCP"
  echo "  balance roundrobin"
  i=0; for p in "${BACK_PORTS[@]}"; do i=$((i + 1)); echo "  server b$i 127.0.0.1:$p"; done
  echo "listen iperf"
  echo "  mode tcp"
  echo "  timeout client 300s"
  echo "  timeout server 300s"
  echo "  bind 127.0.0.1:$HA_IPERF"
  echo "  server i 127.0.0.1:$IPERF_PORT"
  echo "listen iperf_splice"
  echo "  mode tcp"
  echo "  option splice-auto"
  echo "  timeout client 300s"
  echo "  timeout server 300s"
  echo "  bind 127.0.0.1:$HA_SPLICE"
  echo "  server i 127.0.0.1:$IPERF_PORT"
  echo "listen iperf_splice_forced"
  echo "  mode tcp"
  echo "  option splice-request"
  echo "  option splice-response"
  echo "  timeout client 300s"
  echo "  timeout server 300s"
  echo "  bind 127.0.0.1:$HA_FORCED"
  echo "  server i 127.0.0.1:$IPERF_PORT"
}
servers_toml() { # pool name, ports...
  local pool=$1 i=0 p
  shift
  echo "[[pool]]"; echo "name = \"$pool\""; echo 'algorithm = "roundrobin"'
  for p in "$@"; do
    i=$((i + 1))
    echo "[[pool.server]]"; echo "name = \"s$i\""; echo "address = \"127.0.0.1:$p\""
  done
}
{
  echo "[[frontend]]"; echo 'name = "web"'; echo "bind = [\"127.0.0.1:$TB_HTTP\"]"
  echo 'mode = "http"'; echo 'default_pool = "web"'
  echo "[[frontend]]"; echo 'name = "tcp"'; echo "bind = [\"127.0.0.1:$TB_TCP\"]"
  echo 'mode = "tcp"'; echo 'default_pool = "web"'
  echo "[[frontend]]"; echo 'name = "iperf"'; echo "bind = [\"127.0.0.1:$TB_IPERF\"]"
  echo 'mode = "tcp"'; echo 'default_pool = "iperf"'
  # splice(2) relay: the frontend's `splice = true`, HAProxy's `option splice-auto`.
  echo "[[frontend]]"; echo 'name = "iperf_splice"'; echo "bind = [\"127.0.0.1:$TB_SPLICE\"]"
  echo 'mode = "tcp"'; echo 'default_pool = "iperf"'; echo 'splice = true'
  servers_toml web "${BACK_PORTS[@]}"
  servers_toml iperf "$IPERF_PORT"
} >"$WORK/tenbin.toml"

# ---------------------------------------------------------------- measuring
declare -A VAL # "figure|threads|peer" -> space-separated values, one per round (lib.sh: add)
run_wrk() { # key port: req/s of 2xx responses, p50 and p99 (ms) and the proxy's CPU per request
  local out rps p99 p50 errs pid=${PEER_PID[${1##*|}]} t0 t1 s0 s1 w0 w1 steal try=1
  while :; do
    t0=$(cpu_ticks "$pid"); s0=$(steal_ticks); w0=$(now_s)
    out=$(pin "$LOAD_CPUS" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2/" 2>&1) || true
    t1=$(cpu_ticks "$pid"); s1=$(steal_ticks); w1=$(now_s)
    steal=$(steal_pct $((s1 - s0)) "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')")
    echo "$out" >>"$WORK/wrk.log"
    # MAX_STEAL: a run during which the host took more of the CPUs is run again (the same
    # rule for every peer), at most STEAL_TRIES times in all; the last run counts.
    if [ -n "$MAX_STEAL" ] && [ "$try" -lt "$STEAL_TRIES" ] &&
      awk -v a="$steal" -v m="$MAX_STEAL" 'BEGIN { exit !(a > m) }'; then
      log "$1: the host stole ${steal}% of the CPUs during the run; running it again"
      try=$((try + 1))
      continue
    fi
    break
  done
  add "steal|$1" "$steal"
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/')
  add "http-cpu|$1" "$(us_per_request $((t1 - t0)) "$out")"
  rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  if [ -n "$errs" ] || [ -z "$rps" ]; then
    log "$1: failed: ${errs:-no result}"
    rps=fail; p99=fail; p50=fail; FAILED=1
  fi
  add "http-rps|$1" "$rps"; add "http-p50|$1" "$p50"; add "http-p99|$1" "$p99"
}
run_iperf() { # key port
  local out g
  out=$(pin "$LOAD_CPUS" iperf3 -c 127.0.0.1 -p "$2" -t "$IPERF_SECS" -f g 2>&1) || true
  g=$(echo "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") v = $(i - 1) } END { print v }')
  [ -n "$g" ] || { log "$1: iperf3 failed: $(echo "$out" | tail -n 1)"; g=fail; FAILED=1; }
  add "gbps|$1" "$g"
}
check_http() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$1/"; }

# ---------------------------------------------------------------- per worker count
declare -A PEER_PID PORT=(
  [http|tenbin]=$TB_HTTP [http|haproxy]=$HA_HTTP [tcp|tenbin]=$TB_TCP [tcp|haproxy]=$HA_TCP
  [stream|tenbin]=$TB_IPERF [stream|haproxy]=$HA_IPERF [splice|tenbin]=$TB_SPLICE [splice|haproxy]=$HA_SPLICE
  [forced|tenbin]=$TB_SPLICE [forced|haproxy]=$HA_FORCED
)
for T in $THREADS_LIST; do
  start_proxies "$T"
  PEER_PID[haproxy]=$HA_PID; PEER_PID[tenbin]=$TB_PID
  for p in "$HA_HTTP" "$HA_TCP" "$HA_IPERF" "$HA_SPLICE" "$HA_FORCED" "$TB_HTTP" "$TB_TCP" "$TB_IPERF" "$TB_SPLICE"; do
    wait_port "$p" || { log "nothing listens on $p"; tail -n 5 "$WORK"/*.log; exit 1; }
  done
  for p in "$HA_HTTP" "$TB_HTTP" "$HA_TCP" "$TB_TCP"; do
    check_http "$p" || { log "no HTTP answer through port $p"; tail -n 5 "$WORK"/*.log; exit 1; }
  done
  # Warm-up: connections, pools and caches on both, not measured.
  for p in "$TB_HTTP" "$HA_HTTP"; do
    pin "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$p/" >/dev/null 2>&1 || true
  done
  for r in $(seq 1 "$ROUNDS"); do
    log "threads $T round $r/$ROUNDS"
    for m in http tcp; do
      for peer in $(turns "$r"); do run_wrk "$m|$T|$peer" "${PORT[$m|$peer]}"; done
    done
    for m in stream splice forced; do
      [ "$m" != stream ] && [ "$SPLICE" != 1 ] && continue
      for peer in $(turns "$r"); do run_iperf "$m|$T|$peer" "${PORT[$m|$peer]}"; done
    done
  done
  for p in $HA_PID $TB_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  # The next worker count binds the same ports.
  for p in "$HA_HTTP" "$TB_HTTP" "$TB_SPLICE"; do
    for _ in $(seq 1 50); do [ -z "$(ss -Htln "( sport = :$p )")" ] && break; sleep 0.1; done
  done
done

# ---------------------------------------------------------------- report
echo
peer_versions haproxy nginx wrk iperf3 taskset
echo "tenbin: $("$TENBIN" version 2>/dev/null | head -n 1); $(nproc) cores; proxies on PROXY_CPUS (1 thread: $PROXY_CPUS_1, 2 threads: $PROXY_CPUS_2), wrk/iperf3/backends on $LOAD_CPUS"
echo "wrk -t$WRK_THREADS -c$CONNS -d$DURATION keep-alive, $BACKENDS NGINX static backends, round robin; iperf3 -t $IPERF_SECS one stream; $ROUNDS interleaved rounds; median [min-max]"
printf '\n%-8s %-22s %-30s %-30s %s\n' threads figure tenbin haproxy "tenbin/haproxy"
for T in $THREADS_LIST; do
  for m in http tcp; do
    for f in http-rps http-p50 http-p99 http-cpu; do
      label=${f#http-}; [ "$label" = cpu ] && label="cpu us/req"
      printf '%-8s %-22s %-30s %-30s %s\n' "$T" "$m $label" "$(fmt "$f|$m|$T|tenbin")" "$(fmt "$f|$m|$T|haproxy")" "$(rfmt "$f|$m|$T")"
    done
    printf '%-8s %-22s %-30s %-30s %s\n' "$T" "$m host steal %" "$(fmt "steal|$m|$T|tenbin")" "$(fmt "steal|$m|$T|haproxy")" "-"
  done
  for m in stream splice forced; do
    [ "$m" != stream ] && [ "$SPLICE" != 1 ] && continue
    label="$m Gbit/s"; [ "$m" = forced ] && label="splice-forced Gbit/s"
    printf '%-8s %-22s %-30s %-30s %s\n' "$T" "$label" "$(fmt "gbps|$m|$T|tenbin")" "$(fmt "gbps|$m|$T|haproxy")" "$(rfmt "gbps|$m|$T")"
  done
done
echo
echo "targets: http req/s >= 1.0 and p99 <= 1.0 (x of HAProxy), tcp req/s >= 1.0, tcp stream >= 0.95"
[ "$FAILED" = 0 ] || { log "some runs failed (non-2xx responses, socket errors or no result): see above"; exit 1; }
