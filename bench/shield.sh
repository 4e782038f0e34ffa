#!/usr/bin/env bash
# Upstream calls per client request under `GET /protected` load: 64 connections rotating 8
# distinct tokens, with coalescing off, on (the default), and on with a 1 s micro-cache; against
# a stub that answers at once (nginx) and one that answers after 20 ms (a service across a
# network). Then callgrind instructions per request with every request's token distinct, so
# that nothing coalesces and the cost of the coalescing map itself shows.
#
#   bench/shield.sh        (~3 minutes after `cargo build --release`; writes bench/out/shield.txt
#                           and bench/shield.md, which bench/report.py appends to BENCHMARKS.md)
#   BENCH_SHIELD_LOAD=0 bench/shield.sh     only the callgrind rounds (BENCH_SHIELD_IR_ROUNDS, 3)
#   BENCH_SHIELD_BASE=path/to/auth-proxy bench/shield.sh
#                          also the plain path (one token, bench/wrk/protected.lua) under callgrind:
#                          that build, this one with every shield off, and this one by default
#
# All on 127.0.0.1, proxy on CPU 0, wrk and stubs on CPU 1, every run bounded in time; every
# process started here is killed on exit (run.sh's trap).
set -euo pipefail
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"

SHIELD_SECONDS=${BENCH_SHIELD_SECONDS:-10}
NGINX_STUB=18181 NGINX_STATUS=18182 SLOW_STUB=18183 SLOW_MS=${BENCH_SLOW_MS:-20}
SHIELD_RESULTS=$OUT/shield.txt

# upstream_count KIND: requests the stub has received so far.
upstream_count() {
  case $1 in
    nginx) curl -s "http://127.0.0.1:$NGINX_STATUS/" | awk 'NR == 3 { print $3 }' ;;
    slow) curl -s "http://127.0.0.1:$SLOW_STUB/count" ;;
  esac
}

# shield_run STUB MODE [flags...]: one bounded wrk run; one line into shield.txt.
shield_run() {
  local stub=$1 mode=$2 port before after line requests calls ticks0 ticks1
  shift 2
  port=$([ "$stub" = nginx ] && echo $NGINX_STUB || echo $SLOW_STUB)
  start_proxy off "http://127.0.0.1:$port" "$@"
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s -s "$BENCH/wrk/protected_8tokens.lua" "http://127.0.0.1:$AP_PORT/" >/dev/null
  before=$(upstream_count "$stub")
  ticks0=$(cpu_ticks "$AP_PID")
  line=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${SHIELD_SECONDS}s" --timeout 10s \
    -s "$BENCH/wrk/protected_8tokens.lua" "http://127.0.0.1:$AP_PORT/" | grep '^RESULT')
  ticks1=$(cpu_ticks "$AP_PID")
  after=$(upstream_count "$stub")
  stop "$AP_PID"
  requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
  # The nginx stub counts the status request that read `before` too.
  calls=$((after - before - $([ "$stub" = nginx ] && echo 1 || echo 0)))
  printf 'SHIELD stub=%s mode=%s client_requests=%s upstream_calls=%s calls_per_request=%s cpu_us_per_request=%s %s\n' \
    "$stub" "$mode" "$requests" "$calls" \
    "$(python3 -c "print(f'{$calls / max($requests, 1):.4f}')")" \
    "$(python3 -c "print(f'{($ticks1 - $ticks0) * 1e6 / $(getconf CLK_TCK) / max($requests, 1):.1f}')")" \
    "${line#RESULT }" | tee -a "$SHIELD_RESULTS" >&2
}

# shield_instructions MODE [flags...]: callgrind instructions per request, distinct tokens.
shield_instructions() {
  local mode=$1
  shift
  shield_callgrind "$mode" "$BIN" protected_distinct_c64 protected_distinct.lua "$@"
}

# shield_callgrind NAME BIN SCENARIO SCRIPT [flags...]: one callgrind round into shield.txt.
shield_callgrind() {
  local name=$1 bin=$2 scenario=$3 script=$4 prefix=$OUT/shield-callgrind-$1
  shift 4
  rm -f "$prefix".*
  RUNNER=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$prefix.%p")
  launch "$bin" "$AP_PORT" "$OUT/shield-callgrind.log" --auth-url "http://127.0.0.1:$NGINX_STUB" \
    --access-log off "$@"
  RUNNER=()
  RESULTS=$SHIELD_RESULTS
  IR_DUMPS=0
  callgrind_scenario "$name" "$scenario" "$LAUNCHED" "$AP_PORT" "$script" "$prefix"
  stop "$LAUNCHED"
}

shield_main() {
  install_tools
  BUILD=release
  build_proxy
  mkdir -p "$OUT"
  : >"$SHIELD_RESULTS"
  ulimit -n 16384
  rm -rf "$OUT/shield-stub"
  start_nginx shield-stub "$LOAD_CPU"
  taskset -c "$LOAD_CPU" python3 "$BENCH/slow_stub.py" "$SLOW_STUB" "$SLOW_MS" &
  STARTED+=("$!")
  sleep 0.5
  local stub round
  if [ "${BENCH_SHIELD_LOAD:-1}" = 1 ]; then
    for stub in nginx slow; do
      shield_run "$stub" coalesce-off --protected-coalesce off
      shield_run "$stub" coalesce-on
      shield_run "$stub" cache-1s --protected-cache-ttl 1s
    done
  fi
  # Under 64 connections the polls per request vary from run to run: alternate, several rounds.
  if command -v valgrind >/dev/null; then
    for round in $(seq "${BENCH_SHIELD_IR_ROUNDS:-3}"); do
      shield_instructions coalesce-off --protected-coalesce off
      shield_instructions coalesce-on
      if [ -n "${BENCH_SHIELD_BASE:-}" ]; then
        shield_callgrind base "$BENCH_SHIELD_BASE" protected_c64 protected.lua
        shield_callgrind all-off "$BIN" protected_c64 protected.lua \
          --protected-coalesce off --refresh-coalesce off --breaker-failures 0
        shield_callgrind defaults "$BIN" protected_c64 protected.lua
      fi
    done
  fi
  python3 "$BENCH/shield_report.py" "$SHIELD_RESULTS" "$SLOW_MS" "$SHIELD_SECONDS" >"$BENCH/shield.md"
  log "wrote $BENCH/shield.md"
}

shield_main "$@"
