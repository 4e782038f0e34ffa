#!/usr/bin/env bash
# Lints what --metrics-listen publishes, against a built binary started with --dev:
#   (a) a scrape after a mix of requests passes `promtool check metrics` (Prometheus' own linter:
#       names, units, _total suffixes, HELP/TYPE), and
#   (b) deploy/prometheus/alerts.yml passes `promtool check rules`.
# promtool comes from Debian's `prometheus` package, installed here if missing (as
# docs-checks.sh installs Chromium). The Rust tests (tests/metrics.rs) parse the same
# exposition with a Rust parser and need no promtool. Only 127.0.0.1 is contacted.
#
#   AUTH_PROXY_BIN   binary to test (default: target/release/auth-proxy, else target/debug/)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'metrics-checks: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

bin=${AUTH_PROXY_BIN:-}
if [[ -z $bin ]]; then
  for candidate in target/release/auth-proxy target/debug/auth-proxy; do
    if [[ -x $candidate ]]; then bin=$candidate; break; fi
  done
fi
[[ -n $bin && -x $bin ]] || die "no binary: build one or set AUTH_PROXY_BIN"

if ! command -v promtool >/dev/null; then
  log "installing Debian's prometheus (for promtool)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
log "$(promtool --version 2>&1 | head -n1)"

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

"$bin" --dev --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 100); do
  metrics=$(grep -o 'metrics at http://[^ ]*' "$work/proxy.log" | head -n1 | sed 's/^metrics at //') || true
  url=$(grep -o 'listening on http://[^ ]*' "$work/proxy.log" | head -n1 | sed 's/^listening on //') || true
  [[ -n ${metrics:-} && -n ${url:-} ]] && break
  kill -0 "$proxy_pid" 2>/dev/null || { cat "$work/proxy.log" >&2; die "the proxy exited"; }
  sleep 0.1
done
[[ ${metrics:-} == http://127.0.0.1:*/metrics && ${url:-} == http://127.0.0.1:* ]] \
  || { cat "$work/proxy.log" >&2; die "no loopback 'metrics at' / 'listening on' lines"; }

# A mix that fills most series: a registration, a 422, a 401, a 404, a health check.
curl -s -o /dev/null -H 'content-type: application/json' \
  -d '{"email":"promtool@example.com","password":"pw-not-a-secret"}' "$url/register"
curl -s -o /dev/null -H 'content-type: application/json' -d '{"email":"nope"}' "$url/register"
curl -s -o /dev/null "$url/protected"
curl -s -o /dev/null "$url/nowhere"
curl -s -o /dev/null "$url/healthz"
curl --fail -s "$metrics" -o "$work/metrics.txt" || die "GET $metrics failed"
grep -q '^auth_proxy_requests_total{route="/register",status="2xx"} 1$' "$work/metrics.txt" \
  || die "the registration is not counted"
promtool check metrics <"$work/metrics.txt" || die "promtool check metrics found problems"
log "ok: /metrics passes promtool check metrics ($(grep -vc '^#' "$work/metrics.txt") samples)"
promtool check rules deploy/prometheus/alerts.yml || die "promtool check rules found problems"
log "ok: deploy/prometheus/alerts.yml passes promtool check rules"
