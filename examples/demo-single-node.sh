#!/usr/bin/env bash
# The single-node demo: a daemon, a real HTTP service that registers itself on a
# random port, and a client that follows the calling rule while the service is
# killed and comes back on another port. Stops by itself in about 15 seconds.
#   examples/demo-single-node.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: run as root (it mounts a FUSE filesystem)" >&2
  exit 1
fi
say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

say "building (first run installs Debian packages and compiles; later runs are quick)"
"$root/packaging/build.sh" "$root/build"

work=$(mktemp -d /tmp/regfs-demo.XXXXXX)
mnt=$work/registry
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  fusermount3 -uz "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$root/build/daemon/app/regfsd" --mount "$mnt" --state-dir "$work/state" --node-name demo-node \
  --advertise 127.0.0.1 --bind 127.0.0.1:0 --log-level warn 2>"$work/regfsd.log" &
pids+=($!)
for _ in $(seq 100); do [[ -r $mnt/.metrics ]] && break; sleep 0.05; done
say "regfsd is serving the registry at $mnt"

start_service() {
  python3 "$root/examples/demo/service.py" "$mnt" web >"$work/port" &
  service_pid=$!
  pids+=($service_pid)
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.05; done
  port=$(cat "$work/port")
  : >"$work/port"
}

start_service
say "service 'web' started on port $port and registered itself: cat $mnt/web -> $(cat "$mnt/web")"

python3 "$root/examples/clients/client.py" --mount "$mnt" --seconds 12 web /hello >"$work/client.log" &
client_pid=$!
pids+=($client_pid)
sleep 4

first=$port
say "kill -9 the service on port $first (as a crashed task would die)"
disown "$service_pid"  # no job-control notice for the kill
kill -9 "$service_pid"
sleep 0.5
say "a read now says: $(cat "$mnt/web" 2>&1 || true)"
start_service
say "the orchestrator restarted it on port $port; it registered again: cat $mnt/web -> $(cat "$mnt/web")"

wait "$client_pid"
summary=$(tail -n 1 "$work/client.log")
say "client summary: $summary"
python3 - "$summary" "$first" "$port" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
first, second = sys.argv[2], sys.argv[3]
print(f"[demo] web moved from 127.0.0.1:{first} to 127.0.0.1:{second}; the client made "
      f"{s['calls']} calls: {s['ok']} ok, {s['rereads']} re-read the registry, {s['failed']} failed "
      f"(failures happen only while no instance was up, between the kill and the restart).")
print("[demo] endpoints the client used, in order: " + ", ".join(s["endpoints"]))
sys.exit(0 if s["ok"] > 0 and f"127.0.0.1:{second}" in s["endpoints"] else 1)
PY
say "what the daemon saw:"
"$root/build/daemon/cli/regfs" --mount "$mnt" status
