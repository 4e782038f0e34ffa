#!/usr/bin/env bash
# Load harness: auth-proxy against nginx as the equivalent plain reverse proxy, on this machine.
#
#   bench/run.sh                 full run: 6 rounds of 5 s per proxy and scenario, medians (~10 min,
#                                plus ~12 for the PGO build the first time)
#   BENCH_QUICK=1 bench/run.sh   quick run: 2 rounds of 3 s (~4 min)
#   BENCH_PROXY_ARGS="--worker-threads 2" bench/run.sh   extra auth-proxy flags, to try a lever
#   bench/workers.sh             every core: 1 and 2 workers against nginx's, unpinned (~6 min;
#                                writes bench/workers.md, which the report carries)
#   BENCH_BUILD=release bench/run.sh   measure plain `cargo build --release` instead of the PGO
#                                build (bench/pgo.sh, the default; ~12 min more the first time)
#   BENCH_PHASES="instructions idle" bench/run.sh   only these phases (load tls instructions idle
#                                stream), reported into bench/out/report.md, not BENCHMARKS.md
#   BENCH_BIN=/path/auth-proxy bench/run.sh   measure that binary, build no auth-proxy (with
#                                BENCH_BUILD set to what it is, for the report; the hyper floor
#                                below is still built unless BENCH_FLOOR_BIN names one)
#   BENCH_BASE_BIN=/path/auth-proxy bench/run.sh   also count another build's instructions per
#                                request (the build a branch started from), as auth-proxy-base
#   BENCH_FLOOR_BIN=/path/hyper_floor bench/run.sh   the floor to count beside them (default:
#                                examples/hyper_floor.rs, built here): hyper's server and client alone
#
# Everything runs on 127.0.0.1. The proxy under test and the reference nginx are pinned to CPU 0,
# wrk and the stub central service (nginx with fixed JSON answers) to CPU 1. Every process this
# script starts is killed on exit. All numbers in BENCHMARKS.md come from bench/out/results.txt,
# which this script writes; bench/report.py only takes medians and ratios.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
OUT=$BENCH/out
export BENCH_WRK_DIR=$BENCH/wrk

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  DURATION=${BENCH_DURATION:-3}
  REPS=${BENCH_REPS:-2}
else
  # Many short rounds rather than a few long ones: on a shared machine the background load
  # changes by the minute, and the median of more back-to-back pairs is the steadier ratio.
  DURATION=${BENCH_DURATION:-5}
  REPS=${BENCH_REPS:-6}
fi
WARMUP=2
IDLE_CONNS=${BENCH_IDLE_CONNS:-2000}
IDLE_BURST_CONNS=${BENCH_IDLE_BURST_CONNS:-5000}
PROXY_CPU=0
LOAD_CPU=1

# Loopback ports: stub (http, https, 100 MiB), reference nginx (plain, logging, https, 100 MiB), auth-proxy.
# BENCH_PORT_OFFSET (e.g. 1000) moves them all, for two harness runs on one machine at once.
PORT_OFFSET=${BENCH_PORT_OFFSET:-0}
STUB_HTTP=$((18081 + PORT_OFFSET)) STUB_TLS=$((18443 + PORT_OFFSET)) STUB_BIG=$((18086 + PORT_OFFSET))
REF_HTTP=$((18082 + PORT_OFFSET)) REF_LOG=$((18084 + PORT_OFFSET)) REF_TLS=$((18083 + PORT_OFFSET))
REF_BIG=$((18087 + PORT_OFFSET))
AP_PORT=$((18090 + PORT_OFFSET))

STARTED=() # pids this script started, killed on exit
RESULTS=$OUT/results.txt

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
  unprobe_allocs
  local pid
  for pid in "${STARTED[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- set-up -------------------------------------------------------------------------------------

install_tools() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v perf >/dev/null || missing+=(linux-perf)
  command -v valgrind >/dev/null || missing+=(valgrind)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v taskset >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  apt-get update -qq
  local pkg available=()
  for pkg in "${missing[@]}"; do
    if [ "$pkg" = nginx ] && apt-cache policy nginx-light | grep 'Candidate: [0-9]' >/dev/null; then
      pkg=nginx-light
    fi
    if apt-cache policy "$pkg" | grep 'Candidate: [0-9]' >/dev/null; then
      available+=("$pkg")
    else
      log "no Debian package $pkg here; skipping what needs it"
    fi
  done
  # The package may start a system nginx on port 80; this script never uses it or its config.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${available[@]}" >/dev/null
}

