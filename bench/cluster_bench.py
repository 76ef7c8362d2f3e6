#!/usr/bin/env python3
"""Cluster benchmark on real sockets: N daemons, each in its own network
namespace with its own mount (the multi-host test harness).

    bench/cluster_bench.py [--nodes N] [--trials T]

Measures, through the mounts:
  * propagation: a registration written on one node until it is readable on
    every other node (a reader blocked in `.wait/` on each of them, timed from
    the moment the write() is issued), and how long that write() took on the
    writer;
  * failure: a node killed with kill -9 until its instance is unreadable on
    every other node;
  * resident memory of each daemon once the cluster is formed;
  * with --loss-minutes M: M minutes with 10% of every node's incoming
    packets dropped (nftables), polling every member table for deaths.
"""
import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import multiprocessing
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "net"))
import conftest  # noqa: E402  (the harness: bridge, namespaces, daemons)


def visible(h, service, endpoint):
    try:
        with open(h.path(".all", service)) as f:
            return endpoint in f.read()
    except OSError:
        return False


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Reader:
    """One reader per node, in its own process as on a real host
    (bench/wait_reader.cpp): reads each `.wait/` path it is sent; `seen()`
    is when the read returned, on time.monotonic()'s clock (None: failed)."""

    def __init__(self):
        self.proc = subprocess.Popen([os.path.join(conftest.BUILD, "bench", "wait_reader")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def send(self, path):
        self.proc.stdin.write(path + "\n")

    def seen(self):
        line = self.proc.stdout.readline().strip()
        return None if line in ("", "-") else float(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def writer_loop(conn):
    """Makes each write it is sent; answers when the open was issued, when the
    write() was issued and when it returned."""
    while (job := conn.recv()) is not None:
        path, text = job
        opened = time.monotonic()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        issued = time.monotonic()
        os.write(fd, text.encode())
        returned = time.monotonic()
        os.close(fd)
        conn.send((opened, issued, returned))


def lossy_period(hosts, minutes):
    """Drops 10% of each node's incoming packets for `minutes`; returns how many
    (observer, member) pairs were ever seen dead or left, the number of polls
    and how often a member was seen suspect."""
    names = {h.name for h in hosts}
    for h in hosts:
        h.lossy(10)
    dead, polls, suspects = set(), 0, 0
    end = time.monotonic() + minutes * 60
    try:
        while time.monotonic() < end:
            for h in hosts:
                for name, state in h.members().items():
                    if name in names and state in ("dead", "left"):
                        dead.add((h.name, name))
                    suspects += state == "suspect"
            polls += 1
            time.sleep(1)
    finally:
        for h in hosts:
            h.heal()
    return len(dead), polls, suspects


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--loss-minutes", type=float, default=0)
    a = ap.parse_args()
    random.seed(1)

    fixture = conftest.cluster.__pytest_wrapped__.obj()
    make = next(fixture)
    try:
        hosts = make(a.nodes)
        names = {h.name for h in hosts}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(set(n for n, s in h.members().items() if s == "alive") >= names for h in hosts):
                break
            time.sleep(0.1)
        time.sleep(2)
        rss = [rss_mb(h.proc.pid) for h in hosts]
        # Idle CPU: what each daemon spends on probes and acks alone.
        cpu_before, idle_start = [cpu_seconds(h.proc.pid) for h in hosts], time.monotonic()
        time.sleep(10)
        idle_wall = time.monotonic() - idle_start
        idle_cpu = [(cpu_seconds(h.proc.pid) - b) / idle_wall * 100 for h, b in zip(hosts, cpu_before)]
        # nsenter execs the daemon in place, so the pid is the daemon's.

        spread, from_open, write_ms = [], [], []
        fork = multiprocessing.get_context("fork")
        writes, child_end = multiprocessing.Pipe()
        child = fork.Process(target=writer_loop, args=(child_end,), daemon=True)
        child.start()
        readers = {h.name: Reader() for h in hosts}
        for t in range(a.trials):
            writer = random.choice(hosts)
            endpoint = f"{writer.ip}:{20000 + t}"
            others = [h for h in hosts if h is not writer]
            # A reader blocked in `.wait/` on every other node, so nothing
            # spins: each read returns when its daemon has the registration.
            # The write is made by another process; all read one monotonic clock.
            # write() returns once the change is durable on the writer, which
            # peers need not wait for.
            for h in others:
                readers[h.name].send(h.path(".wait", f"bench{t}"))
            time.sleep(0.05 + 0.002 * len(others))  # every reader has made its lookup
            writes.send((writer.path(f"bench{t}"), endpoint + " check=none\n"))
            # The writer first: until its write() returns, the readers' answers
            # wait in their pipes instead of waking this process while the
            # other readers are still being served.
            opened, issued, returned = writes.recv()
            seen = [readers[h.name].seen() for h in others]
            spread.append((max(seen) - issued) * 1000 if all(seen) else float("inf"))
            from_open.append((max(seen) - opened) * 1000 if all(seen) else float("inf"))
            write_ms.append((returned - issued) * 1000)
            time.sleep(0.05)

        writes.send(None)
        child.join()
        for r in readers.values():
            r.close()

        false_deaths = None
        if a.loss_minutes > 0:
            false_deaths, polls, suspects = lossy_period(hosts, a.loss_minutes)

        victim = hosts[-1]
        victim.write("victim", f"{victim.ip}:9999 check=none\n")
        time.sleep(1)
        others = hosts[:-1]
        victim.stop(signal.SIGKILL)
        start = time.monotonic()
        gone_at = {}
        while len(gone_at) < len(others) and time.monotonic() - start < 30:
            for h in others:
                if h.name not in gone_at and not visible(h, "victim", f"{victim.ip}:9999"):
                    gone_at[h.name] = time.monotonic() - start
            time.sleep(0.005)
        detect = sorted(gone_at.values())

        print(f"## cluster on real sockets, {a.nodes} daemons in network namespaces, "
              f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
        print("| measure | median | worst |")
        print("|---|---|---|")
        print(f"| registration readable on every other node, from write() ({a.trials} trials) | "
              f"{statistics.median(spread):.2f} ms | {max(spread):.2f} ms |")
        print(f"| the same, from the open() that precedes the write | "
              f"{statistics.median(from_open):.2f} ms | {max(from_open):.2f} ms |")
        print(f"| write() on the writer returns (durable there) | "
              f"{statistics.median(write_ms):.2f} ms | {max(write_ms):.2f} ms |")
        print(f"| kill -9: instance unreadable on a node (per node, {len(others)} nodes) | "
              f"{statistics.median(detect):.2f} s | {max(detect):.2f} s |")
        print(f"| daemon resident memory in the cluster | {statistics.median(rss):.1f} MB | "
              f"{max(rss):.1f} MB |")
        print(f"| daemon CPU while idle (probes and acks only; % of one core; all {a.nodes} together: "
              f"{sum(idle_cpu):.1f} %) | {statistics.mean(idle_cpu):.2f} % (mean) | {max(idle_cpu):.2f} % |")
        if false_deaths is not None:
            print(f"| {a.loss_minutes:g} min at 10% packet loss: false deaths seen ({polls} polls "
                  f"of every member table; suspect seen {suspects} times) | {false_deaths} | |")
    finally:
        try:
            next(fixture)
        except StopIteration:
            pass


if __name__ == "__main__":
    main()
