#!/usr/bin/env bash
# The regfs demo: a cluster of three daemons, each in its own network
# namespace (its own IP on a bridge), each with its own /registry mount.
# A real HTTP service registers itself on node 1; readers on every node
# follow the calling rule; the service dies and comes back on node 3 with a
# new address and port; every reader follows it. Stops by itself (~30 s).
#   examples/demo.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: run as root (it mounts FUSE filesystems and makes network namespaces)" >&2
  exit 1
fi
say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

say "building (the first run installs Debian packages and compiles; later runs are quick)"
"$root/packaging/build.sh" "$root/build"
regfsd=$root/build/daemon/app/regfsd
regfs=$root/build/daemon/cli/regfs

bridge=br-regfs-demo
subnet=10.78.0
work=$(mktemp -d /tmp/regfs-demo.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in 1 2 3; do
    fusermount3 -uz "$work/node$n/registry" 2>/dev/null || true
    ip netns del "rd$n" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
# nsenter enters only the network namespace (the mounts stay visible here) and
# execs the command in place, so $! of a background in_node is the command itself.
in_node() { local n=$1; shift; nsenter --net="/run/netns/rd$n" "$@"; }

# The network: a bridge with an address in the test subnet, three namespaces
# without a default route, so nothing can leave the machine.
ip link del "$bridge" 2>/dev/null || true
ip link add "$bridge" type bridge
ip addr add "$subnet.1/24" dev "$bridge"
ip link set "$bridge" up
"$regfs" keygen >"$work/key"
for n in 1 2 3; do
  ip netns del "rd$n" 2>/dev/null || true
  ip link del "vrd$n" 2>/dev/null || true
  ip netns add "rd$n"
  ip link add "vrd$n" type veth peer name eth0 netns "rd$n"
  ip link set "vrd$n" master "$bridge" up
  in_node "$n" ip addr add "$subnet.1$n/24" dev eth0
  in_node "$n" ip link set eth0 up
  in_node "$n" ip link set lo up
  mkdir -p "$work/node$n"
  nsenter --net="/run/netns/rd$n" "$regfsd" --mount "$work/node$n/registry" --state-dir "$work/node$n/state" \
    --node-name "node$n" --bind "$subnet.1$n:7946" --advertise "$subnet.1$n" \
    --key-file "$work/key" --join "$subnet.11:7946" --reap-after 5s --check-interval 1s \
    --log-level warn 2>"$work/node$n/regfsd.log" &
  pids+=($!)
done
for n in 1 2 3; do
  for _ in $(seq 100); do [[ -r $work/node$n/registry/.metrics ]] && break; sleep 0.05; done
done
sleep 1
say "three daemons, encrypted gossip on $subnet.11-13:7946; members seen from node 2:"
"$regfs" --mount "$work/node2/registry" members

start_service() {  # node
  local n=$1
  : >"$work/port"
  nsenter --net="/run/netns/rd$n" python3 "$root/examples/demo/service.py" "$work/node$n/registry" web "$subnet.1$n" \
    >"$work/port" &
  service_pid=$!
  pids+=($service_pid)
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.05; done
  endpoint="$subnet.1$n:$(cat "$work/port")"
}

show_reads() {
  for n in 1 2 3; do
    say "  node $n: cat registry/web -> $(cat "$work/node$n/registry/web")"
  done
}

start_service 1
first=$endpoint
say "service 'web' started on node 1 at $first and registered itself by writing to node 1's mount"
show_reads

for n in 1 2 3; do
  nsenter --net="/run/netns/rd$n" python3 "$root/examples/clients/client.py" --mount "$work/node$n/registry" \
    --seconds 14 web /hello >"$work/client$n.log" &
  pids+=($!)
  client_pids[$n]=$!
done
sleep 4

say "kill -9 the service on node 1"
disown "$service_pid"  # no job-control notice for the kill
kill -9 "$service_pid"
sleep 0.3
say "  node 2 now reads: $(cat "$work/node2/registry/web" 2>&1 || true)"
start_service 3
second=$endpoint
say "the orchestrator started it again on node 3 at $second; it registered through node 3's mount"
show_reads

for n in 1 2 3; do wait "${client_pids[$n]}"; done
say "what the readers saw (each on its own node, calling web every 50 ms):"
for n in 1 2 3; do
  python3 - "$(tail -n 1 "$work/client$n.log")" "$n" "$first" "$second" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
n, first, second = sys.argv[2], sys.argv[3], sys.argv[4]
followed = second in s["endpoints"]
print(f"[demo]   reader on node {n}: {s['calls']} calls, {s['ok']} ok, {s['rereads']} re-reads, "
      f"{s['failed']} failed; used {' then '.join(s['endpoints'])}"
      f"{'' if followed else '  (did NOT follow!)'}")
sys.exit(0 if followed and s["ok"] > 0 else 1)
PY
done
say "web moved from $first (node 1) to $second (node 3); failures happen only while no instance was up."
say "node 1 still owns its dead registration until it reaps it (--reap-after 5s here); waiting..."
for _ in $(seq 100); do
  [[ $("$regfs" --mount "$work/node2/registry" get web --all) == "$second" ]] && \
    ! grep -q "$first" <("$regfs" --mount "$work/node2/registry" status) && break
  sleep 0.1
done
say "the registry as node 2 sees it now:"
"$regfs" --mount "$work/node2/registry" status
