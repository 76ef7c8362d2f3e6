#!/usr/bin/env bash
# The container image: builds it (packaging/image.sh, from the .deb in
# REGFS_BUILD) unless REGFS_IMAGE names an archive, then checks the archive and
# starts its root filesystem in Linux namespaces in the three ways it is used
# (root only; hosts are network namespaces on a bridge of their own).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export REGFS_BUILD=${REGFS_BUILD:-$root/build}
if [[ -z ${REGFS_IMAGE:-} ]]; then
  deb=$(find "$REGFS_BUILD" -maxdepth 1 -name 'regfs_*.deb' 2>/dev/null | head -1 || true)
  REGFS_IMAGE=$(REGFS_DEB=$deb "$root/packaging/image.sh")
fi
REGFS_IMAGE=$(realpath "$REGFS_IMAGE")
export REGFS_IMAGE
cd "$here"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" .
