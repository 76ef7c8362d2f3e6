#!/usr/bin/env python3
"""Reference figures from Serf (Debian's `serf`), measured on this machine:
N agents on loopback ports; a tag change on one agent until every other agent
has run its member-update handler with it; an agent killed with kill -9 until
every other agent has run its member-failed handler.

    bench/serf_reference.py [--agents N] [--trials T]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

HANDLER = """#!/bin/sh
now=$(date +%s.%N)
while read -r line; do echo "$now $SERF_EVENT $line"; done >> "{dir}/$SERF_SELF_NAME.events"
"""


def events(d, name):
    try:
        with open(os.path.join(d, f"{name}.events")) as f:
            return [line.split(" ", 2) for line in f.read().splitlines() if line.count(" ") >= 2]
    except OSError:
        return []


def wait_for_rpc(addr, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(["serf", "members", f"-rpc-addr={addr}"],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit(f"serf agent on {addr} did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--trials", type=int, default=5)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="regfs-serf-")
    handler = os.path.join(d, "handler.sh")
    with open(handler, "w") as f:
        f.write(HANDLER.format(dir=d))
    os.chmod(handler, 0o755)
    procs = []
    try:
        for i in range(a.agents):
            cmd = ["serf", "agent", f"-node=s{i}", f"-bind=127.0.0.1:{27946 + i}",
                   f"-rpc-addr=127.0.0.1:{27373 + i}", "-log-level=err",
                   f"-event-handler=member-update,member-failed={handler}"]
            if i > 0:
                cmd.append("-join=127.0.0.1:27946")
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            if i == 0:  # an agent whose -join is refused exits: let the seed listen first
                wait_for_rpc("127.0.0.1:27373")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(["serf", "members", "-rpc-addr=127.0.0.1:27373", "-status=alive"],
                                 capture_output=True, text=True).stdout
            if len(out.splitlines()) == a.agents:
                break
            time.sleep(0.5)
        time.sleep(2)
        spread = []
        for t in range(a.trials):
            start = time.time()
            subprocess.run(["serf", "tags", "-rpc-addr=127.0.0.1:27373", "-set", f"gen=t{t}"],
                           check=True, capture_output=True)
            times = {}
            deadline = time.monotonic() + 30
            while len(times) < a.agents - 1 and time.monotonic() < deadline:
                for i in range(1, a.agents):
                    for ts, ev, line in events(d, f"s{i}"):
                        if ev == "member-update" and f"gen=t{t}" in line and line.split()[0] == "s0":
                            times.setdefault(i, float(ts) - start)
                time.sleep(0.05)
            if len(times) < a.agents - 1:
                print(f"trial {t}: only {len(times)} of {a.agents - 1} agents saw the change")
            spread.append(max(times.values()) if len(times) == a.agents - 1 else float("inf"))
            time.sleep(1)
        victim = procs[-1]
        victim.send_signal(signal.SIGKILL)
        start = time.time()
        failed = {}
        deadline = time.monotonic() + 60
        while len(failed) < a.agents - 1 and time.monotonic() < deadline:
            for i in range(a.agents - 1):
                for ts, ev, line in events(d, f"s{i}"):
                    if ev == "member-failed" and line.split()[0] == f"s{a.agents - 1}":
                        failed.setdefault(i, float(ts) - start)
            time.sleep(0.05)
        print(f"## Serf {a.agents} agents on loopback, {time.strftime('%Y-%m-%d')}")
        print("| measure | median | worst |")
        print("|---|---|---|")
        print(f"| tag change seen by every other agent ({a.trials} trials) | "
              f"{statistics.median(spread):.2f} s | {max(spread):.2f} s |")
        det = sorted(failed.values())
        print(f"| kill -9: member-failed on an agent | {statistics.median(det):.2f} s | "
              f"{max(det):.2f} s |")
        rss = []
        for p in procs[:-1]:
            with open(f"/proc/{p.pid}/status") as f:
                rss += [int(l.split()[1]) / 1024 for l in f if l.startswith("VmRSS")]
        print(f"| agent resident memory | {statistics.median(rss):.1f} MB | {max(rss):.1f} MB |")
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
