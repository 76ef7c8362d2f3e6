"""Crash consistency at a reduced count: tests/crash/crash_test.py kills regfsd
with SIGKILL during bursts of changes from several writers, restarts it on the same
state directory and mountpoint, and checks every acknowledged change is there and
no refused one is (the long form: tests/crash/run.sh, 1,000 kills)."""
import errno
import os
import subprocess
import sys

import pytest
from conftest import BUILD, read

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


FUSECTL = "/sys/fs/fuse/connections"


def test_the_sentinel_aborts_its_own_connection_never_a_successor_given_its_number(make_daemon):
    """The daemon's sentinel (daemon/app/sentinel.hpp) ends a killed daemon's FUSE
    connection when a thread of it cannot finish dying. A successor may have taken
    the mountpoint over first and been given the same connection number, since a
    number is free again once its mount is detached. The sentinel opens the
    connection's fusectl abort file while the connection is surely the daemon's,
    and a write to that open file ends that connection or nothing. Shown here with
    a successor that reuses the number: the file opened for the first connection
    leaves it serving; the same write through the number's path (what a sentinel
    that kept only the number would do) ends it."""
    if not os.path.ismount(FUSECTL):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", FUSECTL], check=True)
    d = make_daemon()
    number = os.minor(os.stat(d.mount).st_dev)
    first = os.open(f"{FUSECTL}/{number}/abort", os.O_WRONLY)
    try:
        d.stop()
        # The lowest free number is given out next; another mount made meanwhile
        # (a test running alongside) may take it, so a few tries.
        for _ in range(20):
            d.start()
            if os.minor(os.stat(d.mount).st_dev) == number:
                break
            d.stop()
        else:
            raise AssertionError(f"no successor was given connection number {number} in 20 starts")
        assert os.write(first, b"1") == 1
        assert "regfs_reads_total" in read(d.path(".metrics")), "the successor was ended"
    finally:
        os.close(first)
    with open(f"{FUSECTL}/{number}/abort", "w") as by_number:
        by_number.write("1")
    with pytest.raises(OSError) as ended:
        read(d.path(".metrics"))
    assert ended.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
