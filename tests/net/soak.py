#!/usr/bin/python3
"""Soak: five daemons in network namespaces under load, loss and churn.

    tests/net/soak.py [--minutes 10] [--readers 64] [--writers 8] [--loss 10]
                      [--churn 60] [--seed N] [--out FILE] [--lose-state]
    tests/net/soak.py --scan-log FILE...

As root, with REGFS_BUILD naming the build (a sanitizer build works: ASan,
UBSan and TSan reports fail the run, see below). Its own bridge (br-regfs-soak,
10.78.0.0/24, an address in the root namespace, no default route in the
namespaces) and namespaces (rs1..rs5), so it runs beside the test suites;
--lane 1 uses br-regfs-soak1, 10.80.0.0/24 and rt1..rt5, beside another soak.

- Readers read random services on random nodes without pause: through
  `/registry/<svc>` (a health check at read time: half of the services are
  checked with a TCP connect to a listener on the bridge) and `.all/<svc>`.
  Only the documented errnos are allowed: ENOENT (not registered yet, or
  removed), EHOSTDOWN (no instance passed its check); on a node that is being
  restarted, ENOTCONN / ECONNABORTED / ENOENT (its mount is gone).
- Writers each own services pinned to one node and replace, append, remove
  an endpoint (`-ENDPOINT`) or unlink them; every acknowledged change is the
  expected state, a change whose write failed (its node was killed) makes the
  service's state unknown until the next acknowledged replace. One write in
  ten is bad input (a valid line, then a malformed one), which must fail
  with EINVAL and change nothing; and one more client retries a bad line on
  a service of node 1 (`retried`) 20-100 times a second, which readers read
  too.
- Every --churn seconds one of nodes 3-5 (in turn) is killed with SIGKILL and
  started again on its state directory; nodes 1 and 2 live through the run,
  and their resident memory, open descriptors and the mount's inodes
  (regfs_inodes) are sampled every 10 s and judged after --warmup minutes.
- Every node drops --loss percent of what arrives from the test network.

At the end the loss is healed and every node must list exactly the expected
endpoints of every service whose state is known. --lose-state wipes a killed
node's state directory before its restart, which those checks must catch.

Then every daemon is stopped with SIGTERM, so that a sanitizer build runs its
leak check at exit, and must exit 0. Each node's log holds every incarnation
of its daemon (a restarted one appends to it); every log is scanned for the
lines that begin sanitizer reports (SANITIZER_MARKS), whenever they were
printed, and each one is an error; the summary counts them. If there were any,
the logs are kept and their directory printed. ASAN_OPTIONS and UBSAN_OPTIONS
default to what tests/run sets. --scan-log runs only that scan over the given
files (its own test: tests/net/test_soak_scan.py).

Prints a JSON summary (also to --out) and exits 1 if anything failed, printing
the seed.
"""
import argparse
import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import REGFS, wait_until  # noqa: E402
from conftest import PORT, Host, sh  # noqa: E402

NODES = 5
# Two soaks can run at once (--lane 0 or 1): each has its own bridge, subnet
# and namespace names.
LANES = [("br-regfs-soak", "10.78.0", "rs"), ("br-regfs-soak1", "10.80.0", "rt")]
BRIDGE, SUBNET, PREFIX = LANES[0]
CHECKED = [f"checked-{i}" for i in range(8)]
PLAIN = [f"plain-{i}" for i in range(8)]
# Registered once on node 1; then only a misconfigured client's retries of a
# bad line are written to it, each refused (the soak's bad_client).
RETRIED = "retried"
ALWAYS = {errno.ENOENT, errno.EHOSTDOWN}
RESTARTING = ALWAYS | {errno.ENOTCONN, errno.ECONNABORTED}
# The first line of every ASan, LeakSanitizer, UBSan and TSan report.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def steady(name):
    """Nodes 1 and 2 are never killed: their memory and descriptors are judged."""
    return name in (f"{PREFIX}1", f"{PREFIX}2")


