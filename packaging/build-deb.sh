#!/usr/bin/env bash
# Builds the Debian package: packaging/build-deb.sh [BUILD_DIR]
# Prints the path of the .deb. Install it with `apt install ./regfs_*.deb`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$root/build}")
"$root/packaging/build.sh" "$build"
(cd "$build" && cpack -G DEB >"$build/cpack.log" 2>&1) || { cat "$build/cpack.log" >&2; exit 1; }
ls "$build"/regfs_*.deb
