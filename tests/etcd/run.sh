#!/usr/bin/env bash
# The etcd store's suite: regfsd daemons against a real three-member etcd
# cluster on loopback ports that the tests start and stop themselves
# (Debian's etcd-server), and over TLS against one member with client
# certificates made by openssl (test_etcd_tls.py); then the mount suite's reading and writing tests
# (tests/mount/test_mount.py) with every daemon on the etcd store of one etcd
# member started here. REGFS_BUILD names the build dir. Needs root (FUSE).
# Arguments go to the first pytest run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export REGFS_BUILD=${REGFS_BUILD:-$here/../../build}
cd "$here"
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$@" .

tmp=$(mktemp -d)
read -r client peer < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
etcd --name mount-suite --data-dir "$tmp/data" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "mount-suite=http://127.0.0.1:$peer" --log-level warn 2>"$tmp/etcd.log" &
etcd_pid=$!
# etcd ends by the SIGTERM sent here: its status (143) is not the suite's.
trap 'kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  curl -sf -X POST "http://127.0.0.1:$client/v3/kv/range" -d '{"key":"Lw=="}' >/dev/null && break
  sleep 0.1
done
# A write waits for etcd on the loop: at most half of the watchdog's bound,
# which one test sets to 1 s.
cd "$here/../mount"
REGFS_STORE="etcd://127.0.0.1:$client" REGFS_STORE_TIMEOUT=500ms \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider test_mount.py
