#!/usr/bin/env bash
# The scripted suite against a real mount. REGFS_BUILD names the build dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export REGFS_BUILD=${REGFS_BUILD:-$here/../../build}
cd "$here"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" .
