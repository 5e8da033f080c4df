# Sourced by the bench/*.sh scripts: `peer_versions tool...` prints one line naming the version
# of each peer as its own binary reports it (never a version written into the script).
# shellcheck shell=bash

peer_version() { # tool: its first version line, or "not installed"
  local t=$1 out
  command -v "$t" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$t" >/dev/null 2>&1 || { echo "$t: not installed"; return; }
  case $t in
    nginx) out=$(nginx -v 2>&1) ;;
    haproxy) out=$(haproxy -v 2>&1 | head -n 1 | sed 's/ - http.*//') ;;
    knotd) out=$(knotd -V 2>&1) ;;
    gdnsd) out=$(gdnsd -h 2>&1 | grep -m1 'gdnsd version') ;; # no version flag: usage says it
    dnsperf) out="dnsperf $(dnsperf -h 2>&1 | grep -m1 -i 'version')" ;;
    wrk) out=$(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//') ;;
    iperf3) out=$(iperf3 -v 2>&1 | head -n 1) ;;
    openssl) out=$(openssl version 2>&1) ;;
    bird) out=$(bird --version 2>&1 | head -n 1) ;;
    clang) out=$("${CLANG:-clang}" --version 2>&1 | head -n 1) ;;
    *) out=$("$t" --version 2>&1 | head -n 1) ;;
  esac
  echo "${out:-$t: no version printed}"
}

peer_versions() { # tool...: "peers: <v1>; <v2>; ..." and the kernel
  local line="peers:" t
  for t in "$@"; do line="$line $(peer_version "$t");"; done
  echo "$line kernel $(uname -r)"
}
