"""Crash consistency at a reduced count: tests/crash/crash_test.py kills regfsd
with SIGKILL during bursts of changes from several writers, restarts it on the same
state directory and mountpoint, and checks every acknowledged change is there and
no refused one is (the long form: tests/crash/run.sh, 1,000 kills)."""
import os
import subprocess
import sys

from conftest import BUILD

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "crash", "crash_test.py")


def test_kill_9_during_writes_loses_nothing_acknowledged():
    kills = os.environ.get("REGFS_CRASH_KILLS", "40")
    r = subprocess.run([sys.executable, SCRIPT, "--kills", kills],
                       env={**os.environ, "REGFS_BUILD": BUILD},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "crash test: ok" in r.stdout
