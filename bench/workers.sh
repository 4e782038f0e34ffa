#!/usr/bin/env bash
# Every core (issue 18 §2): auth-proxy and nginx at 1 and 2 workers on this machine's 2 cores,
# GET /protected (coalescing off: the plain path nginx also does) at 8, 64 and 256 connections.
#
#   BENCH_BUILD=release bench/workers.sh             targets: nginx1 nginx2 ap1 ap2
#   BENCH_WORKERS_TARGETS="ap1 ap2 ap2ws" BENCH_WS_BIN=... bench/workers.sh
#
# Unlike bench/run.sh nothing is pinned: the proxy, the stub (nginx, 2 workers) and wrk (2
# threads) share both cores, as they would on a 2-core host, so the figures that compare are the
# proxy processes' CPU time per request (all of a target's processes summed) and p99;
# requests/s is printed too. Each round measures every target once, in an order rotated by
# round; the medians over BENCH_REPS rounds go to bench/workers.md, which bench/report.py
# appends to BENCHMARKS.md (as bench/shield.md).
#   nginx1 / nginx2   the reference (bench/nginx/reference.conf.in), worker_processes 1 / 2,
#                     nginx2 with `reuseport` (one listener per worker)
#   ap1 / ap2         auth-proxy --worker-threads 1 / 2: one current-thread runtime per worker,
#                     each with its own SO_REUSEPORT listener (src/workers.rs)
#   ap2ws             the design it replaced, for the record: BENCH_WS_BIN, a build from before
#                     src/workers.rs (e.g. commit 2eedd3c), whose --worker-threads 2 is tokio's
#                     shared work-stealing runtime with one listener and one upstream pool
# Bounded: every wrk run is BENCH_DURATION seconds (default 5); loopback only.
set -euo pipefail
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"
PROXY_CPU=0,1
LOAD_CPU=0,1
TARGETS=${BENCH_WORKERS_TARGETS:-nginx1 nginx2 ap1 ap2}
CONNS=${BENCH_WORKERS_CONNS:-8 64 256}
# BENCH_WORKERS_COALESCE=on: auth-proxy with its default coalescing, whose map every worker
# shares (one token here, so every request that overlaps another joins it).
COALESCE=${BENCH_WORKERS_COALESCE:-off}
PORT=18095

# start_target NAME: sets PIDS (the processes whose CPU time counts) and TARGET_PORT.
start_target() {
  PIDS=() TARGET_PORT=$PORT
  case $1 in
    nginx1 | nginx2)
      local n=${1#nginx} dir=$OUT/$1
      mkdir -p "$dir"
      render "$BENCH/nginx/reference.conf.in" \
        | sed -e "s|worker_processes 1;|worker_processes $n;|" \
          -e "s|$OUT/reference|$dir|g" \
          -e "s|listen 127.0.0.1:$REF_HTTP backlog=4096;|listen 127.0.0.1:$PORT backlog=4096$([ "$n" = 2 ] && echo ' reuseport');|" \
        >"$dir/nginx.conf"
      mkdir -p "$dir/body" "$dir/proxy"
      nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
      local master=$! i
      STARTED+=("$master")
      for i in $(seq 50); do
        [ "$(pgrep -c -P "$master" || true)" -ge "$n" ] && break
        sleep 0.1
      done
      PIDS=("$master" $(pgrep -P "$master"))
      ;;
    ap1 | ap2)
      launch "$BIN" "$PORT" "$OUT/workers-$1.log" --auth-url "http://127.0.0.1:$STUB_HTTP" \
        --access-log off --protected-coalesce "$COALESCE" --worker-threads "${1#ap}"
      PIDS=("$LAUNCHED")
      ;;
    ap2ws)
      [ -x "${BENCH_WS_BIN:-}" ] || { log "ap2ws needs BENCH_WS_BIN (a build from before src/workers.rs)"; exit 1; }
      launch "$BENCH_WS_BIN" "$PORT" "$OUT/workers-$1.log" --auth-url "http://127.0.0.1:$STUB_HTTP" \
        --access-log off --protected-coalesce "$COALESCE" --worker-threads 2
      PIDS=("$LAUNCHED")
      ;;
    *) log "unknown target $1"; exit 1 ;;
  esac
}

stop_target() {
  local pid
  for pid in "${PIDS[@]}"; do stop "$pid"; done
  sleep 0.3
}

ticks_of() { local pid sum=0; for pid in "$@"; do sum=$((sum + $(cpu_ticks "$pid"))); done; echo "$sum"; }
# Every thread of the PIDS, "TID TICKS" per line: how the work split between the workers.
task_ticks() {
  local pid t
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      echo "${t##*/} $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$t/stat")"
    done
  done
}
# The busiest thread's share of the CPU time between two task_ticks snapshots (0.5 = an even
# split over two workers; 1.0 = one did everything), for the few-connections case where
# SO_REUSEPORT's hash may put most connections on one listener.
busiest_share() {
  awk 'NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; if (d > m) m = d; s += d }
       END { if (s > 0) printf "%.2f", m / s; else print 0 }' "$1" "$2"
}

