#!/usr/bin/env bash
# bench/soak.sh: mixed HTTP/TCP/DNS load against one `tenbin run` for SOAK_SECS (default 600),
# the tenbin process's RSS and open fds sampled every SAMPLE_SECS (default 5), and the slope
# of each (KB/min, fds/min, least squares over the samples after the warm-up) printed with the
# figures before the load, after the warm-up (the baseline), at the end of the load and once
# the load has stopped. A leak shows as a slope that stays positive however long the run;
# crates/tenbin/tests/cli_leak.rs is the short CI variant (fds and connection slots back to
# their baseline after a bounded load).
#
# Load, all at once and each bounded by SOAK_SECS: wrk on HTTP keep-alive (CONNS
# connections) and with `Connection: close` (a new connection per request), wrk through the
# TCP frontend with `Connection: close` (an L4 session per request), dnsperf over UDP
# (DNS_QPS queries/s) and over TCP (DNS_TCP_QPS). Backends: NGINX static, as in
# bench/proxy.sh. Everything binds 127.0.0.1 on free ports in a private temp dir; every
# process started here is killed on exit.
#
# Knobs (env): SOAK_SECS=600 SAMPLE_SECS=5 WARMUP_SECS (default: a fifth of the run, at most
# 60) CONNS=8 DNS_QPS=2000 DNS_TCP_QPS=200, TENBIN_BIN=path to a tenbin binary (default: a
# release build in target/soak-bench, built on first use).
set -euo pipefail

SOAK_SECS=${SOAK_SECS:-600}
SAMPLE_SECS=${SAMPLE_SECS:-5}
WARMUP_SECS=${WARMUP_SECS:-$((SOAK_SECS / 5 < 60 ? SOAK_SECS / 5 : 60))}
CONNS=${CONNS:-8}
DNS_QPS=${DNS_QPS:-2000}
DNS_TCP_QPS=${DNS_TCP_QPS:-200}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
for c in nginx wrk dnsperf dig ss; do
  command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$c" >/dev/null 2>&1 || { bash "$ROOT/scripts/install-deps"; break; }
done

BENCH_NAME=soak
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- backends: NGINX static
BACK_PORTS=("$(free_port)" "$(free_port)" "$(free_port)")
start_nginx_backends

# ---------------------------------------------------------------- tenbin
HTTP=$(free_port); TCP=$(free_port); DNS=$(free_port); ADMIN=$(free_port)
{
  cat <<CONF
[admin]
listen = "127.0.0.1:$ADMIN"

[[frontend]]
name = "web"
bind = ["127.0.0.1:$HTTP"]
mode = "http"
default_pool = "app"

[[frontend]]
name = "raw"
bind = ["127.0.0.1:$TCP"]
mode = "tcp"
default_pool = "app"

[[pool]]
name = "app"
algorithm = "roundrobin"
[pool.health]
kind = "http"
interval = "1s"
CONF
  i=0
  for p in "${BACK_PORTS[@]}"; do
    i=$((i + 1))
    printf '[[pool.server]]\nname = "b%s"\naddress = "127.0.0.1:%s"\n' "$i" "$p"
  done
  cat <<CONF

[dns]
listen = ["127.0.0.1:$DNS"]

[[dns.zones]]
origin = "example.test."
ttl = 300
soa = { mname = "ns1", rname = "hostmaster", serial = 1, minimum = 60 }
records = [
  { name = "@", type = "NS", data = "ns1" },
  { name = "ns1", type = "A", data = "192.0.2.53" },
  { name = "www", type = "A", data = "192.0.2.10" },
  { name = "www", type = "AAAA", data = "2001:db8::10" },
]
CONF
} >"$WORK/tenbin.toml"
printf 'www.example.test A\nwww.example.test AAAA\nexample.test SOA\nnope.example.test A\n' >"$WORK/queries"

if [ -n "${TENBIN_BIN:-}" ]; then
  TENBIN=$TENBIN_BIN
else
  TARGET=${SOAK_BENCH_TARGET:-$ROOT/target/soak-bench}
  log "building tenbin (release; the first build takes minutes)"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p tenbin) >"$WORK/build.log" 2>&1 \
    || { log "tenbin did not build:"; tail -n 20 "$WORK/build.log" >&2; exit 1; }
  TENBIN="$TARGET/release/tenbin"
fi
"$TENBIN" check -c "$WORK/tenbin.toml" >/dev/null
start tenbin "$TENBIN" run -c "$WORK/tenbin.toml"
TB_PID=${PIDS[-1]}
wait_port "$HTTP" && wait_port "$TCP" || { log "tenbin did not come up"; cat "$WORK/tenbin.log" >&2; exit 1; }
for _ in $(seq 1 100); do
  dig +time=1 +tries=1 +short @127.0.0.1 -p "$DNS" www.example.test A | grep -q 192.0.2.10 && break
  sleep 0.1