# The build under test: BENCH_BUILD=pgo (default) is bench/pgo.sh's profile-guided build, the one
# to deploy; BENCH_BUILD=release is plain `cargo build --release`. Sets BIN, and PLAIN_BIN (the
# plain build, whose instructions per request are counted beside the PGO build's).
BUILD=${BENCH_BUILD:-pgo}
build_proxy() {
  if [ -n "${BENCH_BIN:-}" ]; then
    # A binary built elsewhere (a copy kept of a build): measured as it is, nothing built.
    BIN=$BENCH_BIN PLAIN_BIN=""
    [ -x "$BIN" ] || { log "BENCH_BIN is not an executable"; exit 1; }
    return
  fi
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet)
  PLAIN_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/auth-proxy
  BIN=$PLAIN_BIN
  case $BUILD in
    release) PLAIN_BIN="" ;;
    pgo)
      bash "$BENCH/pgo.sh"
      BIN=$ROOT/target/pgo/auth-proxy
      ;;
    *) log "BENCH_BUILD is pgo or release"; exit 1 ;;
  esac
  [ -x "$BIN" ] || { log "no binary at $BIN"; exit 1; }
}

# build_floor: examples/hyper_floor.rs (hyper's HTTP/1 server and client and nothing else), whose
# instructions per request are the floor under auth-proxy's; sets FLOOR_BIN.
build_floor() {
  if [ -n "${BENCH_FLOOR_BIN:-}" ]; then
    FLOOR_BIN=$BENCH_FLOOR_BIN
  else
    log "cargo build --release --example hyper_floor"
    (cd "$ROOT" && cargo build --release --example hyper_floor --quiet)
    FLOOR_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/hyper_floor
  fi
  [ -x "$FLOOR_BIN" ] || { log "no floor binary at $FLOOR_BIN"; exit 1; }
}

check_ports() {
  local port
  for port in $STUB_HTTP $STUB_TLS $STUB_BIG $REF_HTTP $REF_LOG $REF_TLS $REF_BIG $AP_PORT; do
    if ss -Hltn "sport = :$port" | grep . >/dev/null; then
      log "port $port is taken; stop what uses it"
      exit 1
    fi
  done
}

make_tls() {
  local dir=$OUT/tls
  [ -s "$dir/stub.pem" ] && return
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=bench CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=stub.bench.local" \
    -keyout "$dir/stub.key" -out "$dir/stub.csr" 2>/dev/null
  printf 'subjectAltName=DNS:stub.bench.local,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    >"$dir/stub.ext"
  openssl x509 -req -in "$dir/stub.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 30 -extfile "$dir/stub.ext" -out "$dir/stub.pem" 2>/dev/null
}

make_big_file() {
  mkdir -p "$OUT/www-big"
  [ "$(stat -c %s "$OUT/www-big/protected" 2>/dev/null || echo 0)" = 104857600 ] && return
  head -c 104857600 /dev/zero >"$OUT/www-big/protected"
}

# Fills the @NAME@ placeholders of an nginx template.
render() {
  sed -e "s|@OUT@|$OUT|g" \
    -e "s|@STUB_HTTP@|$STUB_HTTP|g" -e "s|@STUB_TLS@|$STUB_TLS|g" -e "s|@STUB_BIG@|$STUB_BIG|g" \
    -e "s|@REF_HTTP@|$REF_HTTP|g" -e "s|@REF_LOG@|$REF_LOG|g" -e "s|@REF_TLS@|$REF_TLS|g" \
    -e "s|@REF_BIG@|$REF_BIG|g" \
    -e "s|@ANSWER_PROTECTED@|{\"email\":\"user@example.com\",\"message\":\"Access granted\"}|g" \
    -e "s|@ANSWER_TOKENS@|{\"access_token\":\"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIn0.c2lnbmF0dXJl\",\"refresh_token\":\"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIiwidHlwIjoicmVmcmVzaCJ9.c2ln\",\"token_type\":\"bearer\"}|g" \
    -e "s|@ANSWER_REGISTER@|{\"id\":42,\"email\":\"user@example.com\",\"message\":\"User registered\"}|g" \
    "$1"
}

