#!/usr/bin/env bash
# The etcd store's suite: regfsd daemons against a real three-member etcd
# cluster on loopback ports that the tests start and stop themselves
# (Debian's etcd-server). REGFS_BUILD names the build dir. Needs root (FUSE).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export REGFS_BUILD=${REGFS_BUILD:-$here/../../build}
cd "$here"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" .
