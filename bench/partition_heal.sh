#!/usr/bin/env bash
# How fast two halves that declared each other dead merge after a heal, with
# the daemon's defaults, on real sockets: runs the multi-host test
# test_a_partition_longer_than_death_heals_fast_and_resurrects_nothing RUNS
# times (five daemons in network namespaces, {1,2} cut from {3,4,5} for 10 s,
# a removal and registrations on both sides, every node read every 50 ms for
# 30 s after the heal) and prints each run's merge time and the median and
# worst. A run that served the removed name, or did not merge, fails the test
# and is reported as such. Then the same for the seeded simulator with the
# defaults (sim_replay --scenario partition-long), for comparison.
#   bench/partition_heal.sh [RUNS] [BUILD_DIR]     (root; about a minute a run)
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$root/build}
[[ -x $build/daemon/app/regfsd ]] || "$root/packaging/build.sh" "$build"
times=()
for ((i = 1; i <= runs; i++)); do
  out=$(REGFS_BUILD=$build "$root/tests/net/run.sh" -s -k partition_longer 2>&1) || {
    echo "run $i: FAILED"; echo "$out" | grep -E '^E ' | head -5; continue; }
  t=$(sed -n 's/.*; worst \([0-9.]*\) s.*/\1/p' <<<"$out")
  echo "run $i: every node merged ${t} s after the heal, no read of the removed name succeeded"
  times+=("$t")
done
if ((${#times[@]} > 0)); then
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "real sockets: %d runs, median %.2f s, worst %.2f s\n", NR, a[int((NR+1)/2)], a[NR]}'
fi
"$build/tests/cluster/sim_replay" --scenario partition-long --profile defaults --seeds 300 --merge-times | tail -2