done

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$TB_PID/status"; }
fd_count() { find "/proc/$TB_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
alive() { kill -0 "$TB_PID" 2>/dev/null || { log "tenbin exited:"; tail -n 20 "$WORK/tenbin.log" >&2; exit 1; }; }

echo "soak: ${SOAK_SECS}s of mixed load, sampled every ${SAMPLE_SECS}s, warm-up ${WARMUP_SECS}s; $("$TENBIN" version 2>&1 | head -n 1)"
peer_versions nginx wrk dnsperf
BEFORE_RSS=$(rss_kb); BEFORE_FDS=$(fd_count)

# ---------------------------------------------------------------- load
LOAD=()
run_load() { # name command...
  start "$@"
  LOAD+=("${PIDS[-1]}")
}
run_load wrk-keepalive wrk -t1 -c"$CONNS" -d"${SOAK_SECS}s" "http://127.0.0.1:$HTTP/"
run_load wrk-close wrk -t1 -c4 -d"${SOAK_SECS}s" -H "Connection: close" "http://127.0.0.1:$HTTP/"
run_load wrk-tcp wrk -t1 -c4 -d"${SOAK_SECS}s" -H "Connection: close" "http://127.0.0.1:$TCP/"
run_load dns-udp dnsperf -s 127.0.0.1 -p "$DNS" -d "$WORK/queries" -l "$SOAK_SECS" -Q "$DNS_QPS" -c 4 -T 1
run_load dns-tcp dnsperf -m tcp -s 127.0.0.1 -p "$DNS" -d "$WORK/queries" -l "$SOAK_SECS" -Q "$DNS_TCP_QPS" -c 4 -T 1

START=$(date +%s)
: >"$WORK/samples"
while :; do
  alive
  now=$(($(date +%s) - START))
  [ "$now" -gt "$SOAK_SECS" ] && break
  r=$(rss_kb); f=$(fd_count)
  echo "$now $r $f" >>"$WORK/samples"
  printf 'soak: t=%4ss rss %s KB fds %s\n' "$now" "$r" "$f"
  sleep "$SAMPLE_SECS"
done
for p in "${LOAD[@]}"; do wait "$p" 2>/dev/null || true; done
alive

# After the load: connections close on their own (client keep-alives at once, pooled idle
# upstream connections after their 60 s idle timeout), so wait, bounded (75 s), for the fds
# to come back to what they were before the load.
STOPPED=$(date +%s)
AFTER_FDS=$(fd_count)
for _ in $(seq 1 750); do
  AFTER_FDS=$(fd_count)
  [ "$AFTER_FDS" -le "$BEFORE_FDS" ] && break
  sleep 0.1
done
SETTLED=$(($(date +%s) - STOPPED))
AFTER_RSS=$(rss_kb)

# ---------------------------------------------------------------- figures
# Least squares slope of column $2 against time (column 1), per minute, after the warm-up.
slope() {
  awk -v col="$1" -v w="$WARMUP_SECS" '$1 >= w { n++; x += $1; y += $col; xx += $1 * $1; xy += $1 * $col }
    END { d = n * xx - x * x; if (n < 2 || d == 0) print "n/a"; else printf "%.1f", 60 * (n * xy - x * y) / d }' "$WORK/samples"
}
first_after_warmup() { awk -v col="$1" -v w="$WARMUP_SECS" '$1 >= w { print $col; exit }' "$WORK/samples"; }
last_sample() { tail -n 1 "$WORK/samples" | awk -v col="$1" '{ print $col }'; }
SAMPLES=$(awk -v w="$WARMUP_SECS" '$1 >= w' "$WORK/samples" | wc -l)

echo
echo "load (requests, errors as the tools report them):"
for n in wrk-keepalive wrk-close wrk-tcp; do
  req=$(awk '/requests in/ { print $1 }' "$WORK/$n.log")
  err=$(grep -E 'Socket errors|Non-2xx' "$WORK/$n.log" | tr -s ' ' | paste -sd ';' - || true)
  echo "  $n: ${req:-?} requests${err:+; $err}"
done
for n in dns-udp dns-tcp; do
  done_q=$(awk '/Queries completed/ { print $3 }' "$WORK/$n.log")
  lost=$(awk '/Queries lost/ { print $3, $4 }' "$WORK/$n.log")
  echo "  $n: ${done_q:-?} queries, ${lost:-?} lost"
done
echo
printf '%-22s %12s %8s\n' "tenbin process" "RSS (KB)" "fds"
printf '%-22s %12s %8s\n' "before the load" "$BEFORE_RSS" "$BEFORE_FDS"
printf '%-22s %12s %8s\n' "baseline (t=${WARMUP_SECS}s)" "$(first_after_warmup 2)" "$(first_after_warmup 3)"
printf '%-22s %12s %8s\n' "end of the load" "$(last_sample 2)" "$(last_sample 3)"
printf '%-22s %12s %8s\n' "after the load (${SETTLED}s)" "$AFTER_RSS" "$AFTER_FDS"
echo "slope after the warm-up ($SAMPLES samples): $(slope 2) KB/min, $(slope 3) fds/min"
