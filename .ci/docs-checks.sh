#!/usr/bin/env bash
# Checks what the proxy publishes about itself, against a built binary started with --dev:
#   (a) /openapi.json passes PyPI's openapi-spec-validator,
#   (b) /docs renders in headless Debian Chromium and shows every operation, and its Authorize
#       dialog logs in through /login so that "Try it out" on GET /protected answers 200
#       (tests/browser/: a DOM check and a playwright-core script),
#   (c) schemathesis exercises every operation from /openapi.json, with bounded examples.
# Only 127.0.0.1 is contacted (besides the package registries when installing the tools).
#
#   AUTH_PROXY_BIN            binary to test (default: target/release/auth-proxy, else target/debug/)
#   DOCS_CHECKS_VENV          venv for the Python tools (default: target/docs-checks-venv)
#   SCHEMATHESIS_MAX_EXAMPLES test cases per operation (default: 25)
#   SCHEMATHESIS_CHECKS       checks to run (default: schemathesis's default set)
set -euo pipefail
cd "$(dirname "$0")/.."

OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
SCHEMATHESIS_VERSION=4.32.5

CHECK_NAME=docs-checks
# shellcheck source=.ci/lib.sh
source .ci/lib.sh
find_bin

ensure_venv() {
  local venv=${DOCS_CHECKS_VENV:-target/docs-checks-venv}
  if [[ ! -x $venv/bin/st || ! -x $venv/bin/openapi-spec-validator ]]; then
    log "installing openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION and schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  VENV=$(cd "$venv" && pwd)
}

ensure_chromium() {
  apt_install chromium chromium
}

check_openapi() {
  curl --fail --silent --show-error --max-time 10 "$url/openapi.json" -o "$work/openapi.json" \
    || die "GET /openapi.json failed"
  "$VENV/bin/openapi-spec-validator" "$work/openapi.json" || die "/openapi.json is not a valid OpenAPI document"
  log "ok: /openapi.json is valid"
}

check_docs_page() {
  local profile="$work/chromium-profile"
  mkdir -p "$profile"
  # The background-networking flags keep Chromium from calling out (this machine has no
  # network); virtual time lets Swagger UI fetch /openapi.json and render before the dump.
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=15000 --dump-dom "$url/docs" \
    >"$work/docs.html" 2>"$work/chromium.log" || { tail -n 20 "$work/chromium.log" >&2; die "chromium failed"; }
  python3 tests/browser/check_docs_dom.py "$work/docs.html" || die "/docs did not render every operation"
  log "ok: /docs renders in Chromium"
}

check_authorize_flow() {
  if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    log "installing playwright-core (tests/browser/package-lock.json; it drives Debian's chromium, downloads no browser)"
    npm ci --prefix tests/browser --no-audit --no-fund --silent || die "npm ci failed"
  fi
  mkdir -p target/docs-checks
  timeout 120 node tests/browser/authorize.mjs "$url" target/docs-checks/docs-authorized.png \
    || die "Swagger UI's Authorize + Try it out on GET /protected failed"
  log "ok: Authorize through /login works in /docs (screenshot: target/docs-checks/docs-authorized.png)"
}

login_for_schemathesis() {
  local email="docs-checks@example.com" password
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
  curl --fail --silent --show-error --max-time 10 -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$url/register" >/dev/null \
    || die "POST /register through the proxy failed"
  curl --fail --silent --show-error --max-time 10 --data-urlencode "username=$email" \
    --data-urlencode "password=$password" "$url/login" -o "$work/login.json" \
    || die "POST /login through the proxy failed"
  DOCS_CHECKS_ACCESS_TOKEN=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <"$work/login.json") \
    || die "/login answered without an access_token"
  export DOCS_CHECKS_ACCESS_TOKEN
}

run_schemathesis() {
  local checks=()
  [[ -n ${SCHEMATHESIS_CHECKS:-} ]] && checks=(--checks "$SCHEMATHESIS_CHECKS")
  log "schemathesis: ${SCHEMATHESIS_MAX_EXAMPLES:-25} examples per operation"
  login_for_schemathesis
  local config="$PWD/tests/browser/schemathesis.toml"
  # Run from the scratch folder: schemathesis keeps a crash cache (.schemathesis/) in its
  # working directory and replays it next time; every run here starts clean instead.
  (cd "$work" && timeout 900 "$VENV/bin/st" --config-file "$config" run "$url/openapi.json" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" --seed 20261128 --workers 1 \
    --request-timeout 15 --generation-database none --no-color "${checks[@]}") \
    || die "schemathesis found failures (see above)"
  log "ok: schemathesis"
}

ensure_venv
ensure_chromium
start_proxy
check_openapi
check_docs_page
check_authorize_flow
run_schemathesis
log "all checks passed"
