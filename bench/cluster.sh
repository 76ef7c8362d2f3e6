#!/usr/bin/env bash
# The cluster benchmark beside its references, in one run (root; ~30 minutes):
#   bench/cluster.sh
# regfs: 3, 10, 30 and 100 daemons in network namespaces, measured through the
# mounts; the 30-daemon cluster also spends 10 minutes at 10% packet loss.
# Serf (Debian's serf): 10 and 30 agents on loopback. etcd (etcd-server): 3 members.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/packaging/build.sh" "$root/build"
need=()
for p in serf etcd-server etcd-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
export REGFS_BUILD=$root/build
for n in 3 10 30 100; do
  loss=0
  ((n == 30)) && loss=${REGFS_LOSS_MINUTES:-10}
  /usr/bin/python3 "$root/bench/cluster_bench.py" --nodes "$n" --trials 20 --loss-minutes "$loss"
  echo
done
for n in 10 30; do
  /usr/bin/python3 "$root/bench/serf_reference.py" --agents "$n" --trials 5
  echo
done
/usr/bin/python3 "$root/bench/etcd_reference.py" --trials 200
