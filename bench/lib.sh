# Shared by the bench/*.sh scripts (source it; set BENCH_NAME first): a work directory and
# background processes cleaned up on exit, free loopback ports, and small helpers.
# shellcheck shell=bash
# shellcheck source=bench/versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

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

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# NGINX static backends, one per port in BACK_PORTS (set by the caller), each answering
# "backend N"; started in the background and waited for. NGINX_CONNECTIONS: its
# worker_connections (default 4096); NGINX_WORKERS: worker_processes (default 1); NGINX_CPUS:
# pin it with taskset to these CPUs (default: not pinned).
start_nginx_backends() {
  mkdir -p "$WORK/backends"
  {
    echo "worker_processes ${NGINX_WORKERS:-1}; daemon off; pid $WORK/backends/nginx.pid; error_log $WORK/backends/error.log;"
    echo "events { worker_connections ${NGINX_CONNECTIONS:-4096}; }"
    echo "http { access_log off; keepalive_requests 100000;"
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
