# Shared by the bench/*.sh scripts (source it; set BENCH_NAME first): a work directory and
# background processes cleaned up on exit, free loopback ports, and small helpers.
# shellcheck shell=bash
# shellcheck source=bench/versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

# Pin each proxy's worker threads one per CPU (start_proxies, the callers' haproxy_cfg).
PIN=${PIN:-1}
WORK=$(mktemp -d "/tmp/tenbin-${BENCH_NAME:-bench}-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

log() { echo "bench: $*" >&2; }

# A free loopback port: random, then checked against listening sockets and ports handed out.
USED=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % 22000)) # below the ephemeral range (32768+)
    [[ "$USED" == *" $p "* ]] && continue
    if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
      USED="$USED$p "
      echo "$p"
      return
    fi
  done
  echo "no free port" >&2
  exit 1
}

wait_port() { # port: until something accepts on it (at most ~10 s)
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start() { # name command...: background, logs in $WORK/name.log
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}

# CPU time a process (all its threads) has used so far, user + system, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# On a virtual machine the host can take the CPUs away for milliseconds at a time (steal time):
# every request in flight then waits, and on a busy host that, not the proxy, sets the p99.
# steal_ticks: ticks stolen so far, all CPUs together; steal_pct TICKS SECONDS: their share of
# all CPUs' time over SECONDS of wall time, in percent.
steal_ticks() { awk '$1 == "cpu" { print $9 + 0 }' /proc/stat; }
steal_pct() {
  awk -v t="$1" -v s="$2" -v n="$(nproc)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (s <= 0) s = 1; printf "%.1f", 100 * t / (s * n * hz) }'
}
now_s() { date +%s.%N; }
CLK_TCK=$(getconf CLK_TCK)
# us_per_request TICKS WRK_OUTPUT: microseconds of CPU per request wrk reports it made.
us_per_request() {
  local n
  n=$(awk '/ requests in / { print $1 }' <<<"$2")
  awk -v t="$1" -v n="$n" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "fail" }'
}
# The peers in round R's order: tenbin first in odd rounds, HAProxy first in even ones, so
# neither always runs right after the other (ABBA).
turns() { if (($1 % 2)); then echo tenbin haproxy; else echo haproxy tenbin; fi; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# NGINX static backends, one per port in BACK_PORTS (set by the caller), each answering
# "backend N"; started in the background and waited for. NGINX_CONNECTIONS: its
# worker_connections (default 4096); NGINX_WORKERS: worker_processes (default 1); NGINX_CPUS:
# pin it with taskset to these CPUs (default: not pinned).
# One NGINX worker per CPU it may run on (NGINX's `worker_processes auto` advice); the proxy
# benches pin the backends to LOAD_CPUS, one CPU by default. Two workers on one CPU add no
# capacity, only an accept race over each proxy's backend connections that the proxy's
# connect timing decides: with wrk -c64 through mode tcp, 61 or more of HAProxy's 64 landed
# on one worker in 4 of 7 runs, tenbin's in 1 of 7, and such a run did 53.6-64.9k req/s
# against 48.9-59.4k split (fewer sleeping workers for the proxy to wake). In 10 rounds the
# tcp ratio's spread was x0.92-1.15 with two workers and x0.96-1.07 with one.
cpu_list() { # a taskset CPU list (0,2-3) -> its CPUs, one word each (0 2 3)
  local part
  for part in ${1//,/ }; do
    if [[ $part == *-* ]]; then seq -s ' ' "${part%-*}" "${part#*-}"; else echo "$part"; fi
  done | tr '\n' ' ' | sed 's/ *$//'
}
cpu_count() { # a taskset CPU list -> how many CPUs
  local cpus
  read -r -a cpus <<<"$(cpu_list "$1")"
  echo "${#cpus[@]}"
}
start_nginx_backends() {
  mkdir -p "$WORK/backends"
  {
    echo "worker_processes ${NGINX_WORKERS:-1}; daemon off; pid $WORK/backends/nginx.pid; error_log $WORK/backends/error.log;"
    echo "events { worker_connections ${NGINX_CONNECTIONS:-4096}; }"
    # Connections the proxies reuse are never recycled in the middle of a run.
    echo "http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;"
    echo "  client_body_temp_path $WORK/backends; proxy_temp_path $WORK/backends;"
    echo "  fastcgi_temp_path $WORK/backends; uwsgi_temp_path $WORK/backends; scgi_temp_path $WORK/backends;"
    local i=0 p
    for p in "${BACK_PORTS[@]}"; do
      i=$((i + 1))
      echo "  server { listen 127.0.0.1:$p; location / { default_type text/plain; return 200 \"backend $i\\n\"; } }"
    done
    echo "}"
  } >"$WORK/backends/nginx.conf"
  if [ -n "${NGINX_CPUS:-}" ]; then
    start backends taskset -c "$NGINX_CPUS" nginx -p "$WORK/backends" -c "$WORK/backends/nginx.conf"
  else
    start backends nginx -p "$WORK/backends" -c "$WORK/backends/nginx.conf"
  fi
  for p in "${BACK_PORTS[@]}"; do wait_port "$p" || { log "backend $p did not start"; cat "$WORK/backends.log"; exit 1; }; done
}

# stats VALUE...: "median min max" of numbers (an empty or "fail" value makes it "fail").
stats() {
  printf '%s\n' "$@" | awk '
    /^[0-9.]+$/ { v[n++] = $1; next } { bad = 1 }
    END {
      if (bad || n == 0) { print "fail fail fail"; exit }
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      m = (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
      printf "%s %s %s\n", m, v[0], v[n - 1] }'
}

to_ms() { # wrk latency token (512.00us, 1.20ms, 2.00s) -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
    printf "%.3f", n }'
}
# Records one round's value of "figure|threads|peer" in the caller's `VAL`.
add() { VAL[$1]="${VAL[$1]:-} $2"; }

# Report helpers over the caller's `VAL` (an associative array "figure|threads|peer" -> one
# value per round, rounds paired across peers), shared by proxy.sh and tls.sh.
fmt() { # key: "median [min-max]"
  local s
  # shellcheck disable=SC2086 # one value per round
  read -r -a s <<<"$(stats ${VAL[$1]:-})"
  printf '%s [%s-%s]' "${s[0]}" "${s[1]}" "${s[2]}"
}
# shellcheck disable=SC2086 # one value per round
med() { local s; read -r -a s <<<"$(stats ${VAL[$1]:-})"; echo "${s[0]}"; }
# Ratio of tenbin to HAProxy per round (rounds are paired), then their median and spread.
round_ratios() { # figure|T
  local a b i
  read -r -a a <<<"${VAL[$1|tenbin]:-}"; read -r -a b <<<"${VAL[$1|haproxy]:-}"
  for i in "${!a[@]}"; do
    if [[ "${a[$i]}" =~ ^[0-9.]+$ && "${b[$i]:-}" =~ ^[0-9.]+$ ]]; then ratio "${a[$i]}" "${b[$i]}"; echo; else echo fail; fi
  done
}
# shellcheck disable=SC2046 # one ratio per round
rfmt() { local s; read -r -a s <<<"$(stats $(round_ratios "$1"))"; printf 'x%s [%s-%s]' "${s[0]}" "${s[1]}" "${s[2]}"; }

# Starts HAProxy (`nbthread T`, config from the caller's `haproxy_cfg T`) and tenbin
# (`run --threads T -c $WORK/tenbin.toml`), both pinned with taskset to PROXY_CPUS_T (default
# CPUs 0..T-1), with PIN=1 (the default) each worker thread to one of them (tenbin
# `--pin-workers`; haproxy_cfg writes `cpu-map` from CPUS); sets CPUS, HA_PID and TB_PID. taskset runs directly under `start`, not through
# a shell function, so $! is the proxy itself and the kill at the end reaches it.
start_proxies() { # T
  local cpus_var="PROXY_CPUS_$1"
  CPUS=${!cpus_var:-"0-$(($1 - 1))"}
  haproxy_cfg "$1" >"$WORK/haproxy-$1.cfg"
  start "haproxy-$1" taskset -c "$CPUS" haproxy -db -f "$WORK/haproxy-$1.cfg"
  # shellcheck disable=SC2034 # read by the caller
  HA_PID=${PIDS[-1]}
  local pin=()
  [ "$PIN" = 1 ] && pin=(--pin-workers)
  start "tenbin-$1" taskset -c "$CPUS" "$TENBIN" run --threads "$1" "${pin[@]}" -c "$WORK/tenbin.toml"
  # shellcheck disable=SC2034 # read by the caller
  TB_PID=${PIDS[-1]}
}
