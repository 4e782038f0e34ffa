#!/usr/bin/env bash
# Measure a lever: two auth-proxy builds (or one build with two sets of flags) back to back.
#
#   BENCH_B=/tmp/auth-proxy-mimalloc bench/ab.sh      this tree's build (A) against another
#   BENCH_A=target/release/auth-proxy BENCH_B=target/pgo/auth-proxy bench/ab.sh
#   BENCH_B_ARGS="--worker-threads 2" bench/ab.sh     the same build with extra flags for B
#   BENCH_B_ENV="MALLOC_ARENA_MAX=1" bench/ab.sh      ... or extra environment for B
#   BENCH_AB_MEMORY=1 BENCH_AB_SCENARIOS=none bench/ab.sh   memory only: for A and B, fresh
#                                processes, BENCH_AB_MEMORY_REPS rounds (default 3) of run.sh's
#                                idle-after-a-burst and 100 MiB streaming measurements
#
# The same set-up as bench/run.sh (its functions, ports, pinning and stub): A and B both pinned to
# CPU 0 (one under load at a time), wrk and the stub on CPU 1; each scenario is BENCH_REPS rounds (default 6) of
# BENCH_DURATION seconds (default 5) in which A and B are measured back to back, the order
# alternating. Where valgrind is installed, each is also run under callgrind for instructions per
# request. Prints a table of medians and of B/A (the median of the rounds' ratios, with their
# range) and writes it to bench/out/ab.md. Nothing here touches BENCHMARKS.md: that file only
# ever holds bench/run.sh's auth-proxy-against-nginx run.
set -euo pipefail
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"

B_PORT=$((18091 + PORT_OFFSET))
SCENARIOS=${BENCH_AB_SCENARIOS:-protected_c64 login_c64 register_c64}

# start_side NAME BIN PORT ARGS ENV: one side (run.sh's `launch`, so RUNNER applies); sets SIDE_PID.
start_side() {
  local name=$1 bin=$2 port=$3 args=$4 envs=$5
  # shellcheck disable=SC2206 # ENV is a list of NAME=value words, split on purpose
  LAUNCH_ENV=($envs)
  # shellcheck disable=SC2086 # ARGS is a list of flags, split on purpose
  launch "$bin" "$port" "$OUT/ab-$name.log" --auth-url "http://127.0.0.1:$STUB_HTTP" --access-log off $args
  LAUNCH_ENV=()
  SIDE_PID=$LAUNCHED
}

# scenario_shape SCENARIO: "SCRIPT CONNS" for the scenario names bench/run.sh uses.
scenario_shape() {
  case $1 in
    none) echo "" ;;
    protected_c64) echo "protected.lua 64" ;;
    protected_c256) echo "protected.lua 256" ;;
    login_c64) echo "login.lua 64" ;;
    register_c64) echo "register.lua 64" ;;
    *) log "unknown scenario $1 (protected_c64, protected_c256, login_c64, register_c64)"; exit 1 ;;
  esac
}

ab_load() {
  [ "$SCENARIOS" != none ] || return 0
  start_side A "$BIN_A" "$AP_PORT" "${BENCH_A_ARGS:-}" "${BENCH_A_ENV:-}"; local a=$SIDE_PID
  start_side B "$BIN_B" "$B_PORT" "${BENCH_B_ARGS:-}" "${BENCH_B_ENV:-}"; local b=$SIDE_PID
  local scenario script conns
  for scenario in $SCENARIOS; do
    read -r script conns <<<"$(scenario_shape "$scenario")"
    compare "$scenario" "$script" "$conns" "$a" "$AP_PORT" "$b" "$B_PORT" A B
  done
  memory A load "$a"
  memory B load "$b"
  stop "$a"
  stop "$b"
}

