#!/usr/bin/env bash
# Builds auth-proxy with profile-guided optimisation (PGO): target/pgo/auth-proxy.
#
#   bash bench/pgo.sh            instrumented build → the load harness's traffic through it →
#                                llvm-profdata merge → optimised build (~12 minutes; ~5 once the instrumented build is cached)
#
# The same source and Cargo profile as `cargo build --release`; LLVM also gets a profile of
# where this proxy spends its time, so it lays the hot path out together and keeps the rest out of
# the way. On this 2-core machine that takes about a quarter of the instructions off every
# request (BENCHMARKS.md counts both builds'). The training traffic is bench/run.sh's: its stub central
# service and the wrk scenarios for /protected, /login and /register, on 127.0.0.1 only, plus a
# few rejected requests, so that the error paths are profiled as the rare paths they are.
#
# llvm-profdata must match rustc's LLVM major version: taken from rustup's llvm-tools component
# when installed, else from Debian's llvm-N package (installed here when missing).
set -euo pipefail
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"

PGO=$ROOT/target/pgo

# Where llvm-profdata for rustc's LLVM is (installing Debian's llvm-N if needed).
find_profdata() {
  local major sysroot host tool
  major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
  sysroot=$(rustc --print sysroot)
  host=$(rustc -vV | sed -n 's/^host: //p')
  for tool in "$sysroot/lib/rustlib/$host/bin/llvm-profdata" "/usr/lib/llvm-$major/bin/llvm-profdata"; do
    [ -x "$tool" ] && { echo "$tool"; return; }
  done
  log "installing llvm-$major for llvm-profdata (rustc uses LLVM $major)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "llvm-$major" >&2 ||
    { log "no llvm-$major package: install rustup's llvm-tools component instead"; exit 1; }
  echo "/usr/lib/llvm-$major/bin/llvm-profdata"
}

# train BIN: the harness's scenarios through an instrumented binary, which writes its profile at exit.
train() {
  BIN=$1
  check_ports
  mkdir -p "$OUT"
  rm -rf "$OUT/stub"
  start_stub
  start_proxy off "http://127.0.0.1:$STUB_HTTP"
  local script url=http://127.0.0.1:$AP_PORT
  for script in protected login register; do
    taskset -c "$LOAD_CPU" wrk -t1 -c64 -d4s -s "$BENCH/wrk/$script.lua" "$url/" >/dev/null
  done
  # Rejections, a few of each: profiled, and so known to be rare.
  local i
  for i in $(seq 20); do
    curl -s -o /dev/null "$url/protected"
    curl -s -o /dev/null -H 'Content-Type: application/json' -d '{"email":"x"}' "$url/register"
    curl -s -o /dev/null -d 'username=u' "$url/login"
    curl -s -o /dev/null "$url/nowhere"
  done
  stop "$AP_PID"
  stop "$NGINX_PID"
}

pgo_main() {
  install_tools
  local profdata flags=${RUSTFLAGS:-}
  profdata=$(find_profdata)
  log "PGO 1/3: instrumented build"
  (cd "$ROOT" && RUSTFLAGS="$flags -Cprofile-generate=$PGO/profiles" CARGO_TARGET_DIR=$PGO/instrument \
    cargo build --release --locked --quiet --bin auth-proxy)
  # Build scripts ran instrumented too: only the proxy's own profile is wanted.
  rm -rf "$PGO/profiles"
  log "PGO 2/3: training run"
  train "$PGO/instrument/release/auth-proxy"
  "$profdata" merge -o "$PGO/merged.profdata" "$PGO"/profiles/*.profraw
  log "PGO 3/3: optimised build"
  # From scratch: cargo does not see a new profile under the same path, and every crate, hyper's
  # and tokio's included, is compiled with it.
  rm -rf "$PGO/use"
  (cd "$ROOT" && RUSTFLAGS="$flags -Cprofile-use=$PGO/merged.profdata" CARGO_TARGET_DIR=$PGO/use \
    cargo build --release --locked --quiet --bin auth-proxy)
  cp "$PGO/use/release/auth-proxy" "$PGO/auth-proxy"
  log "built $PGO/auth-proxy"
}

pgo_main "$@"
