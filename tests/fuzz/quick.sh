#!/usr/bin/env bash
# The fuzz step of tests/run: builds the libFuzzer targets (tests/fuzz/build.sh)
# and runs each for a fixed number of executions from its seed corpus with
# -seed=1, so every machine does the same work whatever its speed. Inputs it
# finds go to a scratch directory, never into the repository; a crash, leak,
# sanitizer report or failed property fails the step and leaves the
# reproducer in build-fuzz/artifacts/.
#   tests/fuzz/quick.sh [RUNS]   (default 30000 per target; REGFS_FUZZ_BUILD: another build dir)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${REGFS_FUZZ_BUILD:-$root/build-fuzz}
runs=${1:-30000}
targets=$("$root/tests/fuzz/build.sh" "$build")
mkdir -p "$build/artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for name in $targets; do
  mkdir -p "$scratch/$name"
  log=$build/artifacts/$name.quick.log
  if "$build/tests/fuzz/fuzz_$name" -runs="$runs" -seed=1 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$name-" "$scratch/$name" "$root/tests/fuzz/corpus/$name" \
      >"$log" 2>&1; then
    printf '%-14s %s execs, %s\n' "$name" "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
      "$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)"
  else
    echo "$name: FAILED (log $log)" >&2
    tail -40 "$log" >&2
    status=1
  fi
done
exit $status
