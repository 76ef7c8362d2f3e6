#!/usr/bin/env bash
# Long soak of the replication core in the simulator: every scenario over many
# seeds (default 20000 each, about 15 minutes on one core), then a few larger
# clusters. Prints each failure with the command that replays it.
#   tests/soak.sh [SEEDS] [FIRST_SEED]      (BUILD=dir to use another build tree)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
seeds=${1:-20000}
first=${2:-100000}
if [[ ! -x $build/tests/cluster/sim_replay ]]; then
  cmake -S "$root" -B "$build" -G Ninja >/dev/null
  ninja -C "$build" sim_replay
fi
cd "$build"
tests/cluster/sim_replay --scenario all --seeds "$seeds" --first "$first"
for n in 30 50; do
  tests/cluster/sim_replay --scenario mixed --seeds 20 --first "$first" --nodes "$n"
done
