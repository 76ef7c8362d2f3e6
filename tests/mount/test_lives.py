"""A node's lives on real daemons: one restarted with its state directory lost and a
clock behind its previous life still becomes a member at once, above that life, and
records the generation it took in its state directory; and what `regfs members` shows
of the others (gossip store only: etcd members are never heard from directly).
"""
import os
import shutil
import socket
import subprocess
import sys
import signal
import time

import pytest

from conftest import REGFS, gossip_address, read, wait_until, write


def member(d, name):
    return next((m for m in d.status()["members"] if m["name"] == name), None)


def test_a_node_restarted_below_its_previous_life_lives_above_it(make_daemon, servers):
    a = make_daemon()
    b = make_daemon("--node-name", "n2", "--join", gossip_address(a))
    # b's previous life: a generation an hour ahead of the wall clock, as if its
    # clock has since been set back an hour.
    b.stop()
    ahead = time.time_ns() // 1000 + 3600 * 1000 * 1000
    write(os.path.join(b.state, "generation"), f"{ahead}\n")
    b.start()
    previous = ahead + 1
    assert wait_until(lambda: (member(a, "n2") or {}).get("generation") == previous
                      and member(a, "n2")["state"] == "alive", 10)
    b.stop(signal.SIGKILL)
    assert wait_until(lambda: member(a, "n2")["state"] == "dead", 10)

    # The state directory is lost: the new life's wall-clock generation is an
    # hour below the previous one, which a holds dead.
    shutil.rmtree(b.state)
    started = time.monotonic()
    b.start()
    srv = servers()
    write(b.path("web"), srv.endpoint + "\n")
    assert wait_until(lambda: member(a, "n2")["state"] == "alive"
                      and member(a, "n2")["generation"] > previous
                      and os.path.exists(a.path("web")), 10), b.read_log()
    took = time.monotonic() - started
    assert took < 5, took
    assert read(a.path("web")) == srv.endpoint + "\n"
    life = member(a, "n2")["generation"]
    assert life == previous + 1
    # b recorded it: its next start goes higher still.
    assert int(read(os.path.join(b.state, "generation"))) == life
    assert next(m for m in b.status()["members"] if m["self"])["generation"] == life
    assert b.status()["generation"] == life
    assert "starts a new life" in b.read_log()


def _wchans(pid):
    """Where each of the process's threads sleeps in the kernel."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                found.append(f.read())
        except OSError:
            pass
    return found


def _abort_connection(mountpoint):
    """Ends a FUSE mount's connection through fusectl (what frees a daemon
    stuck in the kernel), mounting fusectl if needed."""
    subprocess.run(["mount", "-t", "fusectl", "none", "/sys/fs/fuse/connections"],
                   stderr=subprocess.DEVNULL)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mountpoint:
                conn = fields[2].split(":")[1]
                with open(f"/sys/fs/fuse/connections/{conn}/abort", "w") as a:
                    a.write("1")


def test_a_daemon_killed_while_an_invalidation_waits_exits_and_its_mount_is_taken_over(
        make_daemon, servers):
    """A writer's O_CREAT open of a name the kernel has not seen holds the lock of /
    while its lookup waits in the daemon (here for a check that never answers); a
    change from a peer then makes the daemon invalidate another name in /. kill -9
    must end the daemon: its mount dies (ENOTCONN) and a restart takes it over. A
    full invalidation waits for that lock in the kernel, uninterruptibly, and kept
    the killed daemon (and its mount) hanging for good."""
    a = make_daemon("--read-timeout", "20s")
    b = make_daemon("--node-name", "n2", "--join", gossip_address(a))
    ok = servers()
    write(b.path("other"), ok.endpoint + "\n")
    assert wait_until(lambda: os.path.exists(a.path("other")), 10)
    assert read(a.path("other")) == ok.endpoint + "\n"  # a's kernel keeps the entry
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepts, never answers
    write(b.path("slow"), f"127.0.0.1:{hang.getsockname()[1]} check=http:/health\n")
    assert wait_until(lambda: "slow" in os.listdir(a.mount), 10)  # a listing decides nothing
    os.listdir(a.path(".all"))  # the kernel keeps .all/ from now on: no lookup in / to reach it
    writer = subprocess.Popen([sys.executable, "-c",
                               "import sys; open(sys.argv[1], 'w').write('127.0.0.1:9\\n')",
                               a.path("slow")], stderr=subprocess.PIPE)
    try:
        # The writer's lookup waits in a (its open, and so the lock of /).
        assert wait_until(lambda: any("request_wait_answer" in w or "fuse_" in w
                                      for w in _wchans(writer.pid)), 10), _wchans(writer.pid)
        # A change from b: a drops `other` from its kernel's cache, and shows the change
        # in .all/ (a lookup in .all/, which the lock of / does not hold up).
        moved = servers()
        write(b.path("other"), moved.endpoint + "\n")
        assert wait_until(lambda: read(a.path(".all", "other")) == moved.endpoint + "\n", 10)
        blocked = wait_until(lambda: any("fuse_reverse_inval_entry" in w
                                         for w in _wchans(a.proc.pid)), 1)
        a.proc.kill()
        try:
            code = a.proc.wait(10)
        except subprocess.TimeoutExpired:
            _abort_connection(a.mount)  # free it, then fail
            a.proc.wait(10)
            pytest.fail(f"the killed daemon did not exit (its invalidation was blocked: {blocked})")
        assert code == -signal.SIGKILL
        writer.wait(10)
        assert writer.returncode != 0  # its open failed with the connection
    finally:
        writer.kill()
        hang.close()
    a.proc = None
    a.start("--join", gossip_address(b))  # takes the dead mount over

    def other_on_a():
        try:
            return read(a.path("other")) == moved.endpoint + "\n"
        except OSError:
            return False
    assert wait_until(other_on_a, 15), a.read_log()


def test_cli_members_shows_when_each_member_was_last_heard(make_daemon):
    """`regfs members`' HEARD column is .status.json's last_heard_age_ms: `Nms ago` for a
    peer this node hears from, `-` for itself."""
    a = make_daemon()
    make_daemon("--node-name", "n2", "--join", gossip_address(a))
    assert wait_until(lambda: any(m["name"] == "n2" and m["last_heard_age_ms"] is not None
                                  for m in a.status()["members"]), 10)
    r = subprocess.run([REGFS, "--mount", a.mount, "members"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    header, *lines = r.stdout.splitlines()
    assert header.split() == ["NAME", "ADDRESS", "STATE", "INCARNATION", "GENERATION", "HEARD"]
    rows = {line.split()[0]: line for line in lines}
    assert sorted(rows) == ["n1", "n2"], r.stdout
    assert rows["n1"].split()[1] == "(self)" and rows["n1"].endswith("  -"), r.stdout
    heard = rows["n2"].split()[-2:]
    assert heard[1] == "ago" and heard[0].endswith("ms") and heard[0][:-2].isdigit(), r.stdout
