#!/usr/bin/env python3
"""From a registration to nginx's rendered upstream on disk (bench/template.sh).

usage: template_bench.py REGFS MOUNT WORKDIR PORTS ROUNDS QUIET_MS

`regfs template --wait QUIET_MS ms` renders examples/nginx/upstream.conf.mustache
into WORKDIR (tmpfs). Each round registers a new instance (or removes one) with
one write() and times, with an inotify waiter on WORKDIR, the moment the new
upstream.conf is renamed into place, from the start of the write() and from its
return (the write is durable: it includes the daemon's fsync of its state);
the quiet period is subtracted. The
reference, measured in the same run: a write + rename of a file in WORKDIR seen
by the same inotify waiter (the floor any "file changed" path has here).
Prints one line per measure: name, rounds, median, p90, p99, max in ms.
"""
import ctypes
import os
import select
import statistics
import struct
import subprocess
import sys
import time

IN_MOVED_TO = 0x80
IN_CLOSE_WRITE = 0x8
libc = ctypes.CDLL("libc.so.6", use_errno=True)


class Inotify:
    def __init__(self, directory):
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0
        assert libc.inotify_add_watch(self.fd, directory.encode(), IN_MOVED_TO) >= 0

    def wait_for(self, name, timeout=10):
        """Blocks until NAME is renamed into the directory; returns the time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(name)
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            now = time.monotonic()
            buf = os.read(self.fd, 65536)
            pos = 0
            while pos < len(buf):
                _wd, _mask, _cookie, length = struct.unpack_from("iIII", buf, pos)
                got = buf[pos + 16:pos + 16 + length].rstrip(b"\0").decode()
                pos += 16 + length
                if got == name:
                    return now


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(name, samples):
    ms = [s * 1000 for s in samples]
    print(f"{name:<44} {len(ms):>5} {statistics.median(ms):8.3f} {pct(ms, 90):8.3f} "
          f"{pct(ms, 99):8.3f} {max(ms):8.3f}", flush=True)


def main():
    regfs, mount, work, ports, rounds, quiet_ms = sys.argv[1:7]
    ports = [int(p) for p in ports.split(",")]
    rounds, quiet = int(rounds), int(quiet_ms) / 1000
    here = os.path.dirname(os.path.abspath(__file__))
    tmpl = os.path.join(here, "..", "examples", "nginx", "upstream.conf.mustache")
    out = os.path.join(work, "upstream.conf")
    svc = os.path.join(mount, "web")
    with open(svc, "w") as f:
        f.write(f"127.0.0.1:{ports[0]}\n")
    watcher = Inotify(work)
    proc = subprocess.Popen([regfs, "--mount", mount, "template", "--wait", f"{quiet_ms}ms:10s",
                             f"{tmpl}:{out}"])
    try:
        watcher.wait_for("upstream.conf")
        # Reference: the same waiter, a write + rename in the same directory.
        ref = []
        for i in range(rounds):
            tmp = os.path.join(work, ".ref.tmp")
            t0 = time.monotonic()
            with open(tmp, "w") as f:
                f.write(f"server 127.0.0.1:{i};\n")
            os.rename(tmp, os.path.join(work, "ref"))
            ref.append(watcher.wait_for("ref") - t0)
        report("reference: write+rename -> inotify waiter", ref)

        # A registration (or removal) -> the new upstream.conf renamed into place.
        lat, after, writes = [], [], []
        extra = ports[1:]
        for i in range(rounds):
            port = extra[i % len(extra)]
            line = f"127.0.0.1:{port}\n" if (i // len(extra)) % 2 == 0 else f"-127.0.0.1:{port}\n"
            t0 = time.monotonic()
            fd = os.open(svc, os.O_WRONLY | os.O_APPEND)
            os.write(fd, line.encode())
            t1 = time.monotonic()  # the registration is durable from here
            os.close(fd)
            t2 = watcher.wait_for("upstream.conf")
            lat.append(t2 - t0 - quiet)
            after.append(t2 - t1 - quiet)
            writes.append(t1 - t0)
        report("the registration write() itself", writes)
        report(f"write() start -> upstream.conf, minus {quiet_ms} ms", lat)
        report(f"write() return -> upstream.conf, minus {quiet_ms} ms", after)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