# Memory, in fresh processes each time (what a process keeps depends on all it did before):
# run.sh's idle-after-a-burst and streaming measurements, A and B alternating by round.
ab_memory() {
  [ "${BENCH_AB_MEMORY:-0}" = 1 ] || return 0
  make_big_file
  # Both binaries copied afresh, so both files are wholly in the page cache: the kernel maps
  # more of such a file at each fault (fault-around), and RSS otherwise followed how recently
  # each binary was built or copied (0.7 MiB of RssFile between two copies of the same bytes).
  cp "$BIN_A" "$OUT/ab-A.bin"
  cp "$BIN_B" "$OUT/ab-B.bin"
  local rep side bin args envs
  for rep in $(seq "${BENCH_AB_MEMORY_REPS:-3}"); do
    for side in A B; do
      if [ "$side" = A ]; then bin=$OUT/ab-A.bin args=${BENCH_A_ARGS:-} envs=${BENCH_A_ENV:-}
      else bin=$OUT/ab-B.bin args=${BENCH_B_ARGS:-} envs=${BENCH_B_ENV:-}; fi
      start_side "$side" "$bin" "$AP_PORT" "$args" "$envs"
      idle_burst "$side" "$SIDE_PID" "$AP_PORT"
      stop "$SIDE_PID"
      # shellcheck disable=SC2086 # ARGS is a list of flags, split on purpose
      LAUNCH_ENV=($envs)
      launch "$bin" "$AP_PORT" "$OUT/ab-$side-stream.log" --auth-url "http://127.0.0.1:$STUB_BIG" --access-log off $args
      LAUNCH_ENV=()
      sleep 0.5
      stream "$side" "$LAUNCHED" "$AP_PORT"
      stop "$LAUNCHED"
    done
  done
}

ab_instructions() {
  [ "$SCENARIOS" != none ] || return 0
  command -v valgrind >/dev/null || { log "no valgrind: skipping instructions per request"; return 0; }
  local side bin args envs port prefix=$OUT/callgrind-ab
  rm -f "$prefix".*
  for side in A B; do
    if [ "$side" = A ]; then
      bin=$BIN_A args=${BENCH_A_ARGS:-} envs=${BENCH_A_ENV:-} port=$AP_PORT
    else
      bin=$BIN_B args=${BENCH_B_ARGS:-} envs=${BENCH_B_ENV:-} port=$B_PORT
    fi
    log "$side under callgrind (${IR_SECONDS} s per scenario, untimed)"
    RUNNER=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$prefix.%p")
    start_side "$side" "$bin" "$port" "$args" "$envs"
    RUNNER=()
    callgrind_scenarios "$side" "$SIDE_PID" "$port" "$prefix"
    stop "$SIDE_PID"
  done
}

ab_main() {
  install_tools
  # A is this tree's build as bench/run.sh makes it (BENCH_BUILD) unless BENCH_A names a binary.
  [ -n "${BENCH_A:-}" ] || build_proxy
  BIN_A=${BENCH_A:-$BIN}
  BIN_B=${BENCH_B:-$BIN_A}
  [ -x "$BIN_A" ] && [ -x "$BIN_B" ] || { log "BENCH_A / BENCH_B must be executables"; exit 1; }
  local scenario
  for scenario in $SCENARIOS; do scenario_shape "$scenario" >/dev/null; done
  check_ports
  if ss -Hltn "sport = :$B_PORT" | grep . >/dev/null; then
    log "port $B_PORT is taken; stop what uses it"
    exit 1
  fi
  mkdir -p "$OUT"
  rm -rf "$OUT/stub"
  make_tls # the stub's https server needs it, as in bench/run.sh and bench/profile.sh
  probe_perf
  ulimit -n 16384
  RESULTS=$OUT/ab-results.txt
  : >"$RESULTS"
  record "META date=$(date -u +%Y-%m-%dT%H:%M:%SZ) duration_s=$DURATION reps=$REPS"
  local side
  for side in A B; do
    local args_var=BENCH_${side}_ARGS env_var=BENCH_${side}_ENV bin_var=BIN_$side
    local args=${!args_var:-} envs=${!env_var:-}
    # Spaces as `+`: results.txt is one record per line of space-separated key=value pairs.
    record "META side=$side bin=${!bin_var} args=${args// /+} env=${envs// /+}"
  done
  start_stub
  ab_load
  ab_instructions
  ab_memory
  python3 "$BENCH/ab.py" "$RESULTS" | tee "$OUT/ab.md"
}

ab_main "$@"
