#!/usr/bin/env bash
# What re-reads cost (docs/INTERFACES.md, Re-reads), against the same daemon
# with them off and a tmpfs file, in one run:
#   bench/reread.sh [SECONDS] [ITERATIONS] [CYCLES]
# (REGFS_BUILD=DIR uses that build as it is instead of building.)
# Two daemons with the default --fresh 1s: one with the default
# --recheck-after 100ms, one with --recheck-after 0 (re-reads are plain reads).
# Each holds `svc2` (two instances, loopback TCP servers) and `svc1` (one).
# 1. Busy readers: 1 and then 4 processes open+read+close svc2 in a loop,
#    SECONDS per daemon in five turns (the daemons take turns, so that a noisy
#    stretch of the machine falls on both); the checks they cost, per endpoint
#    per second, from .metrics.
# 2. The latency of one open+read+close, the cases taking turns (read_bench).
# 3. Calls after a crash (bench/reread_crash.py, CYCLES kills each): a client
#    with the calling rule, other readers keeping the dead verdict fresh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
iterations=${2:-20000}
cycles=${3:-20}

source "$root/bench/lib.sh"
bench_build
bench_workdir regfs-reread
metric() {  # mount, name
  awk -v n="$2" '$1 == n {print $2}' "$work/$1/.metrics"
}
bench_tcp_servers 3

bench_start_daemon on
bench_start_daemon off --recheck-after 0
for m in on off; do
  printf '127.0.0.1:%s\n127.0.0.1:%s\n' "${ports[0]}" "${ports[1]}" >"$work/$m/svc2"
  echo "127.0.0.1:${ports[2]}" >"$work/$m/svc1"
  cat "$work/$m/svc2" "$work/$m/svc1" >/dev/null
done

echo "## re-reads, $(date -u +%Y-%m-%d), $(nproc) cores"
echo
rounds=5
slice=$(awk -v s="$seconds" -v r="$rounds" 'BEGIN {printf "%.3f", s / r}')
echo "Busy readers of svc2 (2 instances), ${seconds} s per daemon in ${rounds} turns of ${slice} s"
echo "taking turns with the other daemon's; checks per endpoint per second."
echo
echo "| daemon | readers | reads/s | checks/endpoint/s | of them re-verifications | failed reads |"
echo "|---|---|---|---|---|---|"
for readers in 1 4; do
  declare -A reads=() secs=() failed=() checks=() reverify=()
  for m in on off; do reads[$m]=0; secs[$m]=0; failed[$m]=0; checks[$m]=0; reverify[$m]=0; done
  for _ in $(seq "$rounds"); do
    for m in on off; do
      checks0=$(metric "$m" regfs_checks_total)
      reverify0=$(metric "$m" regfs_reverify_checks_total)
      out=()
      for r in $(seq "$readers"); do
        "$bin/bench/read_bench" --poll "$work/$m/svc2" "$slice" >"$work/poll.$r" &
        out+=($!)
      done
      wait "${out[@]}"
      checks[$m]=$(( checks[$m] + $(metric "$m" regfs_checks_total) - checks0 ))
      reverify[$m]=$(( reverify[$m] + $(metric "$m" regfs_reverify_checks_total) - reverify0 ))
      read -r n t f < <(cat "$work"/poll.* | awk '{ n += $2; t = ($4 > t ? $4 : t); f += $6 } END {print n, t, f}')
      reads[$m]=$(( reads[$m] + n ))
      failed[$m]=$(( failed[$m] + f ))
      secs[$m]=$(awk -v a="${secs[$m]}" -v b="$t" 'BEGIN {print a + b}')
      rm -f "$work"/poll.*
    done
  done
  for m in on off; do
    label="recheck-after 100ms (default)"
    [[ $m == off ]] && label="recheck-after 0 (off)"
    awk -v l="$label" -v n="$readers" -v r="${reads[$m]}" -v t="${secs[$m]}" -v c="${checks[$m]}" \
      -v v="${reverify[$m]}" -v f="${failed[$m]}" \
      'BEGIN {printf "| %s | %d | %.0f | %.2f | %.2f | %d |\n", l, n, r / t, c / 2 / t, v / 2 / t, f}'
  done
done

echo
echo "One open+read+close, ${iterations} iterations per case:"
echo
echo "127.0.0.1:${ports[0]}" >/dev/shm/regfs-reread-ref
"$bin/bench/read_bench" --iterations "$iterations" --tmpfs /dev/shm/regfs-reread-ref \
  --case "svc2 (2 instances, every open a re-read), recheck-after 100ms" "$work/on/svc2" \
  --case "svc2, recheck-after 0 (off)" "$work/off/svc2" \
  --case "svc1 (1 instance, kernel cache), recheck-after 100ms" "$work/on/svc1"
rm -f /dev/shm/regfs-reread-ref

echo
echo "Calls every 50 ms with the calling rule while the instance is killed and a new one"
echo "registered, ${cycles} times (bench/reread_crash.py):"
echo
echo "| daemon | calls | failed | started after the new one was registered | of them more than 100 ms after |"
echo "|---|---|---|---|---|"
for m in on off; do
  label="recheck-after 100ms (default)"
  [[ $m == off ]] && label="recheck-after 0 (off)"
  python3 "$root/bench/reread_crash.py" "$work/$m" "$cycles" |
    awk -v l="$label" '{printf "| %s | %d | %d | %d | %d |\n", l, $4, $6, $8, $10}'
done
