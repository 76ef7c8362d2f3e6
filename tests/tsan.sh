#!/usr/bin/env bash
# The daemon's threads under ThreadSanitizer (not part of tests/run, which
# stays well under 30 minutes): builds with -DREGFS_SANITIZE=thread, then runs
# the unit tests and the mount suite, whose daemons stop at the first race
# report. The simulation tests are left out: the simulator is one thread.
#   tests/tsan.sh            (as root, like tests/run; about 5 minutes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
packaging/build.sh "$root/build-tsan" -DREGFS_SANITIZE=thread
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
ctest --test-dir build-tsan --output-on-failure -j"$(nproc)" --timeout 900 -E cluster_sim_test
REGFS_BUILD="$root/build-tsan" tests/mount/run.sh
