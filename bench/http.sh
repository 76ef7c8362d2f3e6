#!/usr/bin/env bash
# The read path with and without the HTTP face under load, in one run:
#   bench/http.sh [ITERATIONS]
# Starts two daemons on loopback: `plain` without --http, and `web` with --http
# serving 100 open /v1/events streams, a page load per second and a change per
# second (bench/http_load.py). bench/read_bench then reads a service of one
# instance and one of five from each daemon, its cases taking turns in ten
# rounds, so that both daemons see the same machine.
# (REGFS_BUILD=DIR uses that build as it is instead of building.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
iterations=${1:-20000}
source "$root/bench/lib.sh"
bench_build
bench_workdir regfs-bench-http
bench_tcp_servers 5

http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bench_start_daemon plain
bench_start_daemon web --http "127.0.0.1:$http_port"
for d in plain web; do
  echo "127.0.0.1:${ports[0]}" >"$work/$d/svc1"
  for p in "${ports[@]}"; do echo "127.0.0.1:$p"; done >"$work/$d/svc5"
done

python3 "$root/bench/http_load.py" "$http_port" 100 "$work/web" >"$work/load.out" 2>&1 &
load_pid=$!
pids+=("$load_pid")
for _ in $(seq 200); do
  streams=$(awk '/^regfs_http_streams / {print $2}' "$work/web/.metrics")
  [[ $streams == 100 ]] && break
  sleep 0.05
done
[[ $streams == 100 ]] || { echo "http.sh: $streams of 100 streams open" >&2; exit 1; }

echo "127.0.0.1:${ports[0]}" >/dev/shm/regfs-bench-http-ref
echo "## read path with and without --http, $(date -u +%Y-%m-%d), $(nproc) cores, $iterations iterations"
"$bin/bench/read_bench" --iterations "$iterations" --tmpfs /dev/shm/regfs-bench-http-ref \
  --case "no --http: 1 instance" "$work/plain/svc1" \
  --case "--http, 100 streams, 1 page/s: 1 instance" "$work/web/svc1" \
  --case "no --http: 5 instances, rotating" "$work/plain/svc5" \
  --case "--http, 100 streams, 1 page/s: 5 instances, rotating" "$work/web/svc5"
rm -f /dev/shm/regfs-bench-http-ref

kill "$load_pid"
wait "$load_pid" 2>/dev/null || true
cat "$work/load.out"
grep -E '^regfs_http_(streams|streams_dropped_total|events_total|requests_total|refused_clients_total) ' \
  "$work/web/.metrics"
