#!/usr/bin/env bash
# auth-proxy with its defaults (coalescing on) and with a 1 s micro-cache, against nginx as the
# plain reverse proxy, under `GET /protected` rotating 8 tokens over 64 connections: CPU per
# request, requests/s and p99, measured back to back in alternating rounds (run.sh's compare).
#
#   bench/shield_nginx.sh     (~2 minutes after `cargo build --release`; writes bench/shield_nginx.md)
#
# nginx forwards every request (it has no coalescing without proxy_cache), so this is what a
# deployment gains by putting auth-proxy where nginx would be, with the central service (the
# stub) answering at once. All on 127.0.0.1; every process started here is killed on exit.
set -euo pipefail
# shellcheck source=bench/run.sh
source "$(dirname "$0")/run.sh"

shield_nginx_main() {
  install_tools
  BUILD=release
  build_proxy
  check_ports
  mkdir -p "$OUT"
  ulimit -n 16384
  RESULTS=$OUT/shield-nginx.txt
  : >"$RESULTS"
  record "META date=$(date -u +%Y-%m-%dT%H:%M:%SZ) duration_s=$DURATION reps=$REPS"
  # The shield's stub answers 200 to any token (the plain stub knows one); both proxies use it.
  make_tls
  rm -rf "$OUT/shield-stub"
  start_nginx shield-stub "$LOAD_CPU"
  STUB_HTTP=18181
  start_nginx reference "$PROXY_CPU"
  local ref=$NGINX_PID ref_w
  ref_w=$(nginx_worker "$ref")
  start_proxy off "http://127.0.0.1:$STUB_HTTP"
  compare protected8_defaults protected_8tokens.lua 64 "$AP_PID" "$AP_PORT" "$ref_w" "$REF_HTTP"
  stop "$AP_PID"
  start_proxy off "http://127.0.0.1:$STUB_HTTP" --protected-cache-ttl 1s
  compare protected8_cache1s protected_8tokens.lua 64 "$AP_PID" "$AP_PORT" "$ref_w" "$REF_HTTP"
  stop "$AP_PID"
  stop "$ref"
  python3 - "$RESULTS" "$BENCH" >"$BENCH/shield_nginx.md" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import report
records = report.parse(sys.argv[1])
rows = report.load_rows(records)
date = next(r["date"] for r in records if r["kind"] == "META")
out = [f"Against nginx, 8 tokens over 64 connections (`bash bench/shield_nginx.sh`, {date}; "
       "ratios are the median of back-to-back rounds, their range in brackets):", "",
       "| auth-proxy | CPU per request, auth-proxy / nginx | requests/s ratio | p99 ratio |",
       "|---|---:|---:|---:|"]
for scenario, label in (("protected8_defaults", "defaults (coalescing on)"),
                        ("protected8_cache1s", "`--protected-cache-ttl 1s`")):
    a, n = rows[("auth-proxy", scenario)], rows[("nginx", scenario)]
    cells = []
    for key in ("cpu_us", "rps", "p99_ms"):
        rounds = report.paired_ratios(a, n, key)
        spread = f" ({min(rounds):.2f}–{max(rounds):.2f})" if rounds else ""
        cells.append(f"{report.load_ratio(a, n, key):.2f}×{spread}")
    out.append(f"| {label} | " + " | ".join(cells) + " |")
print("\n".join(out))
EOF
  log "wrote $BENCH/shield_nginx.md"
}

shield_nginx_main "$@"
