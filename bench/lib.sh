# Shared by the shell benchmarks: a scratch directory cleaned up on exit,
# daemons on mounts in it, and loopback TCP servers for instances to point at.
# The caller sets `root`, `bin` (a build directory, from bench_build) and
# `work` (from bench_workdir) and keeps its background processes in `pids`.

pids=()

bench_build() {  # sets `bin`: REGFS_BUILD as it is, or build/ built now
  bin=${REGFS_BUILD:-}
  if [[ -z $bin ]]; then
    "$root/packaging/build.sh" "$root/build" >/dev/null
    bin=$root/build
  fi
}

bench_workdir() {  # prefix: makes $work and cleans it up on exit
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  local m
  for m in "$work"/*/; do mountpoint -q "$m" && fusermount3 -uz "$m" 2>/dev/null; done
  rm -rf "$work"
}

bench_start_daemon() {  # name, extra args...: regfsd on $work/NAME, ready when it returns
  local name=$1
  shift
  "$bin/daemon/app/regfsd" --mount "$work/$name" --state-dir "$work/state-$name" \
    --node-name "$name" --advertise 127.0.0.1 --bind 127.0.0.1:0 --log-level warn "$@" 2>>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 200); do [[ -r $work/$name/.metrics ]] && break; sleep 0.05; done
  [[ -r $work/$name/.metrics ]] || { echo "$0: regfsd $name did not start" >&2; exit 1; }
}

bench_tcp_servers() {  # count: sets the array `ports` to COUNT loopback servers that accept and close
  python3 - "$work/ports" "$1" <<'PY' &
import socket, sys, threading
def serve(s):
    while True:
        c, _ = s.accept()
        c.close()
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024); socks.append(s)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
open(sys.argv[1] + ".tmp", "w").write(" ".join(str(s.getsockname()[1]) for s in socks))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
threading.Event().wait(3600)
PY
  pids+=($!)
  for _ in $(seq 100); do [[ -s $work/ports ]] && break; sleep 0.05; done
  [[ -s $work/ports ]] || { echo "$0: the loopback servers did not start" >&2; exit 1; }
  read -r -a ports <"$work/ports" || true  # no newline at the end
}
