#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each one for FUZZ_SECONDS, starting from its
# seed corpus in fuzz/corpus/<target>/. Prints, per target, libFuzzer's executions, the corpus
# size and the crashes found. Exits 1 when a target crashed, and saves the crashing input in
# fuzz/artifacts/<target>/.
#
# Usage: bash scripts/fuzz.sh [target ...]
#
# Environment:
#   FUZZ_SECONDS     run time of each target in seconds (default 20)
#   FUZZ_JOBS        targets run at once (default: the number of CPUs)
#   FUZZ_WORK_DIR    corpus that grows across runs (default ${TMPDIR:-/tmp}/brightbox-fuzz);
#                    the seed corpora in fuzz/corpus/ are only read
#   FUZZ_TARGET_DIR  cargo target folder of the fuzz build (default fuzz/target)
#
# cargo-fuzz runs here on the stable toolchain with `-s none`: libFuzzer's coverage
# instrumentation needs no nightly flag, but AddressSanitizer does. The crates under test
# forbid unsafe code, so the targets look for panics, wrong results and hangs.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-$(nproc)}
work_dir=${FUZZ_WORK_DIR:-${TMPDIR:-/tmp}/brightbox-fuzz}
target_dir=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz (about 1 minute)" >&2
  cargo install cargo-fuzz --locked --quiet
fi

cd fuzz
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

start=$SECONDS
# `cargo fuzz build` without a target name builds every target.
if ! cargo fuzz build -s none --target-dir "$target_dir" >"$logs/build.log" 2>&1; then
  tail -n 60 "$logs/build.log" >&2
  echo "cargo fuzz build failed" >&2
  exit 1
fi
echo "built ${#targets[@]} fuzz targets in $((SECONDS - start)) s"

run_target() {
  local target=$1
  local corpus="$work_dir/$target"
  local artifacts="$PWD/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  local before
  before=$(find "$artifacts" -type f | wc -l)
  local dict=()
  case "$target" in
    ftp_*) dict=(-dict=dictionaries/ftp.dict) ;;
    api_json*) dict=(-dict=dictionaries/json.dict) ;;
    api_headers | orbit_*) dict=(-dict=dictionaries/headers.dict) ;;
  esac
  local status=0
  cargo fuzz run -s none --target-dir "$target_dir" "$target" "$corpus" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" "${dict[@]}" >"$logs/$target.log" 2>&1 || status=$?
  local after
  after=$(find "$artifacts" -type f | wc -l)
  echo "$status $((after - before))" >"$logs/$target.result"
}

running=0
for target in "${targets[@]}"; do
  run_target "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-22s %12s %10s %8s\n' target executions corpus crashes
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  read -r status crashes <"$logs/$target.result"
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus=$(find "$work_dir/$target" -type f | wc -l)
  printf '%-22s %12s %10s %8s\n' "$target" "${executions:-?}" "$corpus" "$crashes"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "--- $target exited with $status; the end of its log:" >&2
    tail -n 40 "$log" >&2
    echo "--- reproduce with: cd fuzz && cargo fuzz run -s none $target artifacts/$target/<file>" >&2
  fi
done
echo "fuzzing took $((SECONDS - start)) s in total"
exit "$failed"
