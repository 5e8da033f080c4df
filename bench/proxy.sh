#!/usr/bin/env bash
# bench/proxy.sh: the proxy tier side by side with HAProxy and NGINX on loopback (their
# versions asked from their binaries and printed).
#
#   HTTP: wrk through tenbin, HAProxy (mode http and mode tcp) and NGINX (proxy_pass with
#         upstream keep-alive), round robin over the same NGINX static backends; req/s, p50,
#         p99 and tenbin's ratios.
#   TCP:  iperf3 through tenbin mode tcp (userspace copy and splice) and HAProxy mode tcp;
#         Gbit/s and the ratio.
#
# Peers come from Debian via scripts/install-deps. Everything binds 127.0.0.1 on free ports in
# a private temp dir; every process started here is killed on exit. Runs are bounded by
# DURATION / IPERF_SECS. Knobs (env): DURATION=10s CONNS=64 THREADS=2 BACKENDS=3 IPERF_SECS=5
# TENBIN_HTTP=auto|off (tenbin mode http via `tenbin run` when it serves it, else the runner),
# TENBIN_BIN=path to a release tenbin binary (default: built into the runner's target dir),
# PROXY_BENCH_TARGET=cargo target dir of the runner (default target/proxy-bench),
# TENBIN_THREADS=N worker threads of `tenbin run` (default: one per core).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-3}
IPERF_SECS=${IPERF_SECS:-5}
TENBIN_HTTP=${TENBIN_HTTP:-auto}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
for c in haproxy nginx wrk iperf3 ss curl; do
  command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$c" >/dev/null 2>&1 || { bash "$ROOT/scripts/install-deps"; break; }
done

BENCH_NAME=proxy
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
HA_V=$(haproxy -v 2>&1 | awk 'NR == 1 { sub(/-.*/, "", $3); print $3 }')
NG_V=$(nginx -v 2>&1 | sed 's|.*nginx/||')

# ---------------------------------------------------------------- backends: NGINX static
BACK_PORTS=()
for _ in $(seq 1 "$BACKENDS"); do BACK_PORTS+=("$(free_port)"); done
start_nginx_backends

IPERF_PORT=$(free_port)
start iperf3 iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
wait_port "$IPERF_PORT"

# ---------------------------------------------------------------- HAProxy 2.6
HA_HTTP=$(free_port); HA_TCP=$(free_port); HA_IPERF=$(free_port)
{
  echo "global"
  echo "  maxconn 4000"
  echo "  nbthread 2"
  echo "defaults"
  echo "  timeout connect 3s"
  echo "  timeout client 60s"
  echo "  timeout server 60s"
  echo "frontend http_in"
  echo "  mode http"
  echo "  bind 127.0.0.1:$HA_HTTP"
  echo "  option http-keep-alive"
  echo "  default_backend http_be"
  echo "backend http_be"
  echo "  mode http"
  echo "  balance roundrobin"
  echo "  http-reuse always"
  i=0; for p in "${BACK_PORTS[@]}"; do i=$((i + 1)); echo "  server b$i 127.0.0.1:$p"; done
  echo "frontend tcp_in"
  echo "  mode tcp"
  echo "  bind 127.0.0.1:$HA_TCP"
  echo "  default_backend tcp_be"
  echo "backend tcp_be"
  echo "  mode tcp"
  echo "  balance roundrobin"
  i=0; for p in "${BACK_PORTS[@]}"; do i=$((i + 1)); echo "  server b$i 127.0.0.1:$p"; done
  echo "listen iperf"
  echo "  mode tcp"
  echo "  bind 127.0.0.1:$HA_IPERF"
  echo "  server i 127.0.0.1:$IPERF_PORT"
} >"$WORK/haproxy.cfg"
start haproxy haproxy -db -f "$WORK/haproxy.cfg"

# ---------------------------------------------------------------- NGINX 1.22 as the proxy
NG_HTTP=$(free_port)
mkdir -p "$WORK/ngproxy"
{
  echo "worker_processes 2; daemon off; pid $WORK/ngproxy/nginx.pid; error_log $WORK/ngproxy/error.log;"
  echo "events { worker_connections 8192; }"
  echo "http { access_log off;"
  echo "  client_body_temp_path $WORK/ngproxy; proxy_temp_path $WORK/ngproxy;"
  echo "  fastcgi_temp_path $WORK/ngproxy; uwsgi_temp_path $WORK/ngproxy; scgi_temp_path $WORK/ngproxy;"
  echo "  upstream be {"
  for p in "${BACK_PORTS[@]}"; do echo "    server 127.0.0.1:$p;"; done
  echo "    keepalive 64;"
  echo "  }"
  echo "  server { listen 127.0.0.1:$NG_HTTP;"
  echo "    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
  echo "}"
} >"$WORK/ngproxy/nginx.conf"
start ngproxy nginx -p "$WORK/ngproxy" -c "$WORK/ngproxy/nginx.conf"

