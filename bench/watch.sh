#!/usr/bin/env bash
# Being told of changes (docs/INTERFACES.md, Following changes), in one run:
#   bench/watch.sh [ITERATIONS] [WATCHERS] [IDLE_SECONDS]
# (REGFS_BUILD=DIR uses that build as it is instead of building.)
# 1. Wake latency, median and p90 over ITERATIONS changes made on this node (an
#    instance added to or removed from `svc` by open+write+close), from just
#    before the writer's open() to the return of: a poll(POLLPRI) waiter on an
#    open /registry/svc; a read() of /registry/.events; and, as the reference,
#    a read() of inotify watching a tmpfs file appended the same way. The
#    daemon's state directory is on tmpfs too, so that no disk flush is timed.
# 2. WATCHERS idle poll() watchers (one epoll over as many opens of svc) and
#    WATCHERS .events readers blocked in read(): the daemon's resident memory
#    before and with them, and its CPU time over IDLE_SECONDS while nothing changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
iterations=${1:-200}
watchers=${2:-1000}
idle=${3:-10}

source "$root/bench/lib.sh"
bench_build
ninja -C "$bin" watch_bench >/dev/null
work=$(mktemp -d /dev/shm/regfs-watch.XXXXXX)
trap bench_cleanup EXIT INT TERM
ulimit -n 8192
bench_start_daemon a
bench_tcp_servers 1
echo "127.0.0.1:${ports[0]}" >"$work/a/svc"
"$bin/bench/watch_bench" "$work/a" "${pids[0]}" "$work/reference" 127.0.0.2:9 "$iterations" \
  "$watchers" "$idle"
