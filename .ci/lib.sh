#!/usr/bin/env bash
# Shared by the .ci/*-checks.sh scripts: logging, the binary under test, Debian packages, and a
# proxy started with --dev on a free loopback port and stopped on exit. Source it after setting
# CHECK_NAME (the log prefix); it sets `work` (a scratch directory removed on exit).

log() { printf '%s: %s\n' "${CHECK_NAME:-ci}" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# find_bin: sets `bin` to AUTH_PROXY_BIN, else the newest kind of build there is.
find_bin() {
  bin=${AUTH_PROXY_BIN:-}
  if [[ -z $bin ]]; then
    for candidate in target/release/auth-proxy target/debug/auth-proxy; do
      if [[ -x $candidate ]]; then bin=$candidate; break; fi
    done
  fi
  [[ -n $bin && -x $bin ]] || die "no binary: build one or set AUTH_PROXY_BIN (tried target/release, target/debug)"
}

# apt_install COMMAND PACKAGE: installs Debian's PACKAGE when COMMAND is not on PATH.
apt_install() {
  command -v "$1" >/dev/null && return 0
  log "installing Debian's $2 (for $1)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

work=$(mktemp -d)
proxy_pid=
cleanup() {
  if [[ -n $proxy_pid ]]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_proxy [FLAGS...]: starts "$bin" --dev --listen 127.0.0.1:0 FLAGS and waits (10 s at
# most) for its "listening on" line; sets `url` and `proxy_pid`, refuses a non-loopback address.
start_proxy() {
  log "starting $bin --dev --listen 127.0.0.1:0 $*"
  "$bin" --dev --listen 127.0.0.1:0 "$@" 2>"$work/proxy.log" &
  proxy_pid=$!
  url=
  for _ in $(seq 1 100); do
    url=$(grep -o 'listening on http://[^ ]*' "$work/proxy.log" | head -n1 | sed 's/^listening on //') || true
    [[ -n $url ]] && break
    kill -0 "$proxy_pid" 2>/dev/null || { cat "$work/proxy.log" >&2; die "the proxy exited before listening"; }
    sleep 0.1
  done
  [[ -n $url ]] || { cat "$work/proxy.log" >&2; die "no 'listening on' line within 10 s"; }
  [[ $url == http://127.0.0.1:* ]] || die "refusing to test a non-loopback address: $url"
  grep -q 'dev auth service at http://127.0.0.1:' "$work/proxy.log" || die "no 'dev auth service at' line"
  log "proxy at $url"
}
