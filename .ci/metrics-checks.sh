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

CHECK_NAME=metrics-checks
# shellcheck source=.ci/lib.sh
source .ci/lib.sh
find_bin
apt_install promtool prometheus
log "$(promtool --version 2>&1 | head -n1)"

start_proxy --metrics-listen 127.0.0.1:0
for _ in $(seq 1 50); do  # printed just after "listening on"
  metrics=$(grep -o 'metrics at http://[^ ]*' "$work/proxy.log" | head -n1 | sed 's/^metrics at //') || true
  [[ -n ${metrics:-} ]] && break
  sleep 0.1
done
[[ ${metrics:-} == http://127.0.0.1:*/metrics ]] \
  || { cat "$work/proxy.log" >&2; die "no loopback 'metrics at' line"; }

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
