#!/usr/bin/env python3
"""Crash consistency: kill -9 regfsd at seeded random moments while several writer
processes change registrations through the mount, restart it on the same state
directory and mountpoint, and check that what each writer was told holds.

Each writer process owns its own services (so the outcome of every change is
decided by that writer's order alone) and runs one change at a time, drawn from
a seeded generator: a replace (open O_TRUNC, write), an append (O_APPEND), a
removal (a `-ENDPOINT` line), an unlink, or a write the daemon must refuse
(a valid line followed by a malformed one: EINVAL; more than 256 instances:
ENOSPC; the removal of an endpoint not held: ENOENT). Every endpoint a writer
writes is new, so each can be traced to the one change that wrote it.

What is checked after every restart, per service, against the writer's record:
- a change whose write() or unlink() returned success is there (its endpoints
  present, the ones it removed absent), as are all acknowledged before it;
- a change that returned an error other than the two below is not there;
- a change whose call ended with ENOTCONN or ECONNABORTED (the daemon died
  while the request was queued or being handled: the caller was told neither
  yes nor no) is there entirely or not at all: the service holds exactly the
  state before it or exactly the state after it, nothing else;
- nothing a refused write carried is anywhere, and no service is there that
  no acknowledged or in-flight change made.
At most one change per writer is in flight when the daemon dies, so these
describe every allowed outcome exactly.

The kill moment is drawn from the seed: a delay after the writers have
started (so kills land before, during and after requests), and now and then
a kill while the daemon is still starting (while it records its generation and
loads the state directory). The seed is printed; the same seed gives the same
schedule and the same sequence of changes per writer.

Usage: crash_test.py [--kills N] [--seed S] [--writers W]   (root; REGFS_BUILD)
Exit 0 when every check held; 1 with the first violation and its cycle.
"""
import argparse
import errno
import json
import mmap
import os
import random
import signal
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import REGFSD  # noqa: E402

SERVICES_PER_WRITER = 3
MAX_OPS_PER_BURST = 5000  # a writer's burst ends at the kill, or here
IN_DOUBT = (errno.ENOTCONN, errno.ECONNABORTED)


class Violation(Exception):
    pass


def endpoint(w, s, n):
    return f"10.{w}.{s}.{n // 60000 % 250 + 1}:{n % 60000 + 1}"


def refused_endpoint(w, s, n):
    return f"10.250.{w * SERVICES_PER_WRITER + s}.{n // 60000 % 250 + 1}:{n % 60000 + 1}"


class Writer:
    """One writer's services and what it was told about each of them."""

    def __init__(self, index):
        self.index = index
        self.services = [f"w{index}s{s}" for s in range(SERVICES_PER_WRITER)]
        self.acked = {name: frozenset() for name in self.services}
        self.counter = 0  # endpoints are never reused

    def fresh(self, s):
        self.counter += 1
        return endpoint(self.index, s, self.counter)

    def refused(self, s):
        self.counter += 1
        return refused_endpoint(self.index, s, self.counter)