# ---------------------------------------------------------------- tenbin
TB_TCP=$(free_port); TB_SPLICE=$(free_port); TB_IPERF=$(free_port); TB_IPERF_SPLICE=$(free_port)
TB_HTTP=$(free_port)
servers_toml() { # pool name, ports...
  local pool=$1
  shift
  echo "[[pool]]"
  echo "name = \"$pool\""
  echo "algorithm = \"roundrobin\""
  local i=0
  for p in "$@"; do
    i=$((i + 1))
    echo "[[pool.server]]"
    echo "name = \"s$i\""
    echo "address = \"127.0.0.1:$p\""
  done
}
tcp_config() { # web port, iperf port
  {
    echo "[[frontend]]"; echo 'name = "web"'; echo "bind = [\"127.0.0.1:$1\"]"
    echo 'mode = "tcp"'; echo 'default_pool = "web"'
    echo "[[frontend]]"; echo 'name = "iperf"'; echo "bind = [\"127.0.0.1:$2\"]"
    echo 'mode = "tcp"'; echo 'default_pool = "iperf"'
    servers_toml web "${BACK_PORTS[@]}"
    servers_toml iperf "$IPERF_PORT"
  }
}
tcp_config "$TB_TCP" "$TB_IPERF" >"$WORK/tenbin-tcp.toml"
tcp_config "$TB_SPLICE" "$TB_IPERF_SPLICE" >"$WORK/tenbin-splice.toml"
{
  echo "[[frontend]]"; echo 'name = "web"'; echo "bind = [\"127.0.0.1:$TB_HTTP\"]"
  echo 'mode = "http"'; echo 'default_pool = "web"'
  servers_toml web "${BACK_PORTS[@]}"
} >"$WORK/tenbin-http.toml"

# Release builds go to their own target dir so they never wait on (or block) the workspace's.
# tenbin itself (`tenbin run`) serves the tcp and http rows; the small runner serves the
# splice rows (a knob the config file does not carry) and stands in if tenbin does not build.
RUNNER_TARGET=${PROXY_BENCH_TARGET:-"$ROOT/target/proxy-bench"}
if [ -n "${TENBIN_BIN:-}" ]; then
  TENBIN=$TENBIN_BIN
else
  log "building tenbin (release; the first build takes minutes)"
  TENBIN="$RUNNER_TARGET/release/tenbin"
  (cd "$ROOT" && CARGO_TARGET_DIR="$RUNNER_TARGET" cargo build --release -q -p tenbin) >"$WORK/build-tenbin.log" 2>&1 \
    || { log "tenbin did not build; using the runner: $(tail -n 3 "$WORK/build-tenbin.log")"; TENBIN=/nonexistent; }
fi
log "building the L4 runner (release)"
CARGO_TARGET_DIR="$RUNNER_TARGET" cargo build --release -q --manifest-path "$ROOT/bench/proxy-runner/Cargo.toml" >"$WORK/build-runner.log" 2>&1 \
  || { cat "$WORK/build-runner.log"; exit 1; }
RUNNER="$RUNNER_TARGET/release/tenbin-proxy-bench-runner"

# mode tcp: `tenbin run` when it serves L4 frontends, else the runner over the same entry point.
L4_VIA="runner"
if [ -x "$TENBIN" ]; then
  start tenbin-try "$TENBIN" run -c "$WORK/tenbin-tcp.toml"
  if wait_port "$TB_TCP" 2>/dev/null; then L4_VIA="tenbin run"; fi
fi
if [ "$L4_VIA" = runner ]; then
  start tenbin-tcp "$RUNNER" "$WORK/tenbin-tcp.toml"
fi
start tenbin-splice "$RUNNER" "$WORK/tenbin-splice.toml" --splice

# mode http: `tenbin run` when it serves it, else the runner over http::serve.
HTTP_OK=0
HTTP_VIA="runner"
if [ "$TENBIN_HTTP" != off ]; then
  if [ -x "$TENBIN" ]; then
    start tenbin-http-try "$TENBIN" run -c "$WORK/tenbin-http.toml"
    if wait_port "$TB_HTTP" 2>/dev/null && curl -fsS -m 2 "http://127.0.0.1:$TB_HTTP/" >/dev/null 2>&1; then
      HTTP_OK=1
      HTTP_VIA="tenbin run"
    fi
  fi
  if [ "$HTTP_OK" = 0 ]; then
    start tenbin-http "$RUNNER" "$WORK/tenbin-http.toml"
    if wait_port "$TB_HTTP" 2>/dev/null && curl -fsS -m 2 "http://127.0.0.1:$TB_HTTP/" >/dev/null 2>&1; then
      HTTP_OK=1
    else
      log "tenbin mode http did not come up: $(tail -n 2 "$WORK/tenbin-http.log" 2>/dev/null)"
    fi
  fi
fi

