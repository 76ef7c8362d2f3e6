#!/usr/bin/env python3
"""The two stores side by side, in one run, on loopback (root; about 2 minutes):

    bench/stores_bench.py [--daemons N] [--trials T]

gossip: N regfsd daemons on loopback, joined through the first, no key.
etcd: a three-member etcd cluster on loopback (Debian's etcd-server, started
here) and N regfsd daemons on it (--store etcd://...).

For each store: a registration written through daemon 0's mount until it is
readable through every other mount (a reader blocked in `.wait/<name>` on
each, timed from the moment write() is issued: median and worst), how long
the write() took, a daemon killed with kill -9 until its instance is gone
from every other mount, and each daemon's resident memory; for etcd also the
members' resident memory.
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


def start_daemons(n, url, extra):
    daemons = []
    for i in range(n):
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
        time.sleep(0.05)  # the readers are parked in .wait/ (they block until the write)
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


def report(tag, took, writes, gone, rss, extra=""):
    print(f"{tag}: registration readable on every other mount: median {ms(statistics.median(took))},"
          f" worst {ms(max(took))} of {len(took)}; write() median {ms(statistics.median(writes))};"
          f" kill -9 until gone everywhere {gone:.2f} s; daemon RSS median {statistics.median(rss):.1f} MB"
          f"{extra}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemons", type=int, default=3)
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()

    common = ["--fresh", "1s", "--wait-timeout", "10s"]
    gossip = start_daemons(args.daemons, "gossip", common)
    try:
        assert wait_until(lambda: all(len(d.status()["members"]) == args.daemons for d in gossip), 20)
        took, writes = propagation(gossip, args.trials, "gossip")
        rss = [rss_mb(d.proc.pid) for d in gossip]
        gone = killed(gossip, "gossip")
        report("gossip", took, writes, gone, rss)
    finally:
        for d in gossip:
            d.cleanup()
            shutil.rmtree(d.base, ignore_errors=True)

    base = tempfile.mkdtemp(prefix="regfs-bench-etcd-")
    cluster = conftest.EtcdCluster(base)
    cluster.start_all()
    daemons = []
    try:
        daemons = start_daemons(args.daemons, cluster.url(), common)
        took, writes = propagation(daemons, args.trials, "etcd")
        rss = [rss_mb(d.proc.pid) for d in daemons]
        members = [rss_mb(m.proc.pid) for m in cluster.members]
        gone = killed(daemons, "etcd")
        report("etcd", took, writes, gone, rss,
               f"; etcd member RSS median {statistics.median(members):.1f} MB (lease TTL 10 s)")
    finally:
        for d in daemons:
            d.cleanup()
            shutil.rmtree(d.base, ignore_errors=True)
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
