#!/usr/bin/env bash
# What re-reads cost (docs/INTERFACES.md, Re-reads), against the same daemon
# with them off and a tmpfs file, in one run:
#   bench/reread.sh [SECONDS] [ITERATIONS]
# Two daemons with the default --fresh 1s: one with the default
# --recheck-after 100ms, one with --recheck-after 0 (re-reads are plain reads).
# Each holds `svc2` (two instances, loopback TCP servers) and `svc1` (one).
# 1. Busy readers: 1 and then 4 processes open+read+close svc2 in a loop for
#    SECONDS each; the checks they cost, per endpoint per second, from .metrics.
# 2. The latency of one open+read+close, the cases taking turns (read_bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
iterations=${2:-20000}
"$root/packaging/build.sh" "$root/build" >/dev/null
bin=$root/build

work=$(mktemp -d /tmp/regfs-reread.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for m in "$work"/on "$work"/off; do fusermount3 -uz "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_daemon() {  # name, extra args...
  local name=$1
  shift
  "$bin/daemon/app/regfsd" --mount "$work/$name" --state-dir "$work/state-$name" \
    --node-name "$name" --advertise 127.0.0.1 --bind 127.0.0.1:0 --log-level warn "$@" 2>>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 200); do [[ -r $work/$name/.metrics ]] && break; sleep 0.05; done
  [[ -r $work/$name/.metrics ]] || { echo "reread.sh: regfsd $name did not start" >&2; exit 1; }
}
metric() {  # mount, name
  awk -v n="$2" '$1 == n {print $2}' "$work/$1/.metrics"
}

# Three loopback TCP servers for the instances: accept, close.
python3 - "$work/ports" <<'PY' &
import socket, sys, threading
def serve(s):
    while True:
        c, _ = s.accept()
        c.close()
socks = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024); socks.append(s)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
open(sys.argv[1], "w").write(" ".join(str(s.getsockname()[1]) for s in socks))
threading.Event().wait(3600)
PY
pids+=($!)
for _ in $(seq 100); do [[ -s $work/ports ]] && break; sleep 0.05; done
read -r -a ports <"$work/ports" || true

start_daemon on
start_daemon off --recheck-after 0
for m in on off; do
  printf '127.0.0.1:%s\n127.0.0.1:%s\n' "${ports[0]}" "${ports[1]}" >"$work/$m/svc2"
  echo "127.0.0.1:${ports[2]}" >"$work/$m/svc1"
  cat "$work/$m/svc2" "$work/$m/svc1" >/dev/null
done

echo "## re-reads, $(date -u +%Y-%m-%d), $(nproc) cores"
echo
echo "Busy readers of svc2 (2 instances) for ${seconds} s each; checks per endpoint per second."
echo
echo "| daemon | readers | reads/s | checks/endpoint/s | of them re-verifications | failed reads |"
echo "|---|---|---|---|---|---|"
for readers in 1 4; do
  for m in on off; do
    checks0=$(metric "$m" regfs_checks_total)
    reverify0=$(metric "$m" regfs_reverify_checks_total)
    out=()
    for r in $(seq "$readers"); do
      "$bin/bench/read_bench" --poll "$work/$m/svc2" "$seconds" >"$work/poll.$r" &
      out+=($!)
    done
    wait "${out[@]}"
    checks=$(( $(metric "$m" regfs_checks_total) - checks0 ))
    reverify=$(( $(metric "$m" regfs_reverify_checks_total) - reverify0 ))
    cat "$work"/poll.* | awk -v m="$m" -v n="$readers" -v c="$checks" -v v="$reverify" '
      { reads += $2; secs = ($4 > secs ? $4 : secs); failed += $6 }
      END {
        label = (m == "on") ? "recheck-after 100ms (default)" : "recheck-after 0 (off)"
        printf "| %s | %d | %.0f | %.2f | %.2f | %d |\n", label, n, reads / secs, c / 2 / secs, v / 2 / secs, failed
      }'
    rm -f "$work"/poll.*
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