# --- processes ----------------------------------------------------------------------------------

# start_nginx NAME CPU: runs bench/nginx/NAME.conf.in under its own prefix; sets NGINX_PID (master).
start_nginx() {
  local name=$1 cpu=$2 dir=$OUT/$1
  mkdir -p "$dir"
  rm -f "$dir/access.log"
  render "$BENCH/nginx/$name.conf.in" >"$dir/nginx.conf"
  taskset -c "$cpu" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  NGINX_PID=$!
  STARTED+=("$NGINX_PID")
  local i
  for i in $(seq 50); do
    [ -n "$(pgrep -P "$NGINX_PID" || true)" ] && [ -s "$dir/nginx.pid" ] && return
    sleep 0.1
  done
  log "nginx $name did not start:"; cat "$dir/error.log" >&2; exit 1
}

# start_stub: the stub central service on the load CPU; sets NGINX_PID. Its https server needs
# the certificate that make_tls makes on first use, so every script that starts the stub (run.sh,
# pgo.sh's training run, ab.sh, profile.sh) starts it here, and each works on a fresh clone.
start_stub() {
  make_tls
  start_nginx stub "$LOAD_CPU"
}

# The one worker of an nginx master: the process that does the proxying.
nginx_worker() { pgrep -P "$1" | head -1; }

# launch BIN PORT LOG [flags...]: an auth-proxy on 127.0.0.1:PORT, pinned to the proxy CPU, its
# stderr in LOG; run under the words of the RUNNER array (e.g. valgrind) and with the NAME=value
# words of LAUNCH_ENV in its environment when they are set. Returns once it listens; sets LAUNCHED.
RUNNER=() LAUNCH_ENV=()
launch() {
  local bin=$1 port=$2 err=$3 i
  shift 3
  : >"$err"
  ulimit -n 16384
  env "${LAUNCH_ENV[@]}" taskset -c "$PROXY_CPU" "${RUNNER[@]}" "$bin" --listen "127.0.0.1:$port" "$@" \
    2>>"$err" &
  LAUNCHED=$!
  STARTED+=("$LAUNCHED")
  for i in $(seq 300); do
    grep -q 'listening on http://' "$err" && return
    sleep 0.1
  done
  log "$bin did not start:"; cat "$err" >&2; exit 1
}

# start_proxy LOG_MODE AUTH_URL [extra flags...]: the build under test; sets AP_PID.
start_proxy() {
  local mode=$1 url=$2
  shift 2
  # shellcheck disable=SC2086 # BENCH_PROXY_ARGS is a list of extra flags, split on purpose
  launch "$BIN" "$AP_PORT" "$OUT/auth-proxy-$mode.log" --auth-url "$url" --access-log "$mode" "$@" \
    ${BENCH_PROXY_ARGS:-}
  AP_PID=$LAUNCHED
}

stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local pid kept=()
  for pid in "${STARTED[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  STARTED=("${kept[@]}")
}

# --- measurements -------------------------------------------------------------------------------

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
user_ticks() { awk '{ sub(/^.*\) /, ""); print $12 }' "/proc/$1/stat"; }
status_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

# perf: hardware instruction counts where the CPU exposes them; syscall and context-switch counts
# (tracepoint and software events) work in most VMs even where instructions do not.
PERF_OK=0 PERF_EVENTS=""
probe_perf() {
  command -v perf >/dev/null || return 0
  if perf stat -x, -e instructions true 2>&1 | grep '^[0-9]*,,instructions' >/dev/null; then
    PERF_OK=1 PERF_EVENTS=instructions
  fi
  if perf stat -x, -e raw_syscalls:sys_enter,context-switches true 2>&1 | grep '^[0-9]*,,raw_syscalls' >/dev/null; then
    PERF_EVENTS=${PERF_EVENTS:+$PERF_EVENTS,}raw_syscalls:sys_enter,context-switches
  fi
}

