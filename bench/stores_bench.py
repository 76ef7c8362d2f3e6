#!/usr/bin/env python3
"""The two stores side by side, in one run, on loopback (root; about 3 minutes
for the defaults on 2 cores):

    bench/stores_bench.py [--daemons N[,N...]] [--trials T] [--idle SECONDS]

For each N (default 3,30), in turn:
gossip: N regfsd daemons on loopback, joined through the first, no key.
etcd: a three-member etcd cluster on loopback (Debian's etcd-server, started
here) and N regfsd daemons on it (--store etcd://...).
Every daemon has its own FUSE mount.

For each store: a registration written through daemon 0's mount until it is
readable through every other mount (a reader blocked in `.wait/<name>` on
each, timed from the moment write() is issued: median and worst), how long
the write() took; then, with nothing happening, each daemon's resident memory
and CPU time over a fixed window (utime + stime from /proc/PID/stat), and the
same for the etcd members; last a daemon killed with kill -9 until its
instance is gone from every other mount.
"""
import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "etcd"))
import conftest  # noqa: E402  (EtcdCluster, Daemon)
from conftest import wait_until, write  # noqa: E402


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid):
    """utime + stime of `pid` in seconds (/proc/PID/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pids, window):
    """Each process's CPU use over `window` seconds of wall time, in % of one core."""
    before = {p: cpu_seconds(p) for p in pids}
    started = time.monotonic()
    time.sleep(window)  # the measurement window itself
    wall = time.monotonic() - started
    return [100 * (cpu_seconds(p) - before[p]) / wall for p in pids]


def start_daemons(n, url, extra, urls=None):
    daemons = []
    for i in range(n):
        if urls:
            url = urls[i]
        base = tempfile.mkdtemp(prefix="regfs-bench-")
        os.chmod(base, 0o755)
        args = list(extra)
        if url == "gossip":
            port = conftest.free_ports(1)[0]
            args = ["--bind", f"127.0.0.1:{port}", *args]
            if daemons:
                args += ["--join", daemons[0].gossip]
        d = conftest.Daemon(base, f"n{i}", url, args)
        if url == "gossip":
            d.gossip = f"127.0.0.1:{port}"
            # Daemon.start passes --bind 127.0.0.1:0 first; the later --bind wins.
        daemons.append(d.start())
    return daemons


def propagation(daemons, trials, tag):
    took, writes = [], []
    for t in range(trials):
        name = f"{tag}-p{t}"
        endpoint = f"10.9.{t // 250}.{t % 250 + 1}:80"
        seen = {}

        def reader(i, d):
            try:
                with open(d.path(".wait", name)) as f:
                    if endpoint in f.read():
                        seen[i] = time.monotonic()
            except OSError:
                pass

        threads = [threading.Thread(target=reader, args=(i, d)) for i, d in enumerate(daemons[1:])]
        for th in threads:
            th.start()
        # Every reader is parked in .wait/ before the write.
        assert wait_until(lambda: all((d.metric("regfs_reads_in_progress") or 0) >= 1
                                      for d in daemons[1:]), 10, 0.005), f"{tag}: readers not parked"
        started = time.monotonic()
        write(daemons[0].path(name), endpoint + " check=none\n")
        writes.append(time.monotonic() - started)
        for th in threads:
            th.join(10)
        assert len(seen) == len(daemons) - 1, f"{tag}: trial {t} not seen everywhere"
        took.append(max(seen.values()) - started)
    return took, writes


def killed(daemons, tag):
    victim = daemons[-1]
    write(victim.path(f"{tag}-victim"), "10.8.0.1:80 check=none\n")
    others = daemons[:-1]
    assert wait_until(lambda: all(d.endpoints(f"{tag}-victim") for d in others), 10)
    started = time.monotonic()
    victim.stop(signal.SIGKILL)
    assert wait_until(lambda: all(d.endpoints(f"{tag}-victim") is None for d in others), 60, 0.01)
    return time.monotonic() - started


def ms(s):
    return f"{s * 1000:.2f} ms"


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def report(tag, n, took, writes, gone, rss, cpu, members=None):
    line = (f"{tag} x{n}: registration readable on every other mount: median {ms(statistics.median(took))},"
            f" worst {ms(max(took))} of {len(took)}; write() median {ms(statistics.median(writes))};"
            f" kill -9 until gone everywhere {gone:.2f} s;"
            f" daemon RSS median {statistics.median(rss):.1f} MB (max {max(rss):.1f});"
            f" daemon idle CPU median {statistics.median(cpu):.2f} % (max {max(cpu):.2f}, sum {sum(cpu):.1f})")
    if members:
        m_rss, m_cpu = members
        line += (f"; etcd members RSS {', '.join(f'{r:.1f}' for r in m_rss)} MB,"
                 f" idle CPU {', '.join(f'{c:.2f}' for c in m_cpu)} %")
    print(line + f" [load {load_average()}]", flush=True)


def run_gossip(n, trials, window, common):
    daemons = []
    try:
        daemons = start_daemons(n, "gossip", common)
        assert wait_until(lambda: all(len(d.status()["members"]) == n for d in daemons), 60)
        took, writes = propagation(daemons, trials, f"gossip{n}")
        rss = [rss_mb(d.proc.pid) for d in daemons]
        cpu = idle_cpu([d.proc.pid for d in daemons], window)
        gone = killed(daemons, f"gossip{n}")
        report("gossip", n, took, writes, gone, rss, cpu)
    finally:
        for d in daemons:
            d.cleanup()
            shutil.rmtree(d.base, ignore_errors=True)


def run_etcd(n, trials, window, common):
    base = tempfile.mkdtemp(prefix="regfs-bench-etcd-")
    cluster = conftest.EtcdCluster(base)
    cluster.start_all()
    daemons = []
    try:
        # Each daemon starts on a different member, as a fleet spread over them would.
        daemons = start_daemons(n, None, common, urls=[cluster.url([i % 3, (i + 1) % 3, (i + 2) % 3])
                                                       for i in range(n)])
        took, writes = propagation(daemons, trials, f"etcd{n}")
        rss = [rss_mb(d.proc.pid) for d in daemons]
        member_pids = [m.proc.pid for m in cluster.members]
        cpu = idle_cpu([d.proc.pid for d in daemons] + member_pids, window)
        members = ([rss_mb(p) for p in member_pids], cpu[n:])
        gone = killed(daemons, f"etcd{n}")
        report("etcd", n, took, writes, gone, rss, cpu[:n], members)
    finally:
        for d in daemons:
            d.cleanup()
            shutil.rmtree(d.base, ignore_errors=True)
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemons", default="3,30", help="comma-separated daemon counts")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--idle", type=float, default=20.0, help="idle CPU window, seconds")
    args = ap.parse_args()
    counts = [int(c) for c in args.daemons.split(",")]
    assert all(2 <= c <= 64 for c in counts), "--daemons: counts of 2 to 64"

    common = ["--fresh", "1s", "--wait-timeout", "10s"]
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}: stores_bench --daemons {args.daemons}"
          f" --trials {args.trials} --idle {args.idle}; {os.cpu_count()} cores, load {load_average()}",
          flush=True)
    for n in counts:
        run_gossip(n, args.trials, args.idle, common)
        run_etcd(n, args.trials, args.idle, common)


if __name__ == "__main__":
    main()