def do_write(path, text, append):
    """A change through the mount: 0 when write() returned success, else its errno
    (or the open's, as ('open', errno): the change was never sent)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        return ("open", e.errno)
    try:
        os.write(fd, text.encode())
        result = 0
    except OSError as e:
        result = e.errno
    try:
        os.close(fd)  # the write's answer decides; a close after the kill fails
    except OSError:
        pass
    return result


def burst(mount, writer, rng, stop):
    """Runs changes until the daemon's end stops them. Returns (events, in_doubt):
    events are (service, new acked set) for acknowledged changes; in_doubt is
    (service, before, after) for a change with no answer, or None. Refused
    changes raise Violation when their errno is not the expected one."""
    events = []
    for _ in range(MAX_OPS_PER_BURST):
        if stop[0]:  # the daemon was killed: no change may reach its successor
            break
        s = rng.randrange(SERVICES_PER_WRITER)
        name = writer.services[s]
        path = os.path.join(mount, name)
        held = writer.acked[name]
        kind = rng.choice(["replace", "replace", "append", "append", "append", "remove",
                           "unlink", "refuse_line", "refuse_limit", "refuse_absent"])
        if kind == "remove" and not held:
            kind = "append"
        if kind == "replace":
            new = [writer.fresh(s) for _ in range(rng.randint(1, 3))]
            text, append, after = "".join(e + " check=none\n" for e in new), False, frozenset(new)
            expect = 0
        elif kind == "append":
            new = [writer.fresh(s) for _ in range(rng.randint(1, 2))]
            text, append, after = "".join(e + " check=none\n" for e in new), True, held | set(new)
            expect = 0
        elif kind == "remove":
            gone = rng.sample(sorted(held), rng.randint(1, min(2, len(held))))
            text, append, after = "".join("-" + e + "\n" for e in gone), True, held - set(gone)
            expect = 0
        elif kind == "refuse_line":
            text = writer.refused(s) + " check=none\n" + "not-an-endpoint\n"
            append, after, expect = rng.random() < 0.5, held, errno.EINVAL
        elif kind == "refuse_limit":
            text = "".join(writer.refused(s) + " check=none\n" for _ in range(257))
            append, after, expect = False, held, errno.ENOSPC
        elif kind == "refuse_absent":
            text = "-" + writer.refused(s) + "\n"
            append, after, expect = True, held, errno.ENOENT
        else:  # unlink
            after, expect = frozenset(), 0 if held else errno.ENOENT
            try:
                os.unlink(path)
                got = 0
            except OSError as e:
                got = e.errno
            text = None
        if text is not None:
            got = do_write(path, text, append)
        if isinstance(got, tuple):  # the open failed: nothing was sent
            if got[1] in IN_DOUBT:
                return events, None
            raise Violation(f"{kind} {name}: open failed with {errno.errorcode.get(got[1])}")
        if got in IN_DOUBT:
            return events, (name, held, after)
        if got != expect:
            raise Violation(f"{kind} {name}: got {errno.errorcode.get(got, got)}, "
                            f"expected {errno.errorcode.get(expect, expect)}")
        if expect == 0:
            writer.acked[name] = after
            events.append((name, sorted(after)))
    return events, None


def run_writer(mount, writer, seed, stop, out_path):
    """The body of a writer process: one burst, its record as JSON in out_path."""
    rng = random.Random(seed)
    try:
        events, doubt = burst(mount, writer, rng, stop)
        record = {"events": events, "counter": writer.counter,
                  "doubt": None if doubt is None else [doubt[0], sorted(doubt[1]), sorted(doubt[2])]}
    except Violation as e:
        record = {"violation": str(e)}
    except Exception as e:  # noqa: BLE001 - reported, the parent fails the run
        record = {"violation": f"writer crashed: {e!r}"}
    with open(out_path, "w") as f:
        json.dump(record, f)


class Daemon:
    def __init__(self, base):
        self.base = base
        self.mount = os.path.join(base, "mnt")
        self.state = os.path.join(base, "state")
        self.log = os.path.join(base, "regfsd.log")
        os.makedirs(self.mount, exist_ok=True)
        self.proc = None

    def spawn(self):
        cmd = [REGFSD, "--mount", self.mount, "--state-dir", self.state, "--node-name", "n1",
               "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0", "--check-interval", "1h",
               "--log-level", "warn", "--stall-timeout", "1s"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)

    def wait_ready(self, timeout=20):
        """Until .metrics reads. Read by a child process: on a mount that was
        not taken over, the read waits until killed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Violation(f"regfsd exited {self.proc.returncode} at start (its log is above)")
            try:
                r = subprocess.run(["cat", os.path.join(self.mount, ".metrics")],
                                   capture_output=True, text=True,
                                   timeout=max(0.1, deadline - time.monotonic()))
                if "regfs_reads_total" in r.stdout:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.005)
        raise Violation(f"regfsd not ready after {timeout} s (its log is above)")

    def kill(self):
        """SIGKILL; returns the process, to be reaped once a successor has
        taken the mount over (a daemon killed while its invalidation thread
        waits in the kernel ends only when its connection is aborted)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        return proc

    def registrations(self):
        with open(os.path.join(self.mount, ".status.json")) as f:
            services = json.load(f)["services"]
        return {name: sorted(i["endpoint"] for i in insts if i["owner"] == "n1")
                for name, insts in services.items()}

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def cleanup(self):
        proc = self.kill()
        subprocess.run(["umount", "-f", self.mount], stderr=subprocess.DEVNULL)
        if proc is not None:
            proc.wait()
        subprocess.run(["fusermount3", "-uz", self.mount], stderr=subprocess.DEVNULL)
        subprocess.run(["umount", "-l", self.mount], stderr=subprocess.DEVNULL)


def check(daemon, writers, doubts, cycle):
    """Compares the restarted daemon's registrations with the writers' records."""
    got = daemon.registrations()
    known = {name for w in writers for name in w.services}
    for name in sorted(set(got) - known):
        raise Violation(f"cycle {cycle}: service {name} was never written")
    for w in writers:
        for name in w.services:
            have = frozenset(got.get(name, []))
            for e in have:
                if e.startswith("10.250."):
                    raise Violation(f"cycle {cycle}: {name} holds {e}, which a refused write carried")
            if name in doubts:
                before, after = doubts[name]
                if have == after:
                    w.acked[name] = after
                elif have != before:
                    raise Violation(f"cycle {cycle}: {name} holds {sorted(have)}; the change in "
                                    f"flight allowed only {sorted(before)} or {sorted(after)}")
            elif have != w.acked[name]:
                raise Violation(f"cycle {cycle}: {name} holds {sorted(have)}, acknowledged "
                                f"{sorted(w.acked[name])}")


def proc_state(pid):
    """(state letter, wait channel) of process `pid`; ('Z', '') once it has ended."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/wchan") as f:
            return state, f.read().strip()
    except OSError:
        return "Z", ""


