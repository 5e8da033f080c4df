#!/usr/bin/env bash
# bench/tls.sh: TLS termination, tenbin vs HAProxy, side by side on loopback (peer versions
# asked from their binaries and printed).
#
#   handshakes: wrk with `Connection: close`, so every request is a new TCP connection and a
#               full TLS handshake (wrk does not resume sessions): new handshakes/s.
#   keep-alive: wrk over kept-alive TLS connections: HTTPS req/s.
#   baseline:   the same keep-alive run over plain HTTP through the same two proxies, so the
#               keep-alive ratio can be split into TLS cost and L7 proxying cost.
# Both proxies terminate TLS with the same ECDSA P-256 certificate and key (TLS 1.3, ALPN
# http/1.1) and forward plain HTTP, round robin, to the same NGINX static backends. Prints each
# figure and tenbin's ratio to HAProxy.
#
# Peers come from Debian via scripts/install-deps. Everything binds 127.0.0.1 on free ports in
# a private temp dir; every process started here is killed on exit. Knobs (env):
# DURATION=10s CONNS=64 THREADS=2 BACKENDS=3 HA_THREADS=2 TLS_BENCH_TARGET=cargo target dir.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-3}
HA_THREADS=${HA_THREADS:-2}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH="$PATH:/usr/sbin:/sbin"
for c in haproxy nginx wrk openssl ss curl; do
  command -v "$c" >/dev/null 2>&1 || { bash "$ROOT/scripts/install-deps"; break; }
done

BENCH_NAME=tls
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- certificate (test name)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=bench.test" -addext "subjectAltName=DNS:bench.test" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/bundle.pem"

# ---------------------------------------------------------------- backends: NGINX static
BACK_PORTS=()
for _ in $(seq 1 "$BACKENDS"); do BACK_PORTS+=("$(free_port)"); done
NGINX_CONNECTIONS=8192 start_nginx_backends

# ---------------------------------------------------------------- HAProxy
HA=$(free_port); HA_PLAIN=$(free_port)
{
  echo "global"
  echo "  maxconn 4000"
  echo "  nbthread $HA_THREADS"
  echo "  ssl-default-bind-options ssl-min-ver TLSv1.2"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 3s"
  echo "  timeout client 60s"
  echo "  timeout server 60s"
  echo "frontend https_in"
  echo "  bind 127.0.0.1:$HA ssl crt $WORK/bundle.pem alpn http/1.1"
  echo "  option http-keep-alive"
  echo "  default_backend be"
  echo "frontend http_in"
  echo "  bind 127.0.0.1:$HA_PLAIN"
  echo "  option http-keep-alive"
  echo "  default_backend be"
  echo "backend be"
  echo "  balance roundrobin"
  echo "  http-reuse always"
  i=0; for p in "${BACK_PORTS[@]}"; do i=$((i + 1)); echo "  server b$i 127.0.0.1:$p"; done
} >"$WORK/haproxy.cfg"
start haproxy haproxy -db -f "$WORK/haproxy.cfg"

# ---------------------------------------------------------------- tenbin
TB=$(free_port); TB_PLAIN=$(free_port)
{
  echo "[[frontend]]"
  echo 'name = "https"'
  echo "bind = [\"127.0.0.1:$TB\"]"
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
RUNNER_TARGET=${TLS_BENCH_TARGET:-"$ROOT/target/tls-bench"}
log "building the TLS runner (release; the first build takes minutes)"
CARGO_TARGET_DIR="$RUNNER_TARGET" cargo build --release -q --manifest-path "$ROOT/bench/tls-runner/Cargo.toml" \
  >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
start tenbin "$RUNNER_TARGET/release/tenbin-tls-bench-runner" "$WORK/tenbin.toml"

for p in "$HA" "$TB"; do
  wait_port "$p" || { log "nothing listens on $p"; tail -n 5 "$WORK"/*.log; exit 1; }
  curl -fsS -m 3 --cacert "$WORK/cert.pem" --resolve "bench.test:$p:127.0.0.1" \
    "https://bench.test:$p/" >/dev/null || { log "no HTTPS answer on $p"; exit 1; }
done
suite() { # port: the negotiated protocol and cipher
  openssl s_client -connect "127.0.0.1:$1" -servername bench.test </dev/null 2>/dev/null |
    awk '/^New, /{print $2, $5; exit}'
}
log "HAProxy negotiates: $(suite "$HA")   tenbin negotiates: $(suite "$TB")"

# ---------------------------------------------------------------- measure
declare -A R
run() { # key scheme port [wrk args...]
  local key=$1 scheme=$2 port=$3
  shift 3
  local out
  out=$(wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" "$@" "$scheme://127.0.0.1:$port/" 2>&1)
  local rps errs
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  R[$key]=${rps:-0}
  [ -n "$errs" ] && log "$key: $errs"
  return 0
}
log "measuring: $DURATION per row, $CONNS connections, $THREADS wrk threads"
for p in "$HA_PLAIN" "$TB_PLAIN"; do
  curl -fsS -m 3 "http://127.0.0.1:$p/" >/dev/null || { log "no HTTP answer on $p"; exit 1; }
done
run ha_new https "$HA" -H "Connection: close"
run tb_new https "$TB" -H "Connection: close"
run ha_ka https "$HA"
run tb_ka https "$TB"
run ha_plain http "$HA_PLAIN"
run tb_plain http "$TB_PLAIN"

echo
peer_versions haproxy nginx wrk openssl
printf '%-34s %12s %12s %8s\n' "TLS 1.3, ECDSA P-256, loopback" "tenbin" "HAProxy" "ratio"
printf '%-34s %12s %12s %8s\n' "new handshakes/s (Connection: close)" "${R[tb_new]}" "${R[ha_new]}" "$(ratio "${R[tb_new]}" "${R[ha_new]}")"
printf '%-34s %12s %12s %8s\n' "keep-alive HTTPS req/s" "${R[tb_ka]}" "${R[ha_ka]}" "$(ratio "${R[tb_ka]}" "${R[ha_ka]}")"
printf '%-34s %12s %12s %8s\n' "baseline: keep-alive HTTP req/s" "${R[tb_plain]}" "${R[ha_plain]}" "$(ratio "${R[tb_plain]}" "${R[ha_plain]}")"
printf '%-34s %12s %12s\n' "HTTPS / HTTP keep-alive" "$(ratio "${R[tb_ka]}" "${R[tb_plain]}")" "$(ratio "${R[ha_ka]}" "${R[ha_plain]}")"
