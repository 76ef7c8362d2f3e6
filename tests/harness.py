"""What the pytest suites share: where the build is, waiting for a condition,
reading and writing files on a mount, and one regfsd process on its own
mountpoint."""
import json
import os
import signal
import subprocess
import time

BUILD = os.environ.get("REGFS_BUILD", os.path.join(os.path.dirname(__file__), "..", "build"))
REGFSD = os.path.join(BUILD, "daemon", "app", "regfsd")
REGFS = os.path.join(BUILD, "daemon", "cli", "regfs")


def wait_until(predicate, timeout=5.0, step=0.01):
    """Polls `predicate` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text, append=False):
    """One open, one write() and one close, as a registering service does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
    try:
        os.write(fd, text.encode() if isinstance(text, str) else text)
    finally:
        os.close(fd)


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Sends `sig` and returns the exit code; kills the process if it has not
    exited after `timeout` s (the code is then -SIGKILL)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Regfsd:
    """One regfsd with its mountpoint, state directory and log under `base`.
    A subclass gives the command line (`command`); the process can be stopped
    and started again on the same state."""

    def __init__(self, base):
        self.base = base
        self.mount = os.path.join(base, "mnt")
        self.state = os.path.join(base, "state")
        self.log = os.path.join(base, "regfsd.log")
        self.proc = None

    def command(self):
        raise NotImplementedError

    def start(self, *extra):
        """Starts the daemon and returns once its mount answers."""
        self.proc = subprocess.Popen([*self.command(), *extra], stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        ok = wait_until(lambda: self.proc.poll() is not None or self._ready(), 10)
        assert ok and self.proc.poll() is None, f"regfsd did not start: {self.read_log()}"
        return self

    def _ready(self):
        try:
            return "regfs_reads_total" in read(self.path(".metrics"))
        except OSError:
            return False

    def path(self, *parts):
        return os.path.join(self.mount, *parts)

    def status(self):
        """The daemon's `.status.json`."""
        return json.loads(read(self.path(".status.json")))

    def metric(self, name):
        """The value of one sample in `.metrics` (None when it is not there)."""
        for line in read(self.path(".metrics")).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals the daemon and returns its exit code (SIGKILL after `timeout` s)."""
        if self.proc is None:
            return None
        code = stop_process(self.proc, sig, timeout)
        self.proc = None
        return code

    def cleanup(self):
        self.stop(signal.SIGKILL)
        subprocess.run(["fusermount3", "-uz", self.mount], stderr=subprocess.DEVNULL)
        subprocess.run(["umount", "-l", self.mount], stderr=subprocess.DEVNULL)