def stuck(pid):
    """Whether process `pid` waits in the kernel: for a FUSE answer, or for a lock
    that a process waiting for one holds."""
    state, wchan = proc_state(pid)
    return state == "D" or wchan == "request_wait_answer"


def settled(pids, timeout=20):
    """Waits until each of `pids` has exited (a zombie) or waits for a FUSE answer."""
    def done(pid):
        return proc_state(pid)[0] == "Z" or stuck(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(done(p) for p in pids):
            return True
        time.sleep(0.002)
    return False


def reap(proc, timeout=20):
    if proc is None:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise Violation(f"a killed regfsd did not end within {timeout} s after a successor "
                        f"took its mount over") from None


def cycle_once(daemon, writers, rng, seed, cycle, stats):
    """One life of the daemon: writers run, the daemon is killed, restarted, checked."""
    if rng.random() < 0.1:
        # A kill while the daemon starts: recording its generation, loading its state.
        reap(daemon.kill())
        daemon.spawn()
        time.sleep(rng.uniform(0, 0.03))
        reap(daemon.kill())
        stats["start_kills"] += 1
        daemon.spawn()
        daemon.wait_ready()
        check(daemon, writers, {}, cycle)
    delay = rng.uniform(0, 0.15)
    stop = mmap.mmap(-1, 1)  # shared with the writers: set once the daemon is killed
    children = []
    for w in writers:
        out = os.path.join(daemon.base, f"writer{w.index}.json")
        if os.path.exists(out):
            os.unlink(out)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_writer(daemon.mount, w, (seed * 1_000_003 + cycle) * 64 + w.index, stop, out)
            except BaseException:  # noqa: BLE001 - the child must not return into the parent
                code = 1
            os._exit(code)
        children.append((pid, out, w))
    time.sleep(delay)
    killed = daemon.kill()
    stop[0] = 1
    # Every writer has ended or waits on the dead connection (it cannot send
    # anything the successor would get) before the successor mounts.
    if not settled([pid for pid, _, _ in children]):
        states = [proc_state(pid) for pid, _, _ in children]
        raise Violation(f"cycle {cycle}: writers neither ended nor waited on the dead mount: {states}")
    wedged = any(stuck(pid) for pid, _, _ in children)
    stats["wedged"] += wedged
    daemon.spawn()
    # The successor's takeover ends the dead connection: every writer ends.
    left = {pid for pid, _, _ in children}
    deadline = time.monotonic() + 20
    while left and time.monotonic() < deadline:
        left = {pid for pid in left if os.waitpid(pid, os.WNOHANG) == (0, 0)}
        time.sleep(0.002)
    if left:
        raise Violation(f"cycle {cycle}: writers still wait on the killed daemon's mount 20 s "
                        f"after its successor started: {[proc_state(p) for p in left]}")
    doubts = {}
    failures = []
    for pid, out, w in children:
        try:
            with open(out) as f:
                raw = f.read()
        except OSError:
            raw = ""
        try:
            record = json.loads(raw)
        except ValueError:
            failures.append(f"writer {w.index} gave no record")
            continue
        if "violation" in record:
            failures.append(f"writer {w.index}: {record['violation']}")
            continue
        w.counter = record["counter"]
        for name, after in record["events"]:
            w.acked[name] = frozenset(after)
        stats["acked"] += len(record["events"])
        if record["doubt"] is not None:
            name, before, after = record["doubt"]
            doubts[name] = (frozenset(before), frozenset(after))
            stats["in_doubt"] += 1
    if failures:
        raise Violation(f"cycle {cycle}: " + "; ".join(failures))
    daemon.wait_ready()
    reap(killed)
    check(daemon, writers, doubts, cycle)
    for name, (before, after) in doubts.items():
        w = next(w for w in writers if name in w.services)
        landed = w.acked[name] == after and before != after
        stats["in_doubt_landed"] += landed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--writers", type=int, default=4)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"crash test: seed {seed}, {args.kills} kills, {args.writers} writers "
          f"(replay: {sys.argv[0]} --seed {seed} --kills {args.kills} --writers {args.writers})",
          flush=True)
    rng = random.Random(seed)
    base = tempfile.mkdtemp(prefix="regfs-crash-")
    os.chmod(base, 0o755)
    daemon = Daemon(base)
    writers = [Writer(i) for i in range(args.writers)]
    stats = {"acked": 0, "in_doubt": 0, "in_doubt_landed": 0, "start_kills": 0, "wedged": 0}
    started = time.monotonic()
    ok = False
    try:
        daemon.spawn()
        daemon.wait_ready()
        for cycle in range(args.kills):
            cycle_once(daemon, writers, rng, seed, cycle, stats)
            if (cycle + 1) % 100 == 0:
                print(f"  {cycle + 1} kills, {time.monotonic() - started:.0f} s, {stats}", flush=True)
        ok = True
    except Violation as e:
        # The log first: a caller that keeps only the end of the output keeps the reason.
        print(daemon.tail(), flush=True)
        print(f"FAIL (seed {seed}): {e}", flush=True)
    finally:
        daemon.cleanup()
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"state directory and log kept in {base}", flush=True)
    took = time.monotonic() - started
    kills = args.kills + stats["start_kills"]
    print(f"crash test: {'ok' if ok else 'FAILED'}: seed {seed}, {kills} kills "
          f"({stats['start_kills']} during start), {stats['acked']} acknowledged changes checked, "
          f"{stats['in_doubt']} in flight at a kill ({stats['in_doubt_landed']} of them landed), "
          f"{stats['wedged']} kills left the connection for the successor to abort, "
          f"{took:.1f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