for p in "$HA_HTTP" "$HA_TCP" "$HA_IPERF" "$NG_HTTP" "$TB_TCP" "$TB_SPLICE" "$TB_IPERF" "$TB_IPERF_SPLICE"; do
  wait_port "$p" || { log "nothing listens on $p"; tail -n 5 "$WORK"/*.log; exit 1; }
done
for p in "$HA_HTTP" "$NG_HTTP" "$TB_TCP" "$TB_SPLICE"; do
  curl -fsS -m 2 "http://127.0.0.1:$p/" >/dev/null || { log "no HTTP answer through port $p"; exit 1; }
done

# ---------------------------------------------------------------- measure
to_ms() { # wrk latency token (e.g. 512.00us, 1.20ms, 2.00s) -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
    printf "%.3f", n }'
}
declare -A RPS P50 P99
run_wrk() { # label port
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2/" 2>&1)
  echo "$out" >"$WORK/wrk-$2.txt"
  RPS[$1]=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  P50[$1]=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
  P99[$1]=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  local errs
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ { print }')
  [ -z "$errs" ] || log "$1: $errs"
}
declare -A GBPS
run_iperf() { # label port
  local out
  out=$(iperf3 -c 127.0.0.1 -p "$2" -t "$IPERF_SECS" -f g 2>&1) || { GBPS[$1]="fail"; echo "$out" >&2; return; }
  GBPS[$1]=$(echo "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") v = $(i - 1) } END { print v }')
}


HTTP_ROWS=("direct (one nginx backend)|${BACK_PORTS[0]}" "haproxy $HA_V mode http|$HA_HTTP"
  "nginx $NG_V proxy_pass|$NG_HTTP" "haproxy $HA_V mode tcp|$HA_TCP"
  "tenbin mode tcp ($L4_VIA)|$TB_TCP" "tenbin mode tcp splice|$TB_SPLICE")
[ "$HTTP_OK" = 1 ] && HTTP_ROWS+=("tenbin mode http ($HTTP_VIA)|$TB_HTTP")
for row in "${HTTP_ROWS[@]}"; do
  log "wrk ${row%%|*}"
  run_wrk "${row%%|*}" "${row##*|}"
done
IPERF_ROWS=("direct|$IPERF_PORT" "haproxy $HA_V mode tcp|$HA_IPERF" "tenbin mode tcp ($L4_VIA)|$TB_IPERF"
  "tenbin mode tcp splice|$TB_IPERF_SPLICE")
for row in "${IPERF_ROWS[@]}"; do
  log "iperf3 ${row%%|*}"
  run_iperf "${row%%|*}" "${row##*|}"
done

# ---------------------------------------------------------------- report
echo
peer_versions haproxy nginx wrk iperf3
echo "HTTP: wrk -t$THREADS -c$CONNS -d$DURATION, $BACKENDS nginx static backends, round robin, $(nproc) cores"
printf '%-36s %12s %10s %10s\n' "target" "req/s" "p50 ms" "p99 ms"
for row in "${HTTP_ROWS[@]}"; do
  l=${row%%|*}
  printf '%-36s %12s %10s %10s\n' "$l" "${RPS[$l]}" "${P50[$l]}" "${P99[$l]}"
done
TB="tenbin mode tcp ($L4_VIA)"
echo
echo "tenbin mode tcp vs haproxy mode tcp: req/s x$(ratio "${RPS[$TB]}" "${RPS[haproxy $HA_V mode tcp]}"), p99 x$(ratio "${P99[$TB]}" "${P99[haproxy $HA_V mode tcp]}")"
echo "tenbin mode tcp splice vs haproxy mode tcp: req/s x$(ratio "${RPS[tenbin mode tcp splice]}" "${RPS[haproxy $HA_V mode tcp]}"), p99 x$(ratio "${P99[tenbin mode tcp splice]}" "${P99[haproxy $HA_V mode tcp]}")"
if [ "$HTTP_OK" = 1 ]; then
  TH="tenbin mode http ($HTTP_VIA)"
  echo "tenbin mode http vs haproxy mode http: req/s x$(ratio "${RPS[$TH]}" "${RPS[haproxy $HA_V mode http]}"), p99 x$(ratio "${P99[$TH]}" "${P99[haproxy $HA_V mode http]}")"
  echo "tenbin mode http vs nginx proxy_pass: req/s x$(ratio "${RPS[$TH]}" "${RPS[nginx $NG_V proxy_pass]}"), p99 x$(ratio "${P99[$TH]}" "${P99[nginx $NG_V proxy_pass]}")"
else
  echo "tenbin mode http: not measured (it did not come up)"
fi
echo
echo "TCP throughput: iperf3 -t $IPERF_SECS, one stream"
printf '%-36s %12s\n' "target" "Gbit/s"
for row in "${IPERF_ROWS[@]}"; do
  l=${row%%|*}
  printf '%-36s %12s\n' "$l" "${GBPS[$l]}"
done
echo
echo "tenbin mode tcp vs haproxy mode tcp: x$(ratio "${GBPS[$TB]}" "${GBPS[haproxy $HA_V mode tcp]}") (target >= 0.90)"
echo "tenbin mode tcp splice vs haproxy mode tcp: x$(ratio "${GBPS[tenbin mode tcp splice]}" "${GBPS[haproxy $HA_V mode tcp]}")"
