#!/usr/bin/env bash
# Installs the Debian packages (if missing) and builds regfs.
#   packaging/build.sh [BUILD_DIR] [extra cmake arguments...]
# BUILD_DIR defaults to build/. Prints nothing but errors when all is well.
# Warnings are not errors unless asked (tests/run passes -DREGFS_WERROR=ON).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
"$root/packaging/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
if ! ninja -C "$build" -j"$(nproc)" >"$build/ninja.log" 2>&1; then
  cat "$build/ninja.log" >&2
  exit 1
fi
