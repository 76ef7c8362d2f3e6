#!/usr/bin/env bash
# From a registration to nginx's rendered upstream on disk, after the quiet
# period, against an inotify waiter on the same tmpfs directory in the same run:
#   bench/template.sh [ROUNDS] [QUIET_MS] [IDLE_WATCHERS] [IDLE_SECONDS]
# (REGFS_BUILD=DIR uses that build as it is instead of building.)
# 1. regfs template --wait QUIET_MS renders examples/nginx/upstream.conf.mustache
#    into a directory on /dev/shm; each round adds or removes an instance with
#    one write() and times the rename of the new file (bench/template_bench.py).
# 2. IDLE_WATCHERS `regfs watch` and as many `regfs template` processes wait on
#    services that do not change for IDLE_SECONDS: the CPU time they and the
#    daemon use meanwhile (from /proc), and the daemon's resident memory before
#    and after they start.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-200}
quiet_ms=${2:-50}
idle=${3:-100}
idle_seconds=${4:-10}

source "$root/bench/lib.sh"
bench_build
bench_workdir regfs-template
shm=$(mktemp -d /dev/shm/regfs-template.XXXXXX)
trap 'bench_cleanup; rm -rf "$shm"' EXIT INT TERM
bench_tcp_servers 9
bench_start_daemon n1

printf '%-44s %5s %8s %8s %8s %8s\n' "measure" "n" "median" "p90" "p99" "max"
python3 "$root/bench/template_bench.py" "$bin/daemon/cli/regfs" "$work/n1" "$shm" \
  "$(IFS=,; echo "${ports[*]}")" "$rounds" "$quiet_ms"

# Idle watchers.
cpu() {  # pids...: their utime+stime, in clock ticks
  local total=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
daemon_pid=${pids[-1]}
echo "127.0.0.1:${ports[0]}" >"$work/n1/idle"
cat "$work/n1/idle" >/dev/null
printf '{{#service:idle}}{{endpoint}}\n{{/service:idle}}' >"$work/idle.mustache"
rss_before=$(rss "$daemon_pid")
watchers=()
for i in $(seq "$idle"); do
  "$bin/daemon/cli/regfs" --mount "$work/n1" watch idle >/dev/null 2>&1 &
  watchers+=($!)
  "$bin/daemon/cli/regfs" --mount "$work/n1" template "$work/idle.mustache:$shm/idle-$i.out" 2>/dev/null &
  watchers+=($!)
done
pids+=("${watchers[@]}")
for _ in $(seq 400); do
  n=$(ls "$shm" | grep -c '^idle-' || true)
  ((n == idle)) && break
  sleep 0.05
done
sleep 1  # the watchers' start-up is over: from here on nothing changes
rss_after=$(rss "$daemon_pid")
w0=$(cpu "${watchers[@]}")
d0=$(cpu "$daemon_pid")
sleep "$idle_seconds"
w1=$(cpu "${watchers[@]}")
d1=$(cpu "$daemon_pid")
echo "idle: $idle regfs watch + $idle regfs template for ${idle_seconds} s:" \
  "their CPU $((w1 - w0)) ticks, the daemon's $((d1 - d0)) ticks (1 tick = 1/$(getconf CLK_TCK) s);" \
  "daemon RSS ${rss_before} KiB before they started, ${rss_after} KiB with them"
