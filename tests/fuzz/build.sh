#!/usr/bin/env bash
# Configures and builds the libFuzzer targets with clang into BUILD_DIR
# (default build-fuzz/), apart from the gcc builds; prints the target names.
#   tests/fuzz/build.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-fuzz}
"$root/packaging/install-deps.sh"
# -O1 with line tables: what libFuzzer's documentation suggests, and the
# build is about half of the quick step's time.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" \
  -DCMAKE_CXX_COMPILER=clang++-14 -DREGFS_FUZZ=ON >/dev/null
if ! ninja -C "$build" -j"$(nproc)" fuzz >"$build/ninja-fuzz.log" 2>&1; then
  cat "$build/ninja-fuzz.log" >&2
  exit 1
fi
for f in "$root"/tests/fuzz/*.cpp; do
  name=$(basename "$f" .cpp)
  if [[ -x $build/tests/fuzz/fuzz_$name ]]; then echo "$name"; fi
done
