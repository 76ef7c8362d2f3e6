#!/usr/bin/env bash
# The read-path benchmark with its references, in one run:
#   bench/read.sh [ITERATIONS]
# Starts two daemons (default freshness, and --fresh 0 so every read checks),
# loopback HTTP servers for the instances, dnsmasq on a loopback port, and
# measures open+read+close against a tmpfs file and a DNS query. Then the
# daemon's resident memory idle and with 10,000 registered instances.
# (REGFS_BUILD=DIR uses that build as it is instead of building.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
iterations=${1:-20000}

source "$root/bench/lib.sh"
bench_build
bench_workdir regfs-bench
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
bench_tcp_servers 5

bench_start_daemon m1
idle_pid=${pids[-1]}
sleep 0.5
idle_rss=$(rss_kb "$idle_pid")
echo "127.0.0.1:${ports[0]}" >"$work/m1/svc1"
for p in "${ports[@]}"; do echo "127.0.0.1:$p"; done >"$work/m1/svc5"
bench_start_daemon m0 --fresh 0
echo "127.0.0.1:${ports[0]}" >"$work/m0/svc1"

# dnsmasq binds UDP and TCP on its port; a free UDP port may be a taken TCP
# one, so try a few ports and refuse to report without the reference.
dns_pid=
for _ in $(seq 10); do
  dns_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
    --port="$dns_port" --host-record=svc.test,10.0.0.5 --conf-file=/dev/null --pid-file="$work/dnsmasq.pid" \
    --user=root 2>>"$work/dnsmasq.log" &
  dns_pid=$!
  sleep 0.5
  if kill -0 "$dns_pid" 2>/dev/null; then
    pids+=("$dns_pid")
    break
  fi
  dns_pid=
done
if [[ -z $dns_pid ]]; then
  echo "read.sh: dnsmasq did not start: $(tail -1 "$work/dnsmasq.log")" >&2
  exit 1
fi

echo "127.0.0.1:${ports[0]}" >/dev/shm/regfs-bench-ref
echo "## read path, $(date -u +%Y-%m-%d), $(nproc) cores, $iterations iterations"
"$bin/bench/read_bench" --iterations "$iterations" --tmpfs /dev/shm/regfs-bench-ref \
  --one "$work/m1/svc1" --multi "$work/m1/svc5" --check "$work/m0/svc1" \
  --dns "127.0.0.1:$dns_port" svc.test
rm -f /dev/shm/regfs-bench-ref

# Memory: 1,000 services of 10 instances each (check=none, no probing).
for s in $(seq 1000); do
  for i in $(seq 10); do echo "10.1.$((s % 250)).$i:$((1000 + s)) check=none"; done >"$work/m1/mem$s"
done
sleep 0.5
full_rss=$(rss_kb "$idle_pid")
instances=$(awk '/^regfs_instances / {print $2}' "$work/m1/.metrics")
echo
echo "| memory | VmRSS |"
echo "|---|---|"
echo "| regfsd idle | $((idle_rss / 1024)).$(( (idle_rss % 1024) * 10 / 1024 )) MB |"
echo "| regfsd with $instances instances | $((full_rss / 1024)).$(( (full_rss % 1024) * 10 / 1024 )) MB |"
