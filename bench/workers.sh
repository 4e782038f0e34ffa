#!/usr/bin/env bash
# Every core (issue 18 §2): auth-proxy and nginx at 1 and 2 workers on this machine's 2 cores,
# GET /protected (coalescing off: the plain path nginx also does) at 8, 64 and 256 connections.
#
#   BENCH_BUILD=release bench/workers.sh             targets: nginx1 nginx2 ap1 ap2
#   BENCH_WORKERS_TARGETS="ap1 ap2 ap2rp" BENCH_BIN=... bench/workers.sh
#
# Unlike bench/run.sh nothing is pinned: the proxy, the stub (nginx, 2 workers) and wrk (2
# threads) share both cores, as they would on a 2-core host, so the figures that compare are the
# proxy processes' CPU time per request (all of a target's processes summed) and p99;
# requests/s is printed too. Each round measures every target once, in an order rotated by
# round; the medians over BENCH_REPS rounds go to bench/out/workers.md.
#   nginx1 / nginx2   the reference (bench/nginx/reference.conf.in), worker_processes 1 / 2,
#                     nginx2 with `reuseport` (one listener per worker)
#   ap1 / ap2         auth-proxy --worker-threads 1 (current-thread) / 2 (work-stealing)
#   ap2rp             two auth-proxy processes, --worker-threads 1 each, on one port through
#                     SO_REUSEPORT: the one-runtime-per-core design, approximated by processes.
#                     Needs a build whose listener honours AUTH_PROXY_REUSEPORT=1 (the 13-line
#                     experiment patch in bench/levers.md, "Every core"); main's does not.
# Bounded: every wrk run is BENCH_DURATION seconds (default 5); loopback only.
set -euo pipefail
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"
PROXY_CPU=0,1
LOAD_CPU=0,1
TARGETS=${BENCH_WORKERS_TARGETS:-nginx1 nginx2 ap1 ap2}
CONNS=${BENCH_WORKERS_CONNS:-8 64 256}
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
        --access-log off --protected-coalesce off --worker-threads "${1#ap}"
      PIDS=("$LAUNCHED")
      ;;
    ap2rp)
      local k
      for k in 1 2; do
        LAUNCH_ENV=(AUTH_PROXY_REUSEPORT=1)
        launch "$BIN" "$PORT" "$OUT/workers-$1-$k.log" --auth-url "http://127.0.0.1:$STUB_HTTP" \
          --access-log off --protected-coalesce off --worker-threads 1
        LAUNCH_ENV=()
        PIDS+=("$LAUNCHED")
      done
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
  for conns in $CONNS; do
    for rep in $(seq "$REPS"); do
      read -ra order <<<"$TARGETS"
      for ((i = 0; i < ${#order[@]}; i++)); do
        target=${order[$(((i + rep) % ${#order[@]}))]}
        start_target "$target"
        wrk -t2 -c"$conns" -d"${WARMUP}s" -s "$BENCH/wrk/protected.lua" "http://127.0.0.1:$TARGET_PORT/" >/dev/null
        local before after line
        before=$(ticks_of "${PIDS[@]}")
        line=$(wrk -t2 -c"$conns" -d"${DURATION}s" --timeout 5s --latency -s "$BENCH/wrk/protected.lua" \
          "http://127.0.0.1:$TARGET_PORT/" | grep '^RESULT')
        after=$(ticks_of "${PIDS[@]}")
        record "WORKERS target=$target conns=$conns rep=$rep ${line#RESULT } cpu_ticks=$((after - before)) clk_tck=$(getconf CLK_TCK)"
        log "$target c$conns rep $rep: ${line#RESULT } cpu_ticks=$((after - before))"
        stop_target
      done
    done
  done
  python3 - "$RESULTS" >"$OUT/workers.md" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = dict(re.findall(r"(\w+)=(\S+)", line))
    req = int(f["requests"])
    if req == 0:
        continue
    key = (f["target"], int(f["conns"]))
    r = rows.setdefault(key, {"rps": [], "p99": [], "cpu": []})
    r["rps"].append(req / (int(f["duration_us"]) / 1e6))
    r["p99"].append(int(f["p99_us"]) / 1000)
    r["cpu"].append(int(f["cpu_ticks"]) / int(f["clk_tck"]) * 1e6 / req)
print("| target | conns | requests/s | p99 ms | proxy CPU µs/request |")
print("|---|---:|---:|---:|---:|")
for (t, c), r in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    m = statistics.median
    print(f"| {t} | {c} | {m(r['rps']):,.0f} | {m(r['p99']):.2f} | {m(r['cpu']):.1f} |")
PY
  cat "$OUT/workers.md"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main_workers "$@"; fi
