#!/usr/bin/env bash
# The long crash-consistency run: 1,000 kills of regfsd during writes (as root).
#   tests/crash/run.sh [--seed S] [--kills N] [--writers W]
# REGFS_BUILD names the build dir (default: build/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export REGFS_BUILD=${REGFS_BUILD:-$here/../../build}
exec /usr/bin/python3 "$here/crash_test.py" --kills 1000 "$@"