def teardown():
    for i in range(1, NODES + 1):
        subprocess.run(["ip", "netns", "del", f"{PREFIX}{i}"], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)


def sanitizer_reports(paths):
    """The lines of the given logs that begin a sanitizer report, as (path, line)."""
    found = []
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                found += [(path, line.rstrip()) for line in f
                          if any(mark in line for mark in SANITIZER_MARKS)]
        except FileNotFoundError:
            pass
    return found


def scan_logs(paths):
    """--scan-log: the scan alone, its count as JSON; exits 1 if it found a report."""
    found = sanitizer_reports(paths)
    print(json.dumps({"logs_scanned": len(paths), "sanitizer_reports": len(found),
                      "reports": [f"{p}: {line}" for p, line in found]}, indent=1))
    sys.exit(1 if found else 0)


def proc_sample(pid):
    rss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def inodes(host):
    """The inodes the node's mount keeps (regfs_inodes in .metrics), None if unreadable."""
    try:
        with open(host.path(".metrics")) as f:
            for line in f:
                if line.startswith("regfs_inodes "):
                    return int(float(line.split()[1]))
    except OSError:
        pass
    return None


class Listener:
    """Accepts and closes TCP connections on the bridge: the checked services' target."""

    def __init__(self, host):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.5)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                pass


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.base = tempfile.mkdtemp(prefix="regfs-soak-")
        os.chmod(self.base, 0o755)
        self.hosts = []
        self.restarting = set()  # node names being killed and restarted
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.reads = 0
        self.read_errnos = {}
        self.errors = []  # anything not allowed, with context
        self.writes = {"acknowledged": 0, "failed": 0, "refused": 0}
        self.expected = {}  # service -> set of endpoints (acknowledged), or None: unknown
        self.owner = {}     # service -> Host its writer writes on
        self.samples = {}   # node -> [(t, rss_kb, fds, mount inodes)]
        self.kills = 0
        self.incarnations = 0
        self.exit_codes = {}  # node -> exit status on the final SIGTERM
        self.reports = []     # (log, line) of every sanitizer report
        self.kept = None      # the directory left behind with the logs, if any

    # --- set-up -----------------------------------------------------------
    def start(self):
        teardown()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        self.key = os.path.join(self.base, "key")
        with open(self.key, "w") as f:
            f.write(subprocess.run([REGFS, "keygen"], capture_output=True, text=True,
                                   check=True).stdout)
        self.listener = Listener(f"{SUBNET}.1")
        for i in range(1, NODES + 1):
            h = Host(i, self.base, prefix=PREFIX, subnet=SUBNET, bridge=BRIDGE)
            h.up()
            self.hosts.append(h)
        for h in self.hosts:
            self.start_host(h)
        names = {h.name for h in self.hosts}
        assert wait_until(lambda: all(
            {n for n, s in h.members().items() if s == "alive"} == names for h in self.hosts), 30)
        # The checked services: one instance on every node, a TCP check to the listener.
        for i, svc in enumerate(CHECKED):
            for h in self.hosts:
                h.write(svc, f"{SUBNET}.1:{self.listener.port}\n")
        first = self.hosts[0]
        self.owner[RETRIED] = first
        self.expected[RETRIED] = {f"{first.ip}:{port}" for port in (1, 2)}
        first.write(RETRIED, "".join(f"{e} check=none\n" for e in sorted(self.expected[RETRIED])))
        for h in self.hosts:
            h.lossy(self.args.loss)

    def start_host(self, h):
        self.incarnations += 1
        h.start(self.key, [f"{self.hosts[0].ip}:{PORT}"])

    # --- load -------------------------------------------------------------
    def reader(self, rng):
        services = CHECKED + PLAIN + [RETRIED] + [
            f"w{w}-{k}" for w in range(self.args.writers) for k in range(2)]
        while not self.stop.is_set():
            h = rng.choice(self.hosts)
            svc = rng.choice(services)
            path = h.path(".all", svc) if rng.random() < 0.3 else h.path(svc)
            restarting = h.name in self.restarting
            try:
                with open(path) as f:
                    f.read()
                code = 0
            except OSError as e:
                code = e.errno
            with self.lock:
                self.reads += 1
                self.read_errnos[code] = self.read_errnos.get(code, 0) + 1
                allowed = RESTARTING if (restarting or h.name in self.restarting) else ALWAYS
                if code and code not in allowed and len(self.errors) < 100:
                    self.errors.append(f"read {path}: errno {code} ({errno.errorcode.get(code)})")

    def writer(self, w, rng):
        mine = [f"w{w}-{k}" for k in range(2)] + [PLAIN[w % len(PLAIN)] if w < len(PLAIN) else None]
        mine = [s for s in mine if s]
        for i, svc in enumerate(mine):
            self.owner[svc] = self.hosts[(w + i) % NODES]
            self.expected[svc] = set()
        port = 20000 + w * 1000

        def fresh(h, have):
            """This writer's next endpoint on `h`: ports wrap within 1024-65535 (a
            30-minute soak writes more than 45,000 of them) and skip what the
            service holds."""
            nonlocal port
            while True:
                port = 1024 + (port - 1024 + 1) % (65536 - 1024)
                endpoint = f"{h.ip}:{port}"
                if not have or endpoint not in have:
                    return endpoint

        while not self.stop.is_set():
            svc = rng.choice(mine)
            h = self.owner[svc]
            if h.name in self.restarting:
                self.stop.wait(0.05)
                continue
            have = self.expected[svc]
            if rng.random() < 0.1:
                op = "refuse"  # bad input: refused, and must change nothing
            else:
                op = rng.choice(("replace", "append", "remove", "unlink")) if have else "replace"
            try:
                if op == "replace":
                    eps = {fresh(h, have) for _ in range(rng.randint(1, 3))}
                    h.write(svc, "".join(f"{e} check=none\n" for e in sorted(eps)))
                    after = eps
                elif op == "append":
                    new = fresh(h, have)
                    h.write(svc, f"{new} check=none\n", append=True)
                    after = have | {new} if have is not None else None
                elif op == "remove":
                    gone = rng.choice(sorted(have))
                    h.write(svc, f"-{gone}\n", append=True)
                    after = have - {gone}
                elif op == "refuse":
                    try:
                        h.write(svc, f"{fresh(h, have)} check=none\nnot-an-endpoint\n",
                                append=rng.random() < 0.5)
                    except OSError as e:
                        if e.errno != errno.EINVAL:
                            raise
                        with self.lock:
                            self.writes["refused"] += 1
                    else:
                        with self.lock:
                            self.errors.append(f"refuse {svc} on {h.name}: a malformed line was accepted")
                            self.expected[svc] = None
                    self.stop.wait(rng.uniform(0.01, 0.1))
                    continue
                else:
                    os.unlink(h.path(svc))
                    after = set()
                with self.lock:
                    self.expected[svc] = after
                    self.writes["acknowledged"] += 1
            except OSError as e:
                with self.lock:
                    self.writes["failed"] += 1
                    if h.name not in self.restarting and e.errno not in (errno.ENOTCONN,
                                                                         errno.ECONNABORTED):
                        self.errors.append(f"{op} {svc} on {h.name}: errno {e.errno}")
                    # In flight when the node was killed: either outcome may stand.
                    self.expected[svc] = None
            self.stop.wait(rng.uniform(0.01, 0.1))

    def bad_client(self, rng):
        """Retries a bad line on RETRIED without end, as a misconfigured client
        would: every write must fail with EINVAL and change nothing (node 1,
        where it writes, is never killed), and must cost the node nothing it
        keeps (judge_steady)."""
        h = self.owner[RETRIED]
        while not self.stop.wait(rng.uniform(0.01, 0.05)):
            try:
                h.write(RETRIED, "not-an-endpoint\n", append=rng.random() < 0.5)
                problem = "a malformed line was accepted"
            except OSError as e:
                problem = None if e.errno == errno.EINVAL else f"errno {e.errno}"
            with self.lock:
                if problem is None:
                    self.writes["refused"] += 1
                elif len(self.errors) < 100:
                    self.errors.append(f"bad input to {RETRIED} on {h.name}: {problem}")

    def sampler(self):
        start = time.monotonic()
        while not self.stop.wait(10):
            for h in self.hosts:
                if steady(h.name) and h.proc is not None:
                    rss, fds = proc_sample(h.proc.pid)
                    self.samples.setdefault(h.name, []).append(
                        (round(time.monotonic() - start), rss, fds, inodes(h)))

    def churn(self):
        victims = [h for h in self.hosts if not steady(h.name)]
        turn = 0
        while not self.stop.wait(self.args.churn):
            h = victims[turn % len(victims)]
            turn += 1
            self.restarting.add(h.name)
            try:
                h.proc.send_signal(signal.SIGKILL)
                h.proc.wait(10)
                h.proc = None
                self.kills += 1
                if self.args.lose_state:
                    shutil.rmtree(h.state)  # the checker's own test: acknowledged writes lost
                self.start_host(h)
                # Writers and readers judge it as a live node again once
                # its mount answers.
            except Exception as e:  # noqa: BLE001 - reported as a failure
                self.errors.append(f"restart of {h.name}: {e}")
            finally:
                self.restarting.discard(h.name)

    # --- the run ----------------------------------------------------------
    def run(self):
        threads = [threading.Thread(target=self.reader, args=(random.Random(self.rng.random()),))
                   for _ in range(self.args.readers)]
        threads += [threading.Thread(target=self.writer, args=(w, random.Random(self.rng.random())))
                    for w in range(self.args.writers)]
        threads += [threading.Thread(target=self.bad_client, args=(random.Random(self.rng.random()),)),
                    threading.Thread(target=self.sampler), threading.Thread(target=self.churn)]
        for t in threads:
            t.start()
        self.stop.wait(self.args.minutes * 60)
        self.stop.set()
        for t in threads:
            t.join()

    def converged(self):
        for h in self.hosts:
            h.heal()
        known = {s: e for s, e in self.expected.items() if e is not None}

        def listed(h, svc):
            try:
                with open(h.path(".all", svc)) as f:
                    return {line.split()[0] for line in f if line.strip()}
            except OSError as e:
                return set() if e.errno == errno.ENOENT else None

        def agreed():
            return all(listed(h, s) == e for h in self.hosts for s, e in known.items())
        ok = wait_until(agreed, 60)
        if not ok:
            for h in self.hosts:
                for s, e in known.items():
                    got = listed(h, s)
                    if got != e:
                        self.errors.append(f"at the end {h.name} lists {s} as {sorted(got or [])}, "
                                           f"acknowledged {sorted(e)}")
        return len(known), len(self.expected) - len(known)

    def judge_steady(self):
        verdict = {}
        for name, series in self.samples.items():
            # After warm-up (--warmup: longer than the 5 min removals are
            # remembered, after which they stop accumulating): the last samples
            # against the first, memory within 10 % or 2 MB, descriptors within 8,
            # the mount's inodes within twice or 200 more (they go up and down
            # with what readers hold; an inode kept per change or per refused
            # write adds hundreds a minute).
            warm = [x for x in series if x[0] >= self.args.warmup * 60]
            if len(warm) < 4:
                continue
            head, tail = warm[:2], warm[-2:]
            rss0, rss1 = max(s[1] for s in head), max(s[1] for s in tail)
            fd0, fd1 = max(s[2] for s in head), max(s[2] for s in tail)
            ino0 = max((s[3] for s in head if s[3] is not None), default=0)
            ino1 = max((s[3] for s in tail if s[3] is not None), default=0)
            flat = (rss1 <= max(rss0 * 1.10, rss0 + 2048) and fd1 <= fd0 + 8 and
                    ino1 <= max(2 * ino0, ino0 + 200))
            verdict[name] = {"rss_kb": [rss0, rss1], "fds": [fd0, fd1], "flat": flat,
                             "inodes": [ino0, ino1],
                             "peak_rss_kb": max(s[1] for s in series),
                             "per_minute": [x for x in series if x[0] % 60 < 10]}
            if not flat:
                self.errors.append(f"{name} grew after warm-up: rss {rss0}->{rss1} kB, "
                                   f"fds {fd0}->{fd1}, inodes {ino0}->{ino1}")
        return verdict

    def cleanup(self):
        """Stops every daemon with SIGTERM (a sanitizer build checks for leaks as
        it exits), then scans every node's log, all incarnations of it."""
        if hasattr(self, "listener"):
            self.listener.stop = True
        for h in self.hosts:
            if h.proc is None:
                continue
            code = h.stop(signal.SIGTERM, timeout=60)
            if code == -signal.SIGKILL:
                code = f"still running 60 s after SIGTERM: killed ({code})"
            self.exit_codes[h.name] = code
            if code != 0:
                self.errors.append(f"{h.name} exited with {code} on SIGTERM")
        self.reports = sanitizer_reports(
            [os.path.join(h.dir, "regfsd.log") for h in self.hosts])
        for path, line in self.reports:
            self.errors.append(f"{os.path.basename(os.path.dirname(path))}: {line}")
        teardown()
        if self.reports:
            self.kept = self.base  # the logs, for the reports' stacks
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--readers", type=int, default=64)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--loss", type=int, default=10)
    ap.add_argument("--churn", type=float, default=60)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--warmup", type=float, default=6, help="minutes before memory is judged")
    ap.add_argument("--lane", type=int, choices=(0, 1), default=0)
    ap.add_argument("--out")
    ap.add_argument("--lose-state", action="store_true",
                    help="wipe a killed node's state directory before its restart, to see "
                         "the soak's checks catch what that loses")
    ap.add_argument("--scan-log", nargs="+", metavar="FILE",
                    help="only scan these daemon logs for sanitizer reports")
    args = ap.parse_args()
    if args.scan_log:
        scan_logs(args.scan_log)
    for name, value in SANITIZER_ENV.items():
        os.environ.setdefault(name, value)
    global BRIDGE, SUBNET, PREFIX
    BRIDGE, SUBNET, PREFIX = LANES[args.lane]
    soak = Soak(args)
    started = time.monotonic()
    try:
        soak.start()
        soak.run()
        known, unknown = soak.converged()
        steady = soak.judge_steady()
    finally:
        soak.cleanup()
    summary = {
        "seed": args.seed, "minutes": args.minutes, "readers": args.readers,
        "writers": args.writers, "loss_percent": args.loss, "churn_s": args.churn,
        "warmup_min": args.warmup,
        "build": os.environ.get("REGFS_BUILD"), "kills": soak.kills,
        "reads": soak.reads, "read_errnos": {errno.errorcode.get(k, "ok"): v
                                             for k, v in sorted(soak.read_errnos.items())},
        "writes": soak.writes, "services_checked_at_end": known,
        "services_unknown_at_end": unknown, "steady_nodes": steady,
        "exit_codes_on_sigterm": soak.exit_codes,
        "logs_scanned": len(soak.hosts), "incarnations_scanned": soak.incarnations,
        "sanitizer_reports": len(soak.reports),
        "wall_s": round(time.monotonic() - started), "errors": soak.errors[:50],
    }
    if soak.kept:
        summary["logs_kept_in"] = soak.kept
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if soak.errors:
        print(f"soak FAILED (seed {args.seed}): {len(soak.errors)} error(s)", file=sys.stderr)
        sys.exit(1)
    print(f"soak passed (seed {args.seed})", file=sys.stderr)


if __name__ == "__main__":
    main()
