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


def test_a_dead_mount_reached_through_a_symbolic_link_is_taken_over(make_daemon, servers):
    """The mount table names the mountpoint with its links resolved; a restart given
    the path through a link still finds the dead mount and takes it over."""
    import signal
    from conftest import read, write
    d = make_daemon()
    d.stop(signal.SIGKILL)
    real = os.path.join(d.base, "real")
    os.makedirs(os.path.join(real, "mnt"))
    os.symlink(real, os.path.join(d.base, "link"))
    d.mount = os.path.join(d.base, "link", "mnt")
    d.start()
    s = servers()
    write(d.path("web"), s.endpoint)
    d.stop(signal.SIGKILL)
    d.start()
    assert read(d.path("web")) == s.endpoint + "\n"
    with open("/proc/mounts") as f:
        on_it = [line for line in f if line.split()[1] == os.path.join(real, "mnt")]
    assert len(on_it) == 1, on_it  # taken over, not mounted on top of the dead one
