#!/usr/bin/env bash
# Coverage-guided fuzzing of the input parsers, one target after another:
#   bam, sequence_reader, fasta_blocks  (Rust, cargo-fuzz / libFuzzer, fuzz/fuzz_targets/)
#   depth_table                         (Python, atheris, fuzz/depth_table.py)
#
#   benchmarks/fuzz.sh [SECONDS_PER_TARGET]      (default 600)
#   FUZZ_TARGETS="bam depth_table" benchmarks/fuzz.sh 60
#
# Seeds come from the test fixtures (fuzz/seeds.py, needs .venv from .ci/setup); the corpora grow
# under fuzz/corpus/ (ignored by git) and carry over between runs. Each target runs as a single
# process on one core (no -jobs/-workers: on the 2-core machine two at once would halve both),
# with an RSS limit, a per-input timeout and inputs up to 16 KiB (past the fuzz builds' buffer and
# batch sizes). Prints executions, exec/s and crashes per target; exits 1 if any target crashed,
# leaving the input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_TARGET=${1:-600}
TARGETS=${FUZZ_TARGETS:-"bam sequence_reader fasta_blocks depth_table"}
CARGO_FUZZ_VERSION=0.13.1
ATHERIS_VERSION=3.0.0
RSS_LIMIT_MB=2048
TIMEOUT_S=10
MAX_LEN=16384
PYTHON=${FUZZ_PYTHON:-.venv/bin/python}
LOGS=fuzz/logs

log() { printf '[fuzz] %s\n' "$*" >&2; }

if ! cargo +nightly fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

mkdir -p "$LOGS" fuzz/corpus
if [ -x "$PYTHON" ] && "$PYTHON" -c "import pysam" 2>/dev/null; then
  rm -rf fuzz/corpus/seeds
  "$PYTHON" fuzz/seeds.py fuzz/corpus/seeds
else
  log "warning: no .venv with pysam (run .ci/setup): fuzzing without the fixture seeds"
fi

# Release build with debug assertions and overflow checks (an overflow panics, so it is a crash);
# no sanitizer: the code under test is safe Rust (libdeflate, the one C part, has libFuzzer
# targets of its own), and AddressSanitizer's cost would come out of the executions.
FUZZ_FLAGS=(--release --debug-assertions --sanitizer none)
rust_targets=()
for target in $TARGETS; do
  [ "$target" = depth_table ] || rust_targets+=("$target")
done
if [ "${#rust_targets[@]}" -gt 0 ]; then
  log "building ${rust_targets[*]}"
  cargo +nightly fuzz build --fuzz-dir fuzz "${FUZZ_FLAGS[@]}" 2>&1 | tail -n 1 >&2
fi

run_target() {
  local target=$1 corpus=fuzz/corpus/$1 seeds=fuzz/corpus/seeds/$1
  local options=(
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_LIMIT_MB" -timeout="$TIMEOUT_S"
    -max_len="$MAX_LEN" -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/"
  )
  mkdir -p "$corpus"
  local inputs=("$corpus")
  [ -d "$seeds" ] && inputs+=("$seeds")
  if [ "$target" = depth_table ]; then
    if ! "$PYTHON" -c "import atheris" 2>/dev/null; then
      log "installing atheris $ATHERIS_VERSION into .venv"
      "$PYTHON" -m pip install -q "atheris==$ATHERIS_VERSION"
    fi
    "$PYTHON" fuzz/depth_table.py "${options[@]}" "${inputs[@]}"
  else
    cargo +nightly fuzz run --fuzz-dir fuzz "${FUZZ_FLAGS[@]}" "$target" "${inputs[@]}" -- \
      "${options[@]}"
  fi
}

status=0
summary=()
for target in $TARGETS; do
  log "fuzzing $target for ${SECONDS_PER_TARGET}s"
  mkdir -p "fuzz/artifacts/$target"
  before=$(find "fuzz/artifacts/$target" -type f | wc -l)
  started=$(date +%s)
  if run_target "$target" >"$LOGS/$target.log" 2>&1; then outcome=ok; else outcome=failed; fi
  elapsed=$(($(date +%s) - started))
  after=$(find "fuzz/artifacts/$target" -type f | wc -l)
  crashes=$((after - before))
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$target.log" | tail -n 1)
  executions=${executions:-0}
  if [ "$outcome" = failed ] || [ "$crashes" -gt 0 ]; then
    status=1
    tail -n 30 "$LOGS/$target.log" >&2
  fi
  summary+=("$(printf '%-16s %6ss %12s %9s %8s' "$target" "$elapsed" "$executions" \
    "$((executions / (elapsed > 0 ? elapsed : 1)))" "$crashes")")
done

printf '%-16s %7s %12s %9s %8s\n' target time executions exec/s crashes
printf '%s\n' "${summary[@]}"
exit "$status"
