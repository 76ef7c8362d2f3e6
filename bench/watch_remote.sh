#!/usr/bin/env bash
# Being told of a change made on another node (docs/INTERFACES.md, Following
# changes): two daemons in one gossip cluster on loopback; a poll() waiter on
# node B against the propagation time to B measured in the same run
# (bench/watch_remote.py).
#   bench/watch_remote.sh [ITERATIONS]      (REGFS_BUILD=DIR: use that build as it is)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
iterations=${1:-200}
source "$root/bench/lib.sh"
bench_build
work=$(mktemp -d /dev/shm/regfs-watch-remote.XXXXXX)
trap bench_cleanup EXIT INT TERM
bench_start_daemon a
gossip=$(python3 -c 'import json, sys
print(next(m["address"] for m in json.load(open(sys.argv[1]))["members"] if m["self"]))' "$work/a/.status.json")
bench_start_daemon b --join "$gossip"
bench_tcp_servers 2
echo "127.0.0.1:${ports[0]} check=none" >"$work/a/svc"
echo "## a change on another node, $(date -u +%Y-%m-%d), $(nproc) cores"
echo
python3 "$root/bench/watch_remote.py" "$work/a" "$work/b" "127.0.0.1:${ports[0]}" \
  "127.0.0.1:${ports[1]}" "$iterations"
