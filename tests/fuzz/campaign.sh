#!/usr/bin/env bash
# A fuzzing campaign: each target in turn runs EXECS executions (default
# 10,000,000) with libFuzzer + ASan + UBSan, from its seed corpus and the
# working corpus of earlier campaigns (build-fuzz/campaign/NAME/corpus, never
# the repository). Prints per target the executions, executions per second,
# libFuzzer's cov:/ft: and the line coverage of its decoder's files reached
# by the working corpus (llvm-cov, from a build in build-fuzz-cov; COVERAGE=0
# skips it). Any crash, leak, sanitizer report, failed property or timeout
# fails the campaign; the reproducer stays in build-fuzz/campaign/NAME/.
# Results go to build-fuzz/campaign/summary.txt as well. The machine is
# shared: run it niced (docs/FUZZING.md).
# JOBS=N runs N processes per target (one per core to spare), sharing the
# working corpus and splitting EXECS between them.
#   [JOBS=N] tests/fuzz/campaign.sh [EXECS] [TARGET...]      (default: every target)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-fuzz
execs=${1:-10000000}
jobs=${JOBS:-1}
shift || true
mkdir -p "$build"
# Campaigns of different targets may start at once: one build at a time.
all=$(flock "$build/build.lock" "$root/tests/fuzz/build.sh" "$build")
targets=${*:-$all}
out=$build/campaign
mkdir -p "$out"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The files whose code each target exists to cover.
decoder_files() {
  local d=$root/daemon
  case $1 in
    options) echo "$d/app/options.cpp" ;;
    registration) echo "$d/core/instance.cpp $d/core/host_port.cpp" ;;
    http_status) echo "$d/net/http_status.cpp" ;;
    keyring) echo "$d/transport/keyring.cpp" ;;
    join_file) echo "$d/transport/transport.cpp $d/core/host_port.cpp" ;;
    wire_sealed) echo "$d/transport/keyring.cpp $d/transport/replay.cpp $d/transport/stream_in.cpp" ;;
    wire_frame) echo "$d/cluster/codec.cpp $d/cluster/core.cpp $d/cluster/core_members.cpp $d/cluster/core_probe.cpp $d/cluster/core_sync.cpp $d/cluster/store.cpp" ;;
    control) echo "$d/app/control.cpp" ;;
    state_file) echo "$d/app/state_store.cpp $d/core/instance.cpp" ;;
    etcd_gateway) echo "$d/etcd/codec.cpp" ;;
  esac
}

coverage() {  # NAME: line coverage of its decoder files by its working corpus
  local name=$1 cov=$root/build-fuzz-cov work=$out/$1
  # Two campaigns (one target each) may reach this at once: one build at a time.
  exec {lock}>"$out/coverage.lock"
  flock "$lock"
  if [[ ! -f $cov/build.ninja ]]; then
    cmake -S "$root" -B "$cov" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
      -DCMAKE_CXX_FLAGS="-fprofile-instr-generate -fcoverage-mapping" >/dev/null
  fi
  ninja -C "$cov" "fuzz_$name" >"$work/cov-build.log" 2>&1 || { exec {lock}>&-; echo "n/a (build failed)"; return; }
  exec {lock}>&-
  rm -f "$work"/cov-*.profraw
  LLVM_PROFILE_FILE="$work/cov-%p.profraw" "$cov/tests/fuzz/fuzz_$name" "$work/corpus" \
    "$root/tests/fuzz/corpus/$name" >/dev/null 2>&1 || true
  llvm-profdata-14 merge -sparse "$work"/cov-*.profraw -o "$work/cov.profdata"
  # shellcheck disable=SC2046
  llvm-cov-14 report "$cov/tests/fuzz/fuzz_$name" -instr-profile="$work/cov.profdata" \
    $(decoder_files "$name") >"$work/cov-report.txt"
  awk '/^TOTAL/ {print "lines " $(NF-3) " of decoder files, functions " $(NF-6)}' "$work/cov-report.txt"
}

status=0
for name in $targets; do
  work=$out/$name
  mkdir -p "$work/corpus"
  start=$(date +%s.%N)
  # JOBS processes share the working corpus (each picks up what the others
  # add; libFuzzer's -reload) and split the executions between them.
  logs=() pids=()
  for ((j = 1; j <= jobs; j++)); do
    runs=$((execs / jobs + (j <= execs % jobs ? 1 : 0)))
    if [[ $j -eq 1 ]]; then logs+=("$work/fuzz.log"); else logs+=("$work/fuzz-$j.log"); fi
    "$build/tests/fuzz/fuzz_$name" -runs="$runs" -seed=$((${SEED:-1} + j - 1)) -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$root/tests/fuzz/corpus/$name" \
      >"${logs[-1]}" 2>&1 &
    pids+=($!)
  done
  rc=0
  for pid in "${pids[@]}"; do
    wait "$pid" || { r=$?; [[ $rc -ne 0 ]] || rc=$r; }
  done
  end=$(date +%s.%N)
  done_execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${logs[@]}" | awk '{n += $1} END {print n}')
  rate=$(awk -v n="${done_execs:-0}" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')
  covft=$(grep -ho 'cov: [0-9]* ft: [0-9]*' "${logs[@]}" | sort -k2,2n -k4,4n | tail -1)
  reported=0
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "${logs[@]}"; then reported=1; fi
  if [[ $reported -eq 0 ]] && grep -q 'libFuzzer: run interrupted' "${logs[@]}"; then
    # SIGINT or SIGTERM (libFuzzer exits 72): what ran found nothing, but the
    # campaign did not run its executions, so it is not a pass either.
    line="$name: interrupted after ${done_execs:-?} execs, no finding; coverage not measured; log: ${logs[*]}"
    status=1
  elif [[ $rc -ne 0 || $reported -eq 1 ]]; then
    found=$(ls "$work"/{crash,leak,oom,timeout}-* 2>/dev/null | tr '\n' ' ' || true)
    line="$name: FAILED after ${done_execs:-?} execs (rc $rc); reproducer: $found log: ${logs[*]}"
    status=1
  else
    lines=n/a
    [[ ${COVERAGE:-1} == 1 ]] && lines=$(coverage "$name")
    line=$(printf '%-13s %s execs, %s exec/s, %s, corpus %s files, %s' "$name" "$done_execs" "$rate" \
      "$covft" "$(ls "$work/corpus" | wc -l)" "$lines")
  fi
  echo "$line"
  echo "$(date -u +%FT%TZ) $line" >>"$out/summary.txt"
done
exit $status
