#!/usr/bin/env bash
# Multi-host tests: five daemons in network namespaces on a bridge (root only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export REGFS_BUILD=${REGFS_BUILD:-$here/../../build}
cd "$here"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" .
