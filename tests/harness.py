"""What the pytest suites share: where the build is, and waiting for a condition."""
import os
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
