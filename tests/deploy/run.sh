#!/usr/bin/env bash
# Validates the deployment files of examples/deploy/ with their formats' own parsers
# (botocore's ECS model, the Kubernetes client's models, docker-compose) and checks
# them against regfsd's and regfs's options; runs their start scripts and health checks
# against a real regfsd (root, for FUSE). Offline, about 15 s. REGFS_BUILD names
# the build dir (for regfsd --help and regfsd --version with each file's settings).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export REGFS_BUILD=${REGFS_BUILD:-$here/../../build}
cd "$here"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" .