# perf_count FILE EVENT: the counter's value, or "na".
perf_count() {
  local value
  value=$(awk -F, -v ev="$2" '$3 == ev && $1 ~ /^[0-9]+$/ { print $1 }' "$1" 2>/dev/null)
  echo "${value:-na}"
}

record() { printf '%s\n' "$*" >>"$RESULTS"; }

# warm PORT SCRIPT CONNS: an unrecorded wrk run (pools filled, allocator grown).
warm() {
  taskset -c "$LOAD_CPU" wrk -t1 -c"$3" -d"${WARMUP}s" -s "$BENCH/wrk/$2" \
    "http://127.0.0.1:$1/" >/dev/null
}

# compare SCENARIO SCRIPT CONNS AP_PID AP_PORT REF_PID REF_PORT [AP_NAME REF_NAME]: both warmed
# up, then REPS rounds that each measure both, the order alternating by round. On a shared
# machine the background load drifts over minutes; interleaved, both proxies see the same drift.
# The names (targets in results.txt) default to auth-proxy and nginx.
compare() {
  local scenario=$1 script=$2 conns=$3 ap=$4 ap_port=$5 ref=$6 ref_port=$7 rep
  local ap_name=${8:-auth-proxy} ref_name=${9:-nginx}
  warm "$ap_port" "$script" "$conns"
  warm "$ref_port" "$script" "$conns"
  for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then
      measure "$ap_name" "$scenario" "$ap" "$ap_port" "$script" "$conns" "$rep"
      measure "$ref_name" "$scenario" "$ref" "$ref_port" "$script" "$conns" "$rep"
    else
      measure "$ref_name" "$scenario" "$ref" "$ref_port" "$script" "$conns" "$rep"
      measure "$ap_name" "$scenario" "$ap" "$ap_port" "$script" "$conns" "$rep"
    fi
  done
}

# measure TARGET SCENARIO PID PORT SCRIPT CONNS REP: one bounded wrk run, one line.
measure() {
  local target=$1 scenario=$2 pid=$3 port=$4 script=$5 conns=$6 rep=$7 line
  local perf_out=$OUT/perf-$target-$scenario-$rep.csv perf_pid=""
  if [ -n "$PERF_EVENTS" ]; then
    perf stat -x, -e "$PERF_EVENTS" -o "$perf_out" -p "$pid" -- sleep "$DURATION" &
    perf_pid=$!
    STARTED+=("$perf_pid")
  fi
  local before after user_before user_after
  before=$(cpu_ticks "$pid") user_before=$(user_ticks "$pid")
  line=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 5s --latency \
    -s "$BENCH/wrk/$script" "http://127.0.0.1:$port/" | tee -a "$OUT/wrk.log" | grep '^RESULT')
  after=$(cpu_ticks "$pid") user_after=$(user_ticks "$pid")
  [ -n "$perf_pid" ] && { wait "$perf_pid" 2>/dev/null || true; }
  record "LOAD target=$target scenario=$scenario rep=$rep conns=$conns ${line#RESULT}" \
    "cpu_ticks=$((after - before)) user_ticks=$((user_after - user_before)) clk_tck=$(getconf CLK_TCK)" \
    "instructions=$(perf_count "$perf_out" instructions)" \
    "syscalls=$(perf_count "$perf_out" raw_syscalls:sys_enter)" \
    "ctx_switches=$(perf_count "$perf_out" context-switches)"
  log "$target $scenario rep $rep: ${line#RESULT }"
}

# Heap allocations per request: uprobes on the C library's malloc/realloc/calloc, counted by
# perf stat over a separate short run (a uprobe costs a trap per call, so never during timing).
PROBES_ADDED=0
probe_allocs() {
  [ -n "$PERF_EVENTS" ] || return 0
  local libc
  libc=$(ldd "$BIN" | awk '/libc\.so/ { print $3 }')
  [ -n "$libc" ] || return 0
  if perf probe -x "$libc" -a malloc -a realloc -a calloc >/dev/null 2>&1; then PROBES_ADDED=1; fi
  perf stat -x, -e probe_libc:malloc true 2>&1 | grep '^[0-9]*,,probe_libc:malloc' >/dev/null || return 0
  ALLOC_EVENTS=probe_libc:malloc,probe_libc:realloc,probe_libc:calloc
}
unprobe_allocs() {
  [ "$PROBES_ADDED" = 1 ] && perf probe -d 'probe_libc:*' >/dev/null 2>&1
  PROBES_ADDED=0
}

