#!/usr/bin/env bash
# The regfs demo: discovery, config, a gateway and two business services (order calls
# user) on four hosts (network namespaces, each with its own regfsd and /registry),
# every one started by `regfs run --port auto` on a random host in a shuffled order,
# found only through /registry. A client on every host calls through the gateway every
# 50 ms with the calling rule while config moves, the gateway is killed with kill -9,
# and a whole host is killed. Ends with a table and a timeline picture (about a minute).
#   examples/demo.sh                 DEMO_SEED=N replays the same placements
# Results: build/demo/timeline.png and build/demo/result.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: run as root (it mounts FUSE filesystems and makes network namespaces)" >&2
  exit 1
fi
echo "[demo] building (the first run installs Debian packages and compiles; later runs are quick)"
"$root/packaging/build.sh" "$root/build"
# The namespaces, the bridge and the ports are machine-wide: one run at a time
# (the multi-host tests take the same lock).
exec flock /tmp/regfs-net.lock /usr/bin/python3 "$root/examples/demo/story.py" "$root/build" "$root/build/demo"
