#!/usr/bin/env bash
# bench/tls.sh: TLS termination, tenbin vs HAProxy at equal cores, on loopback, in interleaved
# rounds (each figure tenbin then HAProxy in odd rounds, HAProxy then tenbin in even ones) so
# that load from other processes on a shared host lands on both alike; per figure the median and the spread (min-max) over the rounds, and
# tenbin's ratio to HAProxy taken per round (rounds are paired), its median and spread.
#
#   handshakes: every request on a new TCP connection with a new TLS handshake
#               (`Connection: close`): new handshakes/s, from two clients in turn. wrk is
#               OpenSSL 3.0 (Debian 12), which spends ~0.6 ms of user CPU per handshake on the
#               client side alone, so with one load CPU it, not the proxy, sets the rate;
#               `tls-handshakes` (tenbin-testkit's rustls client: the same loop of connect,
#               handshake, GET, read, close_notify, close) spends about a third of that user
#               CPU, so the proxy can be the limit (at one thread HAProxy was: its load CPU
#               ~60% busy; the busy row says which side it was). Both keep each slot's session across its
#               reconnects (wrk: SSL_shutdown + SSL_clear), so a server that issues TLS 1.3
#               tickets or keeps a session cache gets resumed handshakes (PSK with (EC)DHE: no
#               certificate signature), one that does not gets full ones; the report says
#               which of the two each proxy does (openssl s_client -sess_in, and
#               tls-handshakes' own count). Beside each rate, the proxy's CPU time (user +
#               system, /proc) per handshake, and how busy the load CPUs were (of their time,
#               in percent: near 100 means the client, not the proxy, was the limit).
#   keep-alive: wrk over kept-alive TLS connections: HTTPS req/s, p99, CPU per request.
#   baseline:   the same keep-alive run over plain HTTP through a second, plain frontend on the
#               same two proxies, so the keep-alive ratio splits into TLS cost and L7 cost.
# Both proxies: the same ECDSA P-256 certificate and key, signed by a CA made for the run that
# the clients trust (TLS 1.3 negotiated, ALPN http/1.1),
# round robin over the same NGINX static backends with connection reuse (`http-reuse always`
# on HAProxy), the same X-Forwarded-For/-Proto/-Host headers and timeouts as bench/proxy.sh, no
# logging. HAProxy keeps its TLS session defaults (tune.ssl.cachesize 20000, TLS tickets on),
# which tenbin's defaults are meant to match (a 20000-entry session cache, stateless tickets).
# For each worker count in THREADS_LIST: tenbin `run --threads N`, HAProxy `nbthread N`, both
# pinned with taskset to the same PROXY_CPUS, and (PIN=1, the default) each worker thread to its
# own CPU of them (tenbin `--pin-workers`, HAProxy `cpu-map auto:1/1-N`); wrk and the backends
# are pinned to LOAD_CPUS. Each worker count starts with an unmeasured 1 s keep-alive HTTPS
# warm-up per proxy.
# Only 2xx responses count: a wrk run with any non-2xx/3xx response or socket error is a failed
# row (printed "fail", and the script exits 1 at the end), in the handshake rows too (see
# run_wrk).
#
# Peers come from Debian via scripts/install-deps; their versions are read from the binaries.
# Everything binds 127.0.0.1 on free ports in a private temp dir; every process started here
# is killed on exit. Knobs (env), defaults in brackets:
#   ROUNDS [3] DURATION [5s] CONNS [64] WRK_THREADS [1] BACKENDS [3]
#   THREADS_LIST ["1 2"]; PROXY_CPUS_1 [1] PROXY_CPUS_2 [0,1] (PROXY_CPUS_N for other N);
#   LOAD_CPUS [0]; BENCH_QUICK=1 (2 rounds of 2s: for iterating, not for figures);
#   TENBIN_BIN=path to a release tenbin, TLS_HANDSHAKES_BIN=path to a release tls-handshakes
#   (default: each built into PROXY_BENCH_TARGET [target/proxy-bench], shared with
#   bench/proxy.sh).
set -euo pipefail

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-2}; DURATION=${DURATION:-2s}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
BACKENDS=${BACKENDS:-3}
THREADS_LIST=${THREADS_LIST:-"1 2"}
LOAD_CPUS=${LOAD_CPUS:-0}
PROXY_CPUS_1=${PROXY_CPUS_1:-1}
PROXY_CPUS_2=${PROXY_CPUS_2:-0,1}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH="$PATH:/usr/sbin:/sbin"
for c in haproxy nginx wrk openssl ss curl taskset; do
  command -v "$c" >/dev/null 2>&1 || { bash "$ROOT/scripts/install-deps"; break; }
