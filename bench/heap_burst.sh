#!/usr/bin/env bash
# Heap by call site through a burst of idle keep-alive connections: valgrind's massif around
# `idle_conns.py PORT PID N burst`, with run.sh's stub. What each parked connection keeps is in
# the snapshot just before the connections close (the heap's last plateau); read it with
# `ms_print bench/out/massif.out`.
#
#   bench/heap_burst.sh                  this tree's plain release build, 2,000 connections
#   BENCH_BIN=/path/auth-proxy BENCH_HEAP_CONNS=500 bench/heap_burst.sh
#
# Under valgrind the proxy runs ~50× slower, so the burst is smaller than run.sh's 5,000.
set -euo pipefail
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"

main_heap() {
  install_tools
  BUILD=release
  build_proxy
  check_ports
  mkdir -p "$OUT"
  rm -rf "$OUT/stub"
  make_tls
  ulimit -n 16384
  start_stub
  RUNNER=(valgrind --tool=massif --depth=40 --max-snapshots=200 --detailed-freq=1 "--massif-out-file=$OUT/massif.out")
  launch "$BIN" "$AP_PORT" "$OUT/auth-proxy-massif.log" --auth-url "http://127.0.0.1:$STUB_HTTP" --access-log off
  RUNNER=()
  local pid=$LAUNCHED
  sleep 2
  taskset -c "$LOAD_CPU" timeout 300 python3 "$BENCH/idle_conns.py" "$AP_PORT" "$pid" "${BENCH_HEAP_CONNS:-2000}" burst
  stop "$pid"
  log "wrote $OUT/massif.out (ms_print it; RSS above is valgrind's, not the proxy's)"
}

main_heap
