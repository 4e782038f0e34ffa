#!/usr/bin/env bash
# Issue 19: runs every cargo-fuzz target in fuzz/ for a bounded count and time. A crash or a broken invariant
# fails CI with the input printed (hex, and cargo-fuzz's Debug form) and kept under
# fuzz/artifacts/<target>/; fix it, add a regression test to the normal suite, and copy the
# input into fuzz/seeds/<target>/.
#
# Stable toolchain only: `--sanitizer none` builds with libFuzzer's coverage instrumentation
# (-Cpasses=sancov-module, -Cllvm-args) and no -Z flag, so no nightly and no RUSTC_BOOTSTRAP.
# The targets check invariants, not memory safety: the crate forbids unsafe code.
set -euo pipefail
cd "$(dirname "$0")/.."

# By default CI replays: a fixed libFuzzer seed, a fixed number of runs (FUZZ_RUNS per target,
# 5 to 65 s each here) from the committed seeds and an empty scratch corpus, so a run that
# passed on one machine passes on every other and a red CI run is a finding to fix, not luck
# (the time cap, FUZZ_SECONDS, only stops a machine far slower than this one early).
# Exploring is a local job: FUZZ_SEED=0 FUZZ_RUNS=-1 FUZZ_SECONDS=600 .ci/fuzz.sh lets libFuzzer
# pick its seed and keeps what it learns in fuzz/corpus/<target> between runs.
seconds="${FUZZ_SECONDS:-240}"
runs="${FUZZ_RUNS:-400000}"
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
  if [ "$seed" != 0 ]; then
    rm -rf "$corpus"  # a replay starts from the committed seeds alone
  fi
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
  extra=()
  [ "$target" = framing ] && extra=(-dict=fuzz/http.dict)
  echo "== fuzz $target (seed $seed, $runs runs, at most ${seconds}s)"
  if ! cargo fuzz run "${flags[@]}" "$target" "$corpus" "${seeds[@]}" -- \
      -runs="$runs" -max_total_time="$seconds" -seed="$seed" -max_len=8192 -timeout=10 -print_final_stats=1 "${extra[@]}" \
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