done

BENCH_NAME=tls
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
FAILED=0

# ---------------------------------------------------------------- tenbin
RUNNER_TARGET=${PROXY_BENCH_TARGET:-"$ROOT/target/proxy-bench"}
build_release() { # package [cargo args...]
  log "building $1 (release; the first build takes minutes)"
  (cd "$ROOT" && CARGO_TARGET_DIR="$RUNNER_TARGET" cargo build --release -q -p "$@") >"$WORK/build-$1.log" 2>&1 \
    || { cat "$WORK/build-$1.log"; exit 1; }
}
if [ -n "${TENBIN_BIN:-}" ]; then
  TENBIN=$TENBIN_BIN
else
  build_release tenbin
  TENBIN="$RUNNER_TARGET/release/tenbin"
fi
if [ -n "${TLS_HANDSHAKES_BIN:-}" ]; then
  HANDSHAKES=$TLS_HANDSHAKES_BIN
else
  build_release tenbin-testkit --bin tls-handshakes
  HANDSHAKES="$RUNNER_TARGET/release/tls-handshakes"
fi

# ---------------------------------------------------------------- certificate (test name)
# A CA for the run and a leaf for bench.test it signs (rustls refuses a CA certificate as a
# server's own).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=tenbin bench CA" -keyout "$WORK/ca-key.pem" -out "$WORK/ca.pem" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=bench.test" \
  -keyout "$WORK/key.pem" -out "$WORK/leaf.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:bench.test\nbasicConstraints=CA:FALSE\n' >"$WORK/leaf.ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca-key.pem" -CAcreateserial \
  -days 2 -extfile "$WORK/leaf.ext" -out "$WORK/cert.pem" >/dev/null 2>&1
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/bundle.pem"

# ---------------------------------------------------------------- backends: NGINX static
# As in bench/proxy.sh: one worker per load CPU (lib.sh: cpu_count); NGINX_WORKERS overrides.
BACK_PORTS=()
for _ in $(seq 1 "$BACKENDS"); do BACK_PORTS+=("$(free_port)"); done
NGINX_CONNECTIONS=8192 NGINX_WORKERS=${NGINX_WORKERS:-$(cpu_count "$LOAD_CPUS")} NGINX_CPUS=$LOAD_CPUS start_nginx_backends