allocs() { # allocs TARGET SCENARIO PID PORT SCRIPT
  [ -n "${ALLOC_EVENTS:-}" ] || return 0
  local out=$OUT/allocs-$1-$2.csv line
  perf stat -x, -e "$ALLOC_EVENTS" -o "$out" -p "$3" -- sleep 3 &
  local perf_pid=$!
  STARTED+=("$perf_pid")
  line=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d3s -s "$BENCH/wrk/$5" "http://127.0.0.1:$4/" | grep '^RESULT')
  wait "$perf_pid" 2>/dev/null || true
  record "ALLOCS target=$1 scenario=$2 ${line#RESULT}" \
    "malloc=$(perf_count "$out" probe_libc:malloc) realloc=$(perf_count "$out" probe_libc:realloc)" \
    "calloc=$(perf_count "$out" probe_libc:calloc)"
}

memory() { # memory TARGET PHASE PID
  record "MEM target=$1 phase=$2 rss_kb=$(status_kb "$3" VmRSS) hwm_kb=$(status_kb "$3" VmHWM)"
}

# stream TARGET PID PORT: a slow reader pulls 100 MiB through the proxy; sample RSS meanwhile.
stream() {
  local target=$1 pid=$2 port=$3 before peak=0 rss
  before=$(status_kb "$pid" VmRSS)
  taskset -c "$LOAD_CPU" curl -s -o /dev/null --limit-rate 20M --max-time 60 \
    -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln' \
    -w '%{http_code} %{size_download}\n' "http://127.0.0.1:$port/protected" >"$OUT/curl-$target.txt" &
  local curl_pid=$!
  STARTED+=("$curl_pid")
  while kill -0 "$curl_pid" 2>/dev/null; do
    rss=$(status_kb "$pid" VmRSS)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 0.05
  done
  wait "$curl_pid" || true
  local code bytes
  read -r code bytes <"$OUT/curl-$target.txt"
  record "STREAM target=$target status=$code bytes=$bytes rss_before_kb=$before rss_peak_kb=$peak hwm_kb=$(status_kb "$pid" VmHWM)"
  log "$target stream: status $code, $bytes bytes, RSS $before → peak $peak KiB"
}

idle() { # idle TARGET PID PORT
  local line
  line=$(taskset -c "$LOAD_CPU" timeout 180 python3 "$BENCH/idle_conns.py" "$3" "$2" "$IDLE_CONNS")
  record "${line/IDLE/IDLE target=$1}"
  log "$1 idle: $line"
}

# idle_burst TARGET PID PORT: IDLE_BURST_CONNS connections opened at once, one request each, held.
idle_burst() {
  local line
  line=$(taskset -c "$LOAD_CPU" timeout 180 python3 "$BENCH/idle_conns.py" "$3" "$2" "$IDLE_BURST_CONNS" burst)
  record "${line/IDLEBURST/IDLEBURST target=$1}"
  log "$1 idle after a burst: $line"
}

# Instructions per request: user-space instructions counted by callgrind, the steadiest figure on
# a shared machine (it does not move with load; perf has no hardware counters in most VMs). Under
# valgrind a process runs ~50× slower, so these are separate, untimed runs: collection is switched
# on only around a bounded wrk run after a warm-up, and each dump holds one scenario.
IR_SECONDS=${BENCH_IR_SECONDS:-5}
IR_DUMPS=0
callgrind_scenario() { # callgrind_scenario TARGET SCENARIO PID PORT SCRIPT OUT_PREFIX
  local target=$1 scenario=$2 pid=$3 port=$4 script=$5 prefix=$6 line file ir i
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s --timeout 10s -s "$BENCH/wrk/$script" "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  line=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${IR_SECONDS}s" --timeout 10s -s "$BENCH/wrk/$script" \
    "http://127.0.0.1:$port/" | grep '^RESULT')
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  IR_DUMPS=$((IR_DUMPS + 1))
  file=$prefix.$pid.$IR_DUMPS
  for i in $(seq 100); do [ -s "$file" ] && break; sleep 0.1; done
  ir=$(awk '$1 == "totals:" { print $2 }' "$file" 2>/dev/null)
  record "INSTR target=$target scenario=$scenario ${line#RESULT } ir=${ir:-na}"
  log "$target $scenario under callgrind: ${ir:-na} instructions, ${line#RESULT }"
}

