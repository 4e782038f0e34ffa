#!/usr/bin/env bash
# Profile auth-proxy under `GET /protected` load (64 connections), same set-up as bench/run.sh.
#
#   bench/profile.sh            perf record (DWARF call graphs, cpu-clock) → bench/out/profile.txt
#   BENCH_PROFILER=callgrind bench/profile.sh
#                               valgrind callgrind over a bounded wrk run → bench/out/callgrind.txt
#
# perf falls back to the cpu-clock software event where the VM has no hardware counters. The
# binary is the one bench/run.sh measures: the PGO build unless BENCH_BUILD=release (quicker).
set -euo pipefail
#   BENCH_PROFILE_SCRIPT=login.lua bench/profile.sh   another route (a script in bench/wrk/)
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"
PROFILE_SCRIPT=${BENCH_PROFILE_SCRIPT:-protected.lua}

SECONDS_UNDER_LOAD=${BENCH_PROFILE_SECONDS:-8}

profile_perf() {
  local report=$OUT/profile.txt
  start_proxy off "http://127.0.0.1:$STUB_HTTP"
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s -s "$BENCH/wrk/$PROFILE_SCRIPT" "http://127.0.0.1:$AP_PORT/" >/dev/null
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"$((SECONDS_UNDER_LOAD + 2))s" -s "$BENCH/wrk/$PROFILE_SCRIPT" \
    "http://127.0.0.1:$AP_PORT/" >"$OUT/profile-wrk.txt" &
  local wrk_pid=$!
  STARTED+=("$wrk_pid")
  sleep 1
  perf record -F 1999 -e cpu-clock --call-graph dwarf,32768 -o "$OUT/perf.data" -p "$AP_PID" \
    -- sleep "$SECONDS_UNDER_LOAD" 2>"$OUT/perf-record.log"
  wait "$wrk_pid" || true
  stop "$AP_PID"
  local tidy='s/ *- *- *$//; s/ *$//'
  {
    echo "## flat (self time)"
    perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol -g none --percent-limit 0.7 2>/dev/null | grep -v '^$' | sed "$tidy"
    echo
    echo "## by DSO"
    perf report -i "$OUT/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed "$tidy"
    echo
    echo "## inclusive (children)"
    perf report -i "$OUT/perf.data" --stdio --children --no-inline --sort symbol -g none --percent-limit 3 2>/dev/null |
      grep -v '^#' | grep -v '^$' | sed "$tidy"
  } >"$report"
  log "wrote $report"
}

profile_callgrind() {
  local report=$OUT/callgrind.txt
  RUNNER=(valgrind --tool=callgrind "--callgrind-out-file=$OUT/callgrind.out")
  launch "$BIN" "$AP_PORT" "$OUT/auth-proxy-callgrind.log" --auth-url "http://127.0.0.1:$STUB_HTTP" \
    --access-log off
  RUNNER=()
  AP_PID=$LAUNCHED
  # A fixed number of requests (wrk cannot count, so: 64 connections for a bounded time, logged).
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${SECONDS_UNDER_LOAD}s" -s "$BENCH/wrk/$PROFILE_SCRIPT" \
    "http://127.0.0.1:$AP_PORT/" | tee "$OUT/callgrind-wrk.txt" | grep '^RESULT' >&2
  stop "$AP_PID"
  callgrind_annotate --inclusive=no "$OUT/callgrind.out" >"$OUT/callgrind-full.txt" 2>/dev/null || true
  sed -n 1,60p "$OUT/callgrind-full.txt" >"$report"
  log "wrote $report"
}

profile_main() {
  install_tools
  build_proxy
  check_ports
  mkdir -p "$OUT"
  rm -rf "$OUT/stub"
  start_stub
  case ${BENCH_PROFILER:-perf} in
    perf) profile_perf ;;
    callgrind) profile_callgrind ;;
    *) log "BENCH_PROFILER is perf or callgrind"; exit 2 ;;
  esac
}

profile_main "$@"