# ---------------------------------------------------------------- proxy configs
HA_TLS=$(free_port); HA_PLAIN=$(free_port)
TB_TLS=$(free_port); TB_PLAIN=$(free_port)
haproxy_cfg() { # nbthread
  local fe proto port i p
  echo "global"
  echo "  maxconn 4000"
  echo "  nbthread $1"
  [ "$PIN" = 1 ] && echo "  cpu-map auto:1/1-$1 $CPUS"
  echo "  ssl-default-bind-options ssl-min-ver TLSv1.2"
  # TLS sessions: HAProxy's defaults, written out: a 20000-entry session cache
  # (tune.ssl.cachesize) and TLS tickets on (no `no-tls-tickets`), with OpenSSL's own ticket
  # key; tenbin's defaults are meant to match (20000-entry cache, stateless tickets).
  echo "  tune.ssl.cachesize 20000"
  echo "defaults"
  # tenbin's defaults: connect 3s, header 10s, idle 60s, server 30s, queue 5s.
  echo "  timeout connect 3s"
  echo "  timeout client 60s"
  echo "  timeout server 30s"
  echo "  timeout http-request 10s"
  echo "  timeout http-keep-alive 60s"
  echo "  timeout queue 5s"
  echo "  retries 2"
  for fe in https http; do
    if [ "$fe" = https ]; then proto=https; port="$HA_TLS ssl crt $WORK/bundle.pem alpn http/1.1"
    else proto=http; port=$HA_PLAIN; fi
    echo "frontend ${fe}_in"
    echo "  mode http"
    echo "  bind 127.0.0.1:$port"
    echo "  option http-keep-alive"
    # tenbin's default `forwarded = "x-forwarded"`: X-Forwarded-For, -Proto and -Host.
    echo "  option forwardfor"
    echo "  http-request set-header X-Forwarded-Proto $proto"
    echo "  http-request set-header X-Forwarded-Host %[req.hdr(host)]"
    echo "  default_backend be"
  done
  echo "backend be"
  echo "  mode http"
  echo "  balance roundrobin"
  echo "  http-reuse always"
  i=0; for p in "${BACK_PORTS[@]}"; do i=$((i + 1)); echo "  server b$i 127.0.0.1:$p"; done
}
{
  echo "[[frontend]]"
  echo 'name = "https"'
  echo "bind = [\"127.0.0.1:$TB_TLS\"]"
  echo 'mode = "http"'
  echo 'default_pool = "web"'
  echo "[frontend.tls]"
  echo 'alpn = ["http/1.1"]'
  echo "[[frontend.tls.certificate]]"
  echo "cert = \"$WORK/cert.pem\""
  echo "key = \"$WORK/key.pem\""
  echo "[[frontend]]"
  echo 'name = "plain"'
  echo "bind = [\"127.0.0.1:$TB_PLAIN\"]"
  echo 'mode = "http"'
  echo 'default_pool = "web"'
  echo "[[pool]]"
  echo 'name = "web"'
  echo 'algorithm = "roundrobin"'
  i=0
  for p in "${BACK_PORTS[@]}"; do
    i=$((i + 1))
    echo "[[pool.server]]"; echo "name = \"s$i\""; echo "address = \"127.0.0.1:$p\""
  done
} >"$WORK/tenbin.toml"