# callgrind_scenarios TARGET PID PORT OUT_PREFIX: every instruction-count scenario, in dump order.
callgrind_scenarios() {
  local target=$1 pid=$2 port=$3 prefix=$4 args
  IR_DUMPS=0
  for args in "protected_c64 protected.lua" "login_c64 login.lua" "register_c64 register.lua"; do
    set -- $args
    callgrind_scenario "$target" "$1" "$pid" "$port" "$2" "$prefix"
  done
}

# callgrind_proxy TARGET BIN OUT_PREFIX: BIN under callgrind through every instruction-count scenario.
callgrind_proxy() {
  RUNNER=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$3.%p")
  # shellcheck disable=SC2086 # BENCH_PROXY_ARGS is a list of extra flags, split on purpose
  launch "$2" "$AP_PORT" "$OUT/$1-callgrind.log" --auth-url "http://127.0.0.1:$STUB_HTTP" \
    --access-log off ${BENCH_PROXY_ARGS:-}
  RUNNER=()
  callgrind_scenarios "$1" "$LAUNCHED" "$AP_PORT" "$3"
  stop "$LAUNCHED"
}

phase_instructions() {
  command -v valgrind >/dev/null || { log "no valgrind: skipping instructions per request"; return 0; }
  log "phase: instructions per request (callgrind, ${IR_SECONDS} s per scenario, untimed)"
  local prefix=$OUT/callgrind-ir
  rm -f "$prefix".*
  callgrind_proxy auth-proxy "$BIN" "$prefix"
  [ -z "${PLAIN_BIN:-}" ] || callgrind_proxy auth-proxy-release "$PLAIN_BIN" "$prefix"
  [ -z "${BENCH_BASE_BIN:-}" ] || callgrind_proxy auth-proxy-base "$BENCH_BASE_BIN" "$prefix"
  build_floor
  callgrind_proxy hyper-floor "$FLOOR_BIN" "$prefix"

  # nginx without its master process (`master_process off`): the one process is the worker, and
  # valgrind's control channel reaches it directly.
  local dir=$OUT/reference
  mkdir -p "$dir"
  rm -f "$dir/nginx.pid"
  { echo "master_process off;"; render "$BENCH/nginx/reference.conf.in"; } >"$dir/nginx-callgrind.conf"
  taskset -c "$PROXY_CPU" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$prefix.%p" \
    nginx -p "$dir" -c "$dir/nginx-callgrind.conf" -e "$dir/error.log" 2>"$OUT/nginx-callgrind.log" &
  local ng=$! i
  STARTED+=("$ng")
  for i in $(seq 300); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
  sleep 1
  callgrind_scenarios nginx "$ng" "$REF_HTTP" "$prefix"
  stop "$ng"
}

# --- phases -------------------------------------------------------------------------------------

phase_load() {
  log "phase: load, plain http upstream, access log off"
  start_nginx reference "$PROXY_CPU"; local ref=$NGINX_PID ref_w
  ref_w=$(nginx_worker "$ref")
  start_proxy off "http://127.0.0.1:$STUB_HTTP"; local ap=$AP_PID
  sleep 0.5
  memory nginx start "$ref_w"
  memory auth-proxy start "$ap"
  local args
  for args in "protected_c64 protected.lua 64" "protected_c256 protected.lua 256" \
    "login_c64 login.lua 64" "register_c64 register.lua 64"; do
    set -- $args
    compare "$1" "$2" "$3" "$ap" "$AP_PORT" "$ref_w" "$REF_HTTP"
  done
  memory nginx load "$ref_w"
  memory auth-proxy load "$ap"
  if [ -n "${ALLOC_EVENTS:-}" ]; then
    log "heap allocations per request (uprobes; separate 3 s runs, not timed)"
    for args in "protected_c64 protected.lua" "login_c64 login.lua" "register_c64 register.lua"; do
      set -- $args
      allocs auth-proxy "$1" "$ap" "$AP_PORT" "$2"
      allocs nginx "$1" "$ref_w" "$REF_HTTP" "$2"
    done
  fi
  stop "$ap"

  log "phase: load, access log on (auth-proxy → file; nginx server with access_log → file)"
  start_proxy on "http://127.0.0.1:$STUB_HTTP"; ap=$AP_PID
  compare protected_c64_log protected.lua 64 "$ap" "$AP_PORT" "$ref_w" "$REF_LOG"
  stop "$ap"
  stop "$ref"
}

