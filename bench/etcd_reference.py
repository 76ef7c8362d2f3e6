#!/usr/bin/env python3
"""Reference figure from etcd (Debian's `etcd-server` 3.4), measured on this
machine: a 3-member cluster on loopback; a put on member 1 until a watcher on
member 2 prints it.

    bench/etcd_reference.py [--trials T]
"""
import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request

CLIENT = [23791, 23792, 23793]
PEER = [23801, 23802, 23803]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="regfs-etcd-")
    cluster = ",".join(f"e{i}=http://127.0.0.1:{PEER[i]}" for i in range(3))
    procs = []
    try:
        for i in range(3):
            procs.append(subprocess.Popen(
                ["etcd", "--name", f"e{i}", "--data-dir", os.path.join(d, f"e{i}"),
                 "--listen-client-urls", f"http://127.0.0.1:{CLIENT[i]}",
                 "--advertise-client-urls", f"http://127.0.0.1:{CLIENT[i]}",
                 "--listen-peer-urls", f"http://127.0.0.1:{PEER[i]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{PEER[i]}",
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--log-level", "error"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        env = dict(os.environ, ETCDCTL_API="3")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = subprocess.run(["etcdctl", f"--endpoints=127.0.0.1:{CLIENT[0]}", "endpoint", "health"],
                               capture_output=True, text=True, env=env)
            if r.returncode == 0:
                break
            time.sleep(0.5)
        watch = subprocess.Popen(["etcdctl", f"--endpoints=127.0.0.1:{CLIENT[1]}", "watch", "bench"],
                                 stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
        time.sleep(1)
        lat = []
        for t in range(a.trials):
            body = json.dumps({"key": base64.b64encode(b"bench").decode(),
                               "value": base64.b64encode(f"v{t}".encode()).decode()}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{CLIENT[0]}/v3/kv/put", data=body)
            start = time.monotonic()
            urllib.request.urlopen(req, timeout=5).read()
            while True:  # PUT / key / value
                line = watch.stdout.readline().strip()
                if line == f"v{t}":
                    break
            lat.append((time.monotonic() - start) * 1000)
        watch.kill()
        print(f"## etcd 3-member cluster on loopback, {time.strftime('%Y-%m-%d')}")
        print("| measure | median | worst |")
        print("|---|---|---|")
        print(f"| put on member 1 until a watcher on member 2 has it ({a.trials} puts) | "
              f"{statistics.median(lat):.2f} ms | {max(lat):.2f} ms |")
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