# ---------------------------------------------------------------- probes
check_https() {
  curl -fsS -m 3 --cacert "$WORK/ca.pem" --resolve "bench.test:$1:127.0.0.1" "https://bench.test:$1/" >/dev/null
}
check_http() { curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$1/"; }
suite() { # port: negotiated protocol, cipher, key exchange and ALPN
  local out
  out=$(openssl s_client -connect "127.0.0.1:$1" -servername bench.test -alpn http/1.1 </dev/null 2>/dev/null) || true
  awk '/^New, |^Reused, / { sub(/,$/, "", $2); v = $2 " " $5 } /^Server Temp Key:/ { k = $4 } /^ALPN protocol:/ { a = $3 }
    END { sub(/,$/, "", k); printf "%s %s alpn %s", v, k, (a == "" ? "none" : a) }' <<<"$out"
}
resumes() { # port: "yes" if a second connection resumes the first one's session (ticket or cache)
  local f="$WORK/session-$1.pem" out
  rm -f "$f"
  # A request and its answer read to the end, so the TLS 1.3 tickets sent after the handshake
  # arrive before s_client saves the session.
  printf 'GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n' |
    openssl s_client -connect "127.0.0.1:$1" -servername bench.test -alpn http/1.1 -ign_eof -sess_out "$f" >/dev/null 2>&1 || true
  [ -s "$f" ] || { echo "no (no session saved)"; return; }
  out=$(openssl s_client -connect "127.0.0.1:$1" -servername bench.test -alpn http/1.1 -sess_in "$f" </dev/null 2>/dev/null) || true
  if grep -q '^Reused, ' <<<"$out"; then echo yes; else echo no; fi
}

# ---------------------------------------------------------------- measuring
declare -A VAL # "figure|threads|peer" -> space-separated values, one per round (lib.sh: add)
# load_ticks: "busy total" clock ticks of the LOAD_CPUS so far (busy: all but idle, iowait and
# steal); load_busy BEFORE AFTER: the busy share between two readings, in percent.
load_ticks() {
  awk -v cpus=" $(cpu_list "$LOAD_CPUS") " '
    substr($1, 1, 3) == "cpu" && index(cpus, " " substr($1, 4) " ") && $1 != "cpu" {
      t = 0; for (f = 2; f <= NF; f++) t += $f; busy += t - $5 - $6 - $9; total += t }
    END { print busy + 0, total + 0 }' /proc/stat
}
load_busy() { # "busy total" "busy total"
  local b0 t0 b1 t1
  read -r b0 t0 <<<"$1"; read -r b1 t1 <<<"$2"
  awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { if (t > 0) printf "%.0f", 100 * b / t; else print "fail" }'
}
# run_load figure T peer command...: runs the load client (wrk, or tls-handshakes, which
# prints wrk's summary lines) pinned to LOAD_CPUS and records req/s of 2xx responses and p99
# (ms), or fail; the proxy's CPU per request and the load CPUs' busy share. The client's
# output is left in LOAD_OUT.
# Failures: any "Non-2xx or 3xx responses", any socket error (connect, read, write, timeout),
# no result. The handshake rows (`Connection: close`) get no exception for read errors: wrk
# counts one when it finds a connection closed by the server that the response did not
# announce as closing, but both proxies answer `connection: close` and wrk reconnects on that
# itself, so a clean run has none (checked with HAProxy 2.6 and tenbin: 0 read errors on both).
# A failed TCP connect or TLS handshake shows as a connect error.
run_load() {
  local fig=$1 key="$2|$3" threads=$2 peer=$3 out rps p99 errs c r w t t0 t1 l0 l1
  shift 3
  t0=$(cpu_ticks "${PEER_PID[$peer]}"); l0=$(load_ticks)
  out=$(taskset -c "$LOAD_CPUS" "$@" 2>&1) || true
  t1=$(cpu_ticks "${PEER_PID[$peer]}"); l1=$(load_ticks)
  add "$fig-cpu|$key" "$(us_per_request $((t1 - t0)) "$out")"
  add "$fig-load|$key" "$(load_busy "$l0" "$l1")"
  printf '== %s %s\n%s\n' "$fig" "$key" "$out" >>"$WORK/wrk.log"
  LOAD_OUT=$out
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  read -r c r w t <<<"$(awk '/Socket errors:/ { gsub(/,/, ""); print $4, $6, $8, $10 }' <<<"$out")"
  c=${c:-0}; r=${r:-0}; w=${w:-0}; t=${t:-0}
  errs=$(awk '/Non-2xx/' <<<"$out")
  [ $((c + r + w + t)) = 0 ] || errs="$errs socket errors: connect $c, read $r, write $w, timeout $t"
  if [ -n "$errs" ] || [ -z "$rps" ]; then
    [ -n "$errs" ] || [ -n "$rps" ] || errs="no result: $(awk 'NF { l = $0 } END { print l }' <<<"$out")"
    log "$fig $key: failed: $errs"
    kill -0 "${PEER_PID[$peer]}" 2>/dev/null ||
      log "$peer ($threads threads, pid ${PEER_PID[$peer]}) has exited: $(tail -n 3 "$WORK/$peer-$threads.log" | tr '\n' ' ')"
    rps=fail; p99=fail; FAILED=1
  fi
  add "$fig-rps|$key" "$rps"; add "$fig-p99|$key" "$p99"
}
# run_wrk figure T peer url [wrk args...]
run_wrk() {
  local fig=$1 threads=$2 peer=$3 url=$4
  shift 4
  run_load "$fig" "$threads" "$peer" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url"
}
# run_handshakes figure T peer port: tls-handshakes against the peer's TLS frontend; also
# records the share of resumed handshakes and what was negotiated.
run_handshakes() {
  local key="$2|$3"
  run_load "$1" "$2" "$3" "$HANDSHAKES" --connect "127.0.0.1:$4" --sni bench.test --ca "$WORK/ca.pem" \
    -c "$CONNS" -d "$DURATION"
  [[ "$LOAD_OUT" =~ negotiated:\ ([^$'\n']+) ]] && HS_NEGOTIATED[$key]=${BASH_REMATCH[1]}
  [[ "$LOAD_OUT" =~ handshakes:\ resumed\ ([0-9]+),\ full\ ([0-9]+) ]] &&
    add "$1-resumed|$key" "$(awk -v r="${BASH_REMATCH[1]}" -v f="${BASH_REMATCH[2]}" 'BEGIN { if (r + f > 0) printf "%.1f", 100 * r / (r + f); else print "fail" }')"
}

# ---------------------------------------------------------------- per worker count
declare -A SUITE RESUMES PEER_PID HS_NEGOTIATED
declare -A TLS_PORT=([tenbin]=$TB_TLS [haproxy]=$HA_TLS) PLAIN_PORT=([tenbin]=$TB_PLAIN [haproxy]=$HA_PLAIN)
for T in $THREADS_LIST; do
  start_proxies "$T"
  PEER_PID[haproxy]=$HA_PID; PEER_PID[tenbin]=$TB_PID
  for p in "$HA_TLS" "$HA_PLAIN" "$TB_TLS" "$TB_PLAIN"; do
    wait_port "$p" || { log "nothing listens on $p"; tail -n 5 "$WORK"/*.log; exit 1; }
  done
  for p in "$TB_TLS" "$HA_TLS"; do
    check_https "$p" || { log "no HTTPS answer through port $p"; tail -n 5 "$WORK"/*.log; exit 1; }
  done
  for p in "$TB_PLAIN" "$HA_PLAIN"; do
    check_http "$p" || { log "no HTTP answer through port $p"; tail -n 5 "$WORK"/*.log; exit 1; }
  done
  SUITE[$T|tenbin]=$(suite "$TB_TLS"); SUITE[$T|haproxy]=$(suite "$HA_TLS")
  RESUMES[$T|tenbin]=$(resumes "$TB_TLS"); RESUMES[$T|haproxy]=$(resumes "$HA_TLS")
  log "threads $T on CPUs $CPUS: tenbin ${SUITE[$T|tenbin]}, resumes ${RESUMES[$T|tenbin]}; HAProxy ${SUITE[$T|haproxy]}, resumes ${RESUMES[$T|haproxy]}"
  # Warm-up: connections, pools and caches on both, not measured.
  for p in "$TB_TLS" "$HA_TLS"; do
    taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d1s "https://127.0.0.1:$p/" >/dev/null 2>&1 || true
  done
  for r in $(seq 1 "$ROUNDS"); do
    log "threads $T round $r/$ROUNDS"
    for peer in $(turns "$r"); do run_handshakes hs "$T" "$peer" "${TLS_PORT[$peer]}"; done
    for peer in $(turns "$r"); do
      run_wrk close "$T" "$peer" "https://127.0.0.1:${TLS_PORT[$peer]}/" -H "Connection: close"
    done
    for peer in $(turns "$r"); do run_wrk tls "$T" "$peer" "https://127.0.0.1:${TLS_PORT[$peer]}/"; done
    for peer in $(turns "$r"); do run_wrk http "$T" "$peer" "http://127.0.0.1:${PLAIN_PORT[$peer]}/"; done
  done
  for p in $HA_PID $TB_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  # The next worker count binds the same ports.
  for p in "$HA_TLS" "$HA_PLAIN" "$TB_TLS" "$TB_PLAIN"; do
    for _ in $(seq 1 50); do [ -z "$(ss -Htln "( sport = :$p )")" ] && break; sleep 0.1; done
  done
done

# ---------------------------------------------------------------- report
echo
peer_versions haproxy nginx wrk openssl taskset
echo "tenbin: $("$TENBIN" version 2>/dev/null | head -n 1); $(nproc) cores; proxies on PROXY_CPUS (1 thread: $PROXY_CPUS_1, 2 threads: $PROXY_CPUS_2), wrk/backends on $LOAD_CPUS"
echo "wrk -t$WRK_THREADS -c$CONNS -d$DURATION and tls-handshakes (rustls $(awk '$1 == "name" { n = $3 } $1 == "version" && n == "\"rustls\"" { print $3; exit }' "$ROOT/Cargo.lock" | tr -d '"')) -c$CONNS -d$DURATION, $BACKENDS NGINX static backends, round robin; ECDSA P-256 certificate; $ROUNDS interleaved rounds; median [min-max]"
echo "new handshakes: tls-handshakes (rustls client); (wrk): wrk (OpenSSL 3.0 client); a load CPUs busy row near 100 means the client, not the proxy, set that rate"
for T in $THREADS_LIST; do
  echo "threads $T negotiated: tenbin ${SUITE[$T|tenbin]:-?} (resumes sessions: ${RESUMES[$T|tenbin]:-?}); HAProxy ${SUITE[$T|haproxy]:-?} (resumes sessions: ${RESUMES[$T|haproxy]:-?})"
  echo "threads $T tls-handshakes negotiated: tenbin ${HS_NEGOTIATED[$T|tenbin]:-?}; HAProxy ${HS_NEGOTIATED[$T|haproxy]:-?}"
done
num_ratio() { if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then ratio "$1" "$2"; else echo fail; fi; }
row() { # T label figure [-: no ratio, for figures that describe the run rather than the proxy]
  local r
  if [ "${4:-}" = - ]; then r=-; else r=$(rfmt "$3|$1"); fi
  printf '%-8s %-26s %-30s %-30s %s\n' "$1" "$2" "$(fmt "$3|$1|tenbin")" "$(fmt "$3|$1|haproxy")" "$r"
}
printf '\n%-8s %-26s %-30s %-30s %s\n' threads figure tenbin haproxy "tenbin/haproxy"
for T in $THREADS_LIST; do
  row "$T" "tls new handshakes/s" hs-rps
  row "$T" "  handshake cpu us" hs-cpu
  row "$T" "  load CPUs busy %" hs-load -
  row "$T" "  resumed %" hs-resumed -
  row "$T" "  (wrk) new handshakes/s" close-rps
  row "$T" "  (wrk) handshake cpu us" close-cpu
  row "$T" "  (wrk) load CPUs busy %" close-load -
  row "$T" "tls keep-alive req/s" tls-rps
  row "$T" "tls keep-alive p99 ms" tls-p99
  row "$T" "tls keep-alive cpu us/req" tls-cpu
  row "$T" "http keep-alive req/s" http-rps
  row "$T" "http keep-alive p99 ms" http-p99
  printf '%-8s %-26s %-30s %-30s %s\n' "$T" "(tls/http keep-alive)" \
    "$(num_ratio "$(med "tls-rps|$T|tenbin")" "$(med "http-rps|$T|tenbin")")" \
    "$(num_ratio "$(med "tls-rps|$T|haproxy")" "$(med "http-rps|$T|haproxy")")" "-"
done
echo
echo "targets: TLS keep-alive req/s >= 0.9, new handshakes/s >= 1.0 (x of HAProxy; the tls-handshakes row, where the proxy is the limit)"
[ "$FAILED" = 0 ] || { log "some runs failed (non-2xx responses, socket errors or no result): see above"; exit 1; }
