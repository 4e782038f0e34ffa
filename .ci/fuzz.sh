#!/usr/bin/env bash
# Issue 19: runs every cargo-fuzz target in fuzz/ for a bounded time (FUZZ_SECONDS, default 30
# each: about 3.5 minutes for the 7 targets, plus the build). A crash or a broken invariant
# fails CI with the input printed (hex, and cargo-fuzz's Debug form) and kept under
# fuzz/artifacts/<target>/; fix it, add a regression test to the normal suite, and copy the
# input into fuzz/seeds/<target>/.
#
# Stable toolchain only: `--sanitizer none` builds with libFuzzer's coverage instrumentation
# (-Cpasses=sancov-module, -Cllvm-args) and no -Z flag, so no nightly and no RUSTC_BOOTSTRAP.
# The targets check invariants, not memory safety: the crate forbids unsafe code.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
# A fixed libFuzzer seed by default, so that CI replays the same mutation sequence run after run
# (a red CI run is a finding to fix, not luck); FUZZ_SEED=0 lets libFuzzer pick one, as a long
# local run should.
seed="${FUZZ_SEED:-1}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi
# A fuzz build differs from the normal one (instrumentation, --cfg fuzzing): keep it apart.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz"
fi
flags=(--sanitizer none --release --debug-assertions)

echo "== cargo fuzz build"
cargo fuzz build "${flags[@]}"

for target in $(cargo fuzz list); do
  corpus="fuzz/corpus/$target"  # scratch (ignored by git); the committed seeds are read-only
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
  extra=()
  [ "$target" = framing ] && extra=(-dict=fuzz/http.dict)
  echo "== fuzz $target (${seconds}s)"
  if ! cargo fuzz run "${flags[@]}" "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -seed="$seed" -max_len=8192 -timeout=10 -print_final_stats=1 "${extra[@]}" \
      >"fuzz/$target.log" 2>&1; then
    grep -A 6 'panicked at' "fuzz/$target.log" | head -n 40 || true
    grep -E '^(SUMMARY|MS:|Base64:|artifact_prefix)' "fuzz/$target.log" || tail -n 30 "fuzz/$target.log"
    for input in fuzz/artifacts/"$target"/*; do
      [ -f "$input" ] || continue
      echo "-- failing input $input:"
      od -A d -c "$input" | head -n 40
    done
    echo "fuzz target $target failed" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done' "fuzz/$target.log" || true
  rm -f "fuzz/$target.log"
done
echo "== fuzzing passed"