phase_tls() {
  log "phase: load, https upstream (TLS to the stub, pooled)"
  start_nginx reference "$PROXY_CPU"; local ref=$NGINX_PID ref_w
  ref_w=$(nginx_worker "$ref")
  start_proxy off "https://127.0.0.1:$STUB_TLS" --upstream-ca "$OUT/tls/ca.pem"; local ap=$AP_PID
  compare tls_protected_c64 protected.lua 64 "$ap" "$AP_PORT" "$ref_w" "$REF_TLS"
  stop "$ap"
  stop "$ref"
}

phase_idle() {
  log "phase: $IDLE_CONNS idle keep-alive connections (fresh processes)"
  start_nginx reference "$PROXY_CPU"; local ref=$NGINX_PID
  idle nginx "$(nginx_worker "$ref")" "$REF_HTTP"
  stop "$ref"
  start_proxy off "http://127.0.0.1:$STUB_HTTP"
  idle auth-proxy "$AP_PID" "$AP_PORT"
  stop "$AP_PID"
  log "phase: $IDLE_BURST_CONNS keep-alive connections opened at once, then idle (fresh processes)"
  start_nginx reference "$PROXY_CPU"; ref=$NGINX_PID
  idle_burst nginx "$(nginx_worker "$ref")" "$REF_HTTP"
  stop "$ref"
  start_proxy off "http://127.0.0.1:$STUB_HTTP"
  idle_burst auth-proxy "$AP_PID" "$AP_PORT"
  stop "$AP_PID"
}

phase_stream() {
  log "phase: 100 MiB response to a 20 MB/s reader (fresh processes)"
  start_nginx reference "$PROXY_CPU"; local ref=$NGINX_PID
  stream nginx "$(nginx_worker "$ref")" "$REF_BIG"
  stop "$ref"
  start_proxy off "http://127.0.0.1:$STUB_BIG"
  stream auth-proxy "$AP_PID" "$AP_PORT"
  stop "$AP_PID"
}

main() {
  install_tools
  build_proxy
  check_ports
  rm -rf "$OUT/reference" "$OUT/stub" "$OUT"/perf-*.csv "$OUT/wrk.log"
  mkdir -p "$OUT"
  make_big_file
  probe_perf
  probe_allocs
  ulimit -n 16384
  : >"$RESULTS"
  record "META date=$(date -u +%Y-%m-%dT%H:%M:%SZ) duration_s=$DURATION reps=$REPS ir_seconds=$IR_SECONDS quick=${BENCH_QUICK:-0} perf=$PERF_OK perf_events=${PERF_EVENTS:-none} idle_conns=$IDLE_CONNS idle_burst_conns=$IDLE_BURST_CONNS"
  local args=${BENCH_PROXY_ARGS:-}
  local phases=${BENCH_PHASES:-load tls instructions idle stream} phase
  record "META proxy_args=${args// /+} build=$BUILD bin=$BIN base_bin=${BENCH_BASE_BIN:-} phases=${phases// /+}"
  record "META load_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')"
  start_stub
  for phase in $phases; do "phase_$phase"; done
  record "META load_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')"
  local report=$ROOT/BENCHMARKS.md
  [ -z "${BENCH_PHASES:-}" ] || report=$OUT/report.md
  python3 "$BENCH/report.py" "$RESULTS" "$BIN" "$0" >"$report"
  log "wrote $report"
}

# bench/profile.sh sources this file for its functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