main_workers() {
  install_tools
  build_proxy
  mkdir -p "$OUT"
  RESULTS=$OUT/workers.txt
  : >"$RESULTS"
  # The stub gets two workers, so that it is not what limits a 2-worker proxy.
  make_tls
  mkdir -p "$OUT/stub"
  render "$BENCH/nginx/stub.conf.in" | sed 's|worker_processes 1;|worker_processes 2;|' >"$OUT/stub/nginx.conf"
  nginx -p "$OUT/stub" -c "$OUT/stub/nginx.conf" -e "$OUT/stub/error.log" &
  STARTED+=("$!")
  sleep 1
  local conns rep target i order
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')
  for conns in $CONNS; do
    for rep in $(seq "$REPS"); do
      read -ra order <<<"$TARGETS"
      for ((i = 0; i < ${#order[@]}; i++)); do
        target=${order[$(((i + rep) % ${#order[@]}))]}
        start_target "$target"
        wrk -t2 -c"$conns" -d"${WARMUP}s" -s "$BENCH/wrk/protected.lua" "http://127.0.0.1:$TARGET_PORT/" >/dev/null
        local before after line
        before=$(ticks_of "${PIDS[@]}")
        task_ticks "${PIDS[@]}" >"$OUT/tasks.before"
        line=$(wrk -t2 -c"$conns" -d"${DURATION}s" --timeout 5s --latency -s "$BENCH/wrk/protected.lua" \
          "http://127.0.0.1:$TARGET_PORT/" | grep '^RESULT')
        after=$(ticks_of "${PIDS[@]}")
        task_ticks "${PIDS[@]}" >"$OUT/tasks.after"
        local busiest
        busiest=$(busiest_share "$OUT/tasks.before" "$OUT/tasks.after")
        record "WORKERS target=$target conns=$conns rep=$rep ${line#RESULT } cpu_ticks=$((after - before)) clk_tck=$(getconf CLK_TCK) busiest=$busiest"
        log "$target c$conns rep $rep: ${line#RESULT } cpu_ticks=$((after - before)) busiest=$busiest"
        stop_target
      done
    done
  done
  local load_end ws_note=""
  load_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')
  [[ " $TARGETS " == *" ap2ws "* ]] && ws_note="BENCH_WS_BIN=$BENCH_WS_BIN"
  python3 - "$RESULTS" "$LOAD_START" "$load_end" "$TARGETS" "$CONNS" "$REPS" "$DURATION" "$ws_note" "$BUILD" \
    >"$BENCH/workers.md" <<'PY'
import datetime, re, statistics, sys
results, load_start, load_end, targets, conns, reps, duration, ws_note, build = sys.argv[1:10]
env = f'BENCH_BUILD={build} BENCH_REPS={reps} BENCH_DURATION={duration} BENCH_WORKERS_TARGETS="{targets}" BENCH_WORKERS_CONNS="{conns}"'
if ws_note:
    env += f" {ws_note}"
print("## Every core: 1 and 2 workers, auth-proxy and nginx\n")
print(f"`{env} bench/workers.sh` ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%MZ}; "
      f"load average at start {load_start}, at end {load_end}). Nothing pinned: the proxy, the stub "
      "(nginx, 2 workers) and wrk (2 threads) share this machine's 2 cores, as on a 2-core host; "
      "`GET /protected`, coalescing off; each round measures every target once, order rotated; "
      f"medians of {reps} rounds of {duration} s. CPU per request sums all of a target's threads "
      "and processes. The busiest thread's share is how the work split between the workers "
      "(0.50 = even over two; 1.00 = one did everything): for auth-proxy its worker threads, "
      "for nginx its worker processes.\n")
print("- `ap1`, `ap2`: auth-proxy `--worker-threads 1` / `2`: one current-thread runtime per "
      "worker, each with its own `SO_REUSEPORT` listener and upstream pool (`src/workers.rs`)")
print("- `ap2ws`: the design this replaced, `--worker-threads 2` as tokio's shared work-stealing "
      "runtime, one listener, one pool (a build from before `src/workers.rs`)")
print("- `nginx1`, `nginx2`: the reference config with `worker_processes 1` / `2` (`reuseport`)\n")
rows = {}
for line in open(results):
    f = dict(re.findall(r"(\w+)=(\S+)", line))
    req = int(f["requests"])
    if req == 0:
        continue
    key = (f["target"], int(f["conns"]))
    r = rows.setdefault(key, {"rps": [], "p99": [], "cpu": [], "busiest": []})
    r["busiest"].append(float(f.get("busiest", "nan")))
    r["rps"].append(req / (int(f["duration_us"]) / 1e6))
    r["p99"].append(int(f["p99_us"]) / 1000)
    r["cpu"].append(int(f["cpu_ticks"]) / int(f["clk_tck"]) * 1e6 / req)
print("| target | conns | requests/s | p99 ms | proxy CPU µs/request | busiest thread's share (min–max) |")
print("|---|---:|---:|---:|---:|---:|")
for (t, c), r in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    m = statistics.median
    b = r["busiest"]
    print(f"| {t} | {c} | {m(r['rps']):,.0f} | {m(r['p99']):.2f} | {m(r['cpu']):.1f} "
          f"| {m(b):.2f} ({min(b):.2f}–{max(b):.2f}) |")
PY
  cat "$BENCH/workers.md"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main_workers "$@"; fi
