"""Every row of the SPEC's mount table and every errno, against a real mount."""
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import REGFS, closed_port, is_mounted, read, wait_until, write


def err(fn, *args):
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


def parked(d, n=1, timeout=10):
    """Waits until `n` requests are parked in the daemon (a reader is really waiting)."""
    return wait_until(lambda: d.metric("regfs_parked_requests") == n, timeout)


def registrations(d):
    """What is registered, without the verdicts (which age and change)."""
    return {name: sorted((i["endpoint"], i["check"], i["owner"]) for i in insts)
            for name, insts in d.status()["services"].items()}


# ---- reads -----------------------------------------------------------------

def test_listing_hides_dot_entries_and_shows_registered_services(daemon, servers):
    assert sorted(os.listdir(daemon.mount)) == sorted(
        [".all", ".wait", ".status.json", ".metrics", ".events"])
    s = servers()
    write(daemon.path("web"), s.endpoint)
    write(daemon.path("api"), s.endpoint)
    listed = sorted(n for n in os.listdir(daemon.mount) if not n.startswith("."))
    assert listed == ["api", "web"]
    assert sorted(os.listdir(daemon.path(".all"))) == ["api", "web"]
    ls = subprocess.run(["ls", daemon.mount], capture_output=True, text=True, check=True)
    assert ls.stdout.split() == ["api", "web"]


def test_read_of_a_healthy_instance(daemon, servers):
    s = servers()
    write(daemon.path("web"), s.endpoint + "\n")
    assert read(daemon.path("web")) == s.endpoint + "\n"
    assert read(daemon.path(".all", "web")) == s.endpoint + "\n"
    assert read(daemon.path(".wait", "web")) == s.endpoint + "\n"


def test_checks_http_tcp_none(daemon, servers):
    s = servers({"/ok": 200, "/moved": 301, "/missing": 404, "/broken": 503})
    for path, healthy in [("/ok", True), ("/moved", True), ("/missing", False), ("/broken", False)]:
        name = "h" + path.strip("/")
        write(daemon.path(name), f"{s.endpoint} check=http:{path}")
        if healthy:
            assert read(daemon.path(name)) == s.endpoint + "\n"
        else:
            assert err(read, daemon.path(name)) == errno.EHOSTDOWN
    write(daemon.path("t"), f"{s.endpoint} check=tcp")
    assert read(daemon.path("t")) == s.endpoint + "\n"
    dead = f"127.0.0.1:{closed_port()}"
    write(daemon.path("n"), f"{dead} check=none")
    assert read(daemon.path("n")) == dead + "\n"


def test_rotation_visits_every_healthy_instance(daemon, servers):
    ss = [servers() for _ in range(3)]
    write(daemon.path("web"), "".join(s.endpoint + "\n" for s in ss))
    seen = [read(daemon.path("web")).strip() for _ in range(30)]
    assert set(seen) == {s.endpoint for s in ss}
    counts = [seen.count(s.endpoint) for s in ss]
    assert min(counts) >= 5, counts


def test_a_rotating_name_is_a_link_decided_on_every_open(daemon, servers):
    ss = [servers() for _ in range(3)]
    web = daemon.path("web")
    write(web, "".join(s.endpoint + "\n" for s in ss))
    assert os.path.islink(web) and os.path.isfile(web)
    targets = {os.readlink(web) for _ in range(6)}
    assert len(targets) == 3 and all(t.startswith(".answers/") for t in targets), targets
    # Each target is one instance's answer; the name reads whatever its link names.
    answers = {read(daemon.path(t)) for t in targets}
    assert answers == {s.endpoint + "\n" for s in ss}
    # .answers/ lists nothing and finds only what a readlink named.
    assert os.listdir(daemon.path(".answers")) == []
    for bogus in ("999999", "0", "abc", "007", "-1", "1", "4"):
        assert err(os.stat, daemon.path(".answers", bogus)) == errno.ENOENT, bogus
    assert ".answers" not in os.listdir(daemon.mount)
    # Back to one instance: a plain file again, at the next open.
    write(web, ss[0].endpoint)
    assert not os.path.islink(web)
    assert read(web) == ss[0].endpoint + "\n"


def test_superseded_answers_are_forgotten_so_inodes_stay_bounded(daemon):
    # Every change of a rotating service supersedes the answers its readlinks
    # named under .answers/. Unless the kernel is told to drop those names it
    # keeps them (their entries never time out), and the daemon keeps an
    # inode for each: memory would grow with every change.
    web = daemon.path("web")
    base = daemon.metric("regfs_inodes")
    changes = 300
    for i in range(changes):
        port = 20000 + 2 * i
        write(web, f"127.0.0.1:{port} check=none\n127.0.0.1:{port + 1} check=none\n")
        got = {read(web) for _ in range(2)}
        assert got <= {f"127.0.0.1:{port}\n", f"127.0.0.1:{port + 1}\n"}, got
    # A name a readlink handed out stays findable for a moment (InodeTable::kHold).
    assert wait_until(lambda: daemon.metric("regfs_inodes") <= base + 20, 15), \
        (base, daemon.metric("regfs_inodes"))
    assert read(web) in {f"127.0.0.1:{20000 + 2 * changes - 2 + k}\n" for k in (0, 1)}


def test_writes_truncations_and_touches_that_change_nothing_leave_no_inodes_behind(daemon):
    # A write (refused or not), a truncation or a time update retires the
    # inode it was made through (the kernel changed that inode's pages), so the
    # next read of a rotating service gets a fresh answer inode. These change
    # nothing, so no change drops the retired one's .answers/ name: unless
    # retiring drops it, a client retrying a bad line (or touching the file)
    # grows the daemon by an inode each time.
    web = daemon.path("web")
    write(web, "127.0.0.1:20000 check=none\n127.0.0.1:20001 check=none\n")
    answers = {"127.0.0.1:20000\n", "127.0.0.1:20001\n"}
    assert read(web) in answers
    base = daemon.metric("regfs_inodes")
    for i in range(300):
        if i % 3 == 2:
            os.utime(web)
        elif i % 6 == 1:
            os.truncate(web, 0)
        else:
            assert err(write, web, f"127.0.0.1:{70000 + i} check=none\n", i % 2 == 1) == errno.EINVAL
        assert read(web) in answers
    # A name a readlink handed out stays findable for a moment (InodeTable::kHold).
    assert wait_until(lambda: daemon.metric("regfs_inodes") <= base + 20, 15), \
        (base, daemon.metric("regfs_inodes"))
    assert sorted(e for e, _, _ in registrations(daemon)["web"]) == ["127.0.0.1:20000", "127.0.0.1:20001"]


def test_writes_and_unlink_through_a_rotating_name(daemon, servers):
    a, b, c, d = (servers() for _ in range(4))
    web = daemon.path("web")
    write(web, f"{a.endpoint}\n{b.endpoint}\n")
    assert os.path.islink(web)
    write(web, c.endpoint)  # O_TRUNC through the link: replaces
    assert registrations(daemon)["web"] == [(c.endpoint, "tcp", "n1")]
    write(web, d.endpoint, append=True)
    write(web, a.endpoint, append=True)  # through the link again: adds
    assert sorted(e for e, _, _ in registrations(daemon)["web"]) == sorted(
        [c.endpoint, d.endpoint, a.endpoint])
    assert err(write, web, "not an endpoint") == errno.EINVAL
    assert len(registrations(daemon)["web"]) == 3
    os.unlink(web)
    assert err(read, web) == errno.ENOENT
    assert err(os.lstat, web) == errno.ENOENT


def test_a_rotating_name_with_nothing_healthy_is_host_down(daemon):
    dead = [f"127.0.0.1:{closed_port()}" for _ in range(2)]
    write(daemon.path("down"), "".join(e + "\n" for e in dead))
    assert err(read, daemon.path("down")) == errno.EHOSTDOWN
    assert err(read, daemon.path("down")) == errno.EHOSTDOWN


def test_concurrent_readers_of_a_changing_rotation_read_whole_answers(make_daemon, servers):
    # Verdicts age within 50 ms while instances go down and come back, so
    # targets keep changing under the readers: each must read one whole
    # endpoint every time, never a torn or empty answer or an error.
    d = make_daemon("--fresh", "50ms")
    ss = [servers() for _ in range(4)]
    ports = [s.port for s in ss]
    valid = {f"127.0.0.1:{p}\n" for p in ports}
    web = d.path("web")
    write(web, "".join(s.endpoint + "\n" for s in ss))
    bad, stop = [], threading.Event()

    def reader():
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            try:
                got = read(web)
            except OSError as e:
                bad.append(f"errno {e.errno}")
                return
            if got not in valid:
                bad.append(repr(got))
                return

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(12):  # one instance down at a time, then back on its port
            k = i % len(ss)
            ss[k].close()
            time.sleep(0.05)
            ss[k] = servers(port=ports[k])
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not bad, bad[:5]


def test_an_answer_written_through_is_never_handed_out_again(daemon, servers):
    a, b, c = servers(), servers(), servers()
    web = daemon.path("web")
    write(web, f"{a.endpoint}\n{b.endpoint}\n")
    before = {os.readlink(web) for _ in range(4)}
    write(web, c.endpoint, append=True)  # through one of those answers
    # The writer's bytes went into the kernel's pages of the answer it wrote
    # through: every later open must lead to fresh answers instead.
    expected = {a.endpoint + "\n", b.endpoint + "\n", c.endpoint + "\n"}
    after = [os.readlink(web) for _ in range(9)]
    assert len(set(after) & before) <= 1, (before, after)  # at most the untouched one
    assert {read(daemon.path(t)) for t in after} <= expected
    assert {read(web) for _ in range(9)} == expected


def test_all_lists_only_healthy_and_reads_never_return_a_failed_one(daemon, servers):
    s = servers()
    dead = f"127.0.0.1:{closed_port()}"
    write(daemon.path("web"), f"{s.endpoint}\n{dead}\n")
    assert read(daemon.path(".all", "web")) == s.endpoint + "\n"
    for _ in range(20):
        assert read(daemon.path("web")) == s.endpoint + "\n"


def test_nothing_healthy_is_host_down(daemon):
    write(daemon.path("down"), f"127.0.0.1:{closed_port()}")
    assert err(read, daemon.path("down")) == errno.EHOSTDOWN
    assert err(read, daemon.path(".all", "down")) == errno.EHOSTDOWN
    # The name still exists: it can be listed, rewritten and removed.
    assert "down" in os.listdir(daemon.mount)
    os.unlink(daemon.path("down"))
    assert err(read, daemon.path("down")) == errno.ENOENT


def test_advertise_address_fills_port_only_endpoints(daemon, servers):
    s = servers()
    write(daemon.path("a"), f":{s.port}")
    assert read(daemon.path("a")) == s.endpoint + "\n"
    write(daemon.path("b"), f"0.0.0.0:{s.port}")
    assert read(daemon.path("b")) == s.endpoint + "\n"


def test_ipv6_endpoint(daemon):
    srv = socket.socket(socket.AF_INET6)
    srv.bind(("::1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    try:
        write(daemon.path("v6"), f"[::1]:{port}")
        assert read(daemon.path("v6")) == f"[::1]:{port}\n"
    finally:
        srv.close()


def test_unregistered_name_is_enoent(daemon):
    assert err(read, daemon.path("nothing")) == errno.ENOENT
    assert err(read, daemon.path(".all", "nothing")) == errno.ENOENT
    assert err(os.stat, daemon.path("nothing")) == errno.ENOENT


# ---- changes are visible at once ---------------------------------------------

def test_changes_are_visible_to_the_next_open(daemon, servers):
    a, b = servers(), servers()
    assert err(read, daemon.path("web")) == errno.ENOENT  # a failed lookup first
    write(daemon.path("web"), a.endpoint)
    assert read(daemon.path("web")) == a.endpoint + "\n"
    write(daemon.path("web"), b.endpoint)
    assert read(daemon.path("web")) == b.endpoint + "\n"
    os.unlink(daemon.path("web"))
    assert err(read, daemon.path("web")) == errno.ENOENT
    write(daemon.path("web"), a.endpoint)
    assert read(daemon.path("web")) == a.endpoint + "\n"


def test_each_directory_sees_every_change_whichever_was_read(daemon, servers):
    # Names are invalidated only where a lookup answered them: each of / and
    # .all/ must still see every change, whether it or the other was read.
    a, b, c = servers(), servers(), servers()
    write(daemon.path("web"), a.endpoint)
    assert read(daemon.path(".all", "web")) == a.endpoint + "\n"
    write(daemon.path("web"), b.endpoint)
    assert read(daemon.path(".all", "web")) == b.endpoint + "\n"
    assert read(daemon.path("web")) == b.endpoint + "\n"
    write(daemon.path("web"), c.endpoint)
    assert read(daemon.path("web")) == c.endpoint + "\n"
    assert read(daemon.path(".all", "web")) == c.endpoint + "\n"
    for _ in range(3):  # within the 20 ms repeat of the last invalidations
        write(daemon.path("web"), a.endpoint)
        assert read(daemon.path("web")) == a.endpoint + "\n"
        write(daemon.path("web"), b.endpoint)
        assert read(daemon.path(".all", "web")) == b.endpoint + "\n"
        assert read(daemon.path("web")) == b.endpoint + "\n"


def test_a_stopped_service_turns_host_down_and_recovers(daemon, servers):
    s = servers()
    port = s.port
    write(daemon.path("web"), s.endpoint)
    assert read(daemon.path("web")) == s.endpoint + "\n"
    s.close()
    # After the freshness window (200 ms) the read checks again and fails.
    assert wait_until(lambda: _errno_of(daemon.path("web")) == errno.EHOSTDOWN, 3)
    servers(port=port)
    assert wait_until(lambda: _errno_of(daemon.path("web")) == 0, 3)


def _errno_of(path):
    try:
        read(path)
        return 0
    except OSError as e:
        return e.errno


def test_wait_blocks_until_an_instance_registers(make_daemon, servers):
    d = make_daemon("--wait-timeout", "20s")
    s = servers()
    got = {}
    reader = threading.Thread(target=lambda: got.update(read=read(d.path(".wait", "late"))))
    reader.start()
    try:
        assert parked(d)  # the reader waits in the daemon for a registration
        assert got == {}
        write(d.path("late"), s.endpoint)
        reader.join(20)
        assert got == {"read": s.endpoint + "\n"}
    finally:
        reader.join(25)


def test_wait_times_out(daemon):
    started = time.monotonic()
    assert err(read, daemon.path(".wait", "never")) == errno.ETIMEDOUT
    assert 0.9 <= time.monotonic() - started < 5


def test_wait_rotates_over_healthy_instances_like_the_name(daemon, servers):
    a, b = servers(), servers()
    write(daemon.path("web"), f"{a.endpoint}\n{b.endpoint}\n")
    w = daemon.path(".wait", "web")
    assert os.path.islink(w) and os.readlink(w).startswith("../.answers/")
    seen = [read(w).strip() for _ in range(12)]
    assert seen.count(a.endpoint) >= 4 and seen.count(b.endpoint) >= 4, seen
    # Read-only, though the link leads to an answer: `>` and `>>` through it,
    # truncation and rm are refused and change nothing.
    before = registrations(daemon)
    assert err(write, w, "1.2.3.4:80 check=none") in (errno.EPERM, errno.EACCES)
    assert err(write, w, "1.2.3.4:80 check=none", True) in (errno.EPERM, errno.EACCES)
    assert err(os.truncate, w, 0) in (errno.EPERM, errno.EACCES)
    assert err(os.unlink, w) in (errno.EPERM, errno.EACCES)
    assert registrations(daemon) == before
    assert sorted({read(w) for _ in range(6)}) == sorted([a.endpoint + "\n", b.endpoint + "\n"])
    write(daemon.path("web"), a.endpoint)  # one instance: a plain file again
    assert {read(w) for _ in range(4)} == {a.endpoint + "\n"}
    assert not os.path.islink(w)
    assert err(write, w, "1.2.3.4:80 check=none", True) in (errno.EPERM, errno.EACCES)
    assert registrations(daemon)["web"] == [(a.endpoint, "tcp", "n1")]


@pytest.mark.parametrize("registered", [0, 2])
def test_a_signal_ends_a_wait_in_dot_wait(make_daemon, registered):
    """A reader that handles a signal gets EINTR from the daemon, not the wait's end:
    parked in a lookup (nothing registered) or in a readlink (a rotating name)."""
    d = make_daemon("--wait-timeout", "20s")
    if registered:
        write(d.path("never"), "".join(f"127.0.0.1:{closed_port()}\n" for _ in range(registered)))
        assert os.path.islink(d.path(".wait", "never"))
    script = (
        "import signal, sys\n"
        "class Woken(Exception): pass\n"
        "def woken(*_): raise Woken()\n"
        "signal.signal(signal.SIGUSR1, woken)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    open(sys.argv[1]).read()\n"
        "except Woken:\n"
        "    print('woken', flush=True)\n")
    reader = subprocess.Popen([sys.executable, "-c", script, d.path(".wait", "never")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "ready\n"
        assert parked(d)
        started = time.monotonic()
        reader.send_signal(signal.SIGUSR1)
        out, _ = reader.communicate(timeout=10)
        assert out == "woken\n"
        assert time.monotonic() - started < 5
    finally:
        reader.kill()
    assert read(d.path(".metrics"))  # the daemon goes on


def test_a_reader_parked_in_wait_delays_no_write(make_daemon, servers):
    """Writes of other services, and their reads, go on while a reader waits."""
    d = make_daemon("--wait-timeout", "20s")
    waiting = {}

    def wait_for_never():
        try:
            waiting["read"] = read(d.path(".wait", "never"))
        except OSError as e:
            waiting["errno"] = e.errno

    reader = threading.Thread(target=wait_for_never)
    reader.start()
    try:
        assert parked(d)
        s = servers()
        for i in range(3):
            write(d.path(f"svc{i}"), s.endpoint)
            assert read(d.path(f"svc{i}")) == s.endpoint + "\n"
        assert reader.is_alive(), "the reader's wait ended before the writes finished"
        write(d.path("never"), s.endpoint)
        reader.join(10)
        assert waiting == {"read": s.endpoint + "\n"}
    finally:
        reader.join(25)


def test_read_deadline_with_a_hanging_endpoint(daemon, servers):
    s = servers({"/health": None})
    write(daemon.path("slow"), f"{s.endpoint} check=http:/health")
    started = time.monotonic()
    assert err(read, daemon.path("slow")) == errno.EHOSTDOWN
    assert time.monotonic() - started < 3


# ---- writes ----------------------------------------------------------------

def test_replace_append_and_multiline(daemon, servers):
    a, b, c = servers(), servers(), servers()
    write(daemon.path("web"), f"{a.endpoint}\n{b.endpoint}\n")
    assert sorted(read(daemon.path(".all", "web")).split()) == sorted([a.endpoint, b.endpoint])
    write(daemon.path("web"), c.endpoint)
    assert read(daemon.path(".all", "web")).split() == [c.endpoint]
    write(daemon.path("web"), a.endpoint + "\n", append=True)
    assert sorted(read(daemon.path(".all", "web")).split()) == sorted([a.endpoint, c.endpoint])
    # A program writing line by line through one handle adds each line.
    fd = os.open(daemon.path("lines"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, (a.endpoint + "\n").encode())
    os.write(fd, (b.endpoint + "\n").encode())
    os.close(fd)
    assert sorted(read(daemon.path(".all", "lines")).split()) == sorted([a.endpoint, b.endpoint])


@pytest.mark.parametrize("line", [
    "10.0.0.5", "10.0.0.5:0", "10.0.0.5:65536", "10.0.0.5:abc", "300.1.1.1:80", "bad_host:80",
    "10.0.0.5:80 check=udp", "10.0.0.5:80 check=http:", "10.0.0.5:80 check=http:nopath",
    "garbage", "10.0.0.5:80 extra", "\x00", "a" * 600 + ":80",
])
def test_malformed_lines_are_einval_and_change_nothing(daemon, servers, line):
    s = servers()
    write(daemon.path("web"), s.endpoint)
    before = registrations(daemon)
    assert err(write, daemon.path("web"), f"{s.endpoint}\n{line}\n") == errno.EINVAL
    assert err(write, daemon.path("web"), line, True) == errno.EINVAL
    assert registrations(daemon) == before
    assert read(daemon.path("web")) == s.endpoint + "\n"


def test_limits(daemon):
    assert err(write, daemon.path("big"), "1.2.3.4:80\n" * 7000) == errno.EFBIG
    many = "".join(f"10.0.{i // 250}.{i % 250 + 1}:80 check=none\n" for i in range(257))
    assert err(write, daemon.path("many"), many) == errno.ENOSPC
    assert "big" not in os.listdir(daemon.mount)
    assert "many" not in os.listdir(daemon.mount)


def test_bad_service_names(daemon):
    assert err(write, daemon.path("bad name"), "1.2.3.4:80") == errno.EINVAL
    assert err(write, daemon.path("x" * 129), "1.2.3.4:80") == errno.ENAMETOOLONG
    write(daemon.path("x" * 128), "1.2.3.4:80 check=none")
    assert read(daemon.path("x" * 128)) == "1.2.3.4:80\n"


def test_shape_of_the_tree_is_fixed(daemon, servers):
    s = servers()
    write(daemon.path("web"), s.endpoint)
    assert err(os.mkdir, daemon.path("dir")) == errno.EPERM
    assert err(os.rename, daemon.path("web"), daemon.path("web2")) == errno.EPERM
    assert err(os.unlink, daemon.path("nothing")) == errno.ENOENT
    assert err(write, daemon.path(".status.json"), "x") in (errno.EPERM, errno.EACCES)
    assert err(os.unlink, daemon.path(".all", "web")) in (errno.EPERM, errno.EACCES)


def test_truncate_alone_changes_nothing(daemon, servers):
    s = servers()
    write(daemon.path("web"), s.endpoint)
    os.truncate(daemon.path("web"), 0)
    assert read(daemon.path("web")) == s.endpoint + "\n"


def test_plain_directory_semantics_where_they_apply(daemon, servers, tmp_path):
    s = servers()
    for root in (str(tmp_path), daemon.mount):
        p = os.path.join(root, "svc")
        write(p, s.endpoint + "\n")
        assert read(p) == s.endpoint + "\n"
        assert os.path.exists(p)
        os.unlink(p)
        assert err(os.stat, p) == errno.ENOENT
        assert err(os.unlink, p) == errno.ENOENT


# ---- permissions -------------------------------------------------------------

def _as(uid, gid, *cmd, groups=None):
    args = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    args += [f"--groups={groups}"] if groups else ["--clear-groups"]
    return subprocess.run(args + list(cmd), capture_output=True, text=True, timeout=20)


def test_unprivileged_user_reads_but_cannot_write(daemon, servers):
    s = servers()
    write(daemon.path("web"), s.endpoint)
    r = _as(65534, 65534, "cat", daemon.path("web"))
    assert r.returncode == 0 and r.stdout == s.endpoint + "\n", r.stderr
    r = _as(65534, 65534, "sh", "-c", f"echo 1.2.3.4:80 > {daemon.path('web')}")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = _as(65534, 65534, "sh", "-c", f"echo 1.2.3.4:80 > {daemon.path('new')}")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = _as(65534, 65534, "rm", "-f", daemon.path("web"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert read(daemon.path("web")) == s.endpoint + "\n"


def test_writers_group_may_write(make_daemon, servers):
    subprocess.run(["groupadd", "-f", "regfs-test-writers"], check=True)
    gid = int(subprocess.run(["getent", "group", "regfs-test-writers"], capture_output=True,
                             text=True, check=True).stdout.split(":")[2])
    d = make_daemon("--writers", "regfs-test-writers")
    s = servers()
    r = _as(65534, 65534, "sh", "-c", f"echo {s.endpoint} > {d.path('web')}", groups=str(gid))
    assert r.returncode == 0, r.stderr
    assert read(d.path("web")) == s.endpoint + "\n"
    r = _as(65534, 65534, "sh", "-c", f"echo {s.endpoint} > {d.path('web')}")
    assert r.returncode != 0 and "Permission denied" in r.stderr


# ---- lifecycle -------------------------------------------------------------

def test_registrations_survive_kill_9_and_the_dead_mount_is_taken_over(daemon, servers):
    s = servers()
    for i in range(20):
        write(daemon.path(f"svc{i}"), s.endpoint)
    generation = daemon.status()["generation"]
    daemon.stop(signal.SIGKILL)
    assert err(os.listdir, daemon.mount) == errno.ENOTCONN
    daemon.start()
    assert sorted(n for n in os.listdir(daemon.mount) if not n.startswith(".")) == \
        sorted(f"svc{i}" for i in range(20))
    assert read(daemon.path("svc7")) == s.endpoint + "\n"
    assert daemon.status()["generation"] > generation


def test_sigterm_unmounts_cleanly(daemon):
    assert is_mounted(daemon.mount)
    assert daemon.stop(signal.SIGTERM) == 0
    assert not is_mounted(daemon.mount)


def test_owner_reaps_instances_failing_too_long(make_daemon, servers):
    d = make_daemon("--reap-after", "1s", "--check-interval", "200ms", "--fresh", "100ms")
    s, gone = servers(), servers()
    write(d.path("web"), f"{s.endpoint}\n{gone.endpoint}\n")
    gone.close()
    assert wait_until(lambda: read(d.path(".all", "web")).split() == [s.endpoint], 10)
    assert wait_until(lambda: len(d.status()["services"]["web"]) == 1, 10)
    s.close()
    assert wait_until(lambda: _errno_of(d.path("web")) == errno.ENOENT, 10)


def test_status_and_metrics(daemon, servers):
    s = servers()
    write(daemon.path("web"), f"{s.endpoint} check=http:/health")
    read(daemon.path("web"))
    doc = daemon.status()
    assert doc["node"] == "n1"
    inst = doc["services"]["web"][0]
    assert inst["endpoint"] == s.endpoint and inst["owner"] == "n1"
    assert inst["check"] == "http:/health" and inst["verdict"] == "healthy"
    assert isinstance(inst["verdict_age_ms"], int)
    assert doc["members"][0]["name"] == "n1" and doc["members"][0]["state"] == "alive"
    metrics = read(daemon.path(".metrics"))
    values = {}
    for line in metrics.splitlines():
        if line.startswith("#"):
            assert line.startswith("# HELP ") or line.startswith("# TYPE ")
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    assert values["regfs_writes_total"] >= 1
    assert values["regfs_services"] == 1


# ---- the command line ----------------------------------------------------------

def regfs(d, *args, timeout=20):
    return subprocess.run([REGFS, "--mount", d.mount, *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_end_to_end(daemon, servers):
    s, t = servers(), servers()
    assert regfs(daemon, "register", "web", s.endpoint, "--check", "http:/health").returncode == 0
    assert regfs(daemon, "register", "web", t.endpoint).returncode == 0
    r = regfs(daemon, "get", "web")
    assert r.returncode == 0 and r.stdout.strip() in (s.endpoint, t.endpoint)
    r = regfs(daemon, "get", "web", "--all")
    assert sorted(r.stdout.split()) == sorted([s.endpoint, t.endpoint])
    assert regfs(daemon, "register", "web", s.endpoint, "--replace").returncode == 0
    assert regfs(daemon, "get", "web", "--all").stdout.split() == [s.endpoint]
    r = regfs(daemon, "status")
    assert r.returncode == 0 and "web" in r.stdout and "healthy" in r.stdout
    assert json.loads(regfs(daemon, "status", "--json").stdout)["node"] == "n1"
    r = regfs(daemon, "members")
    assert r.returncode == 0 and "n1" in r.stdout and "alive" in r.stdout
    assert regfs(daemon, "deregister", "web").returncode == 0
    assert regfs(daemon, "get", "web").returncode == 3


def test_cli_exit_codes(daemon):
    assert regfs(daemon, "get", "nothing").returncode == 3
    regfs(daemon, "register", "down", f"127.0.0.1:{closed_port()}")
    assert regfs(daemon, "get", "down").returncode == 4
    started = time.monotonic()
    assert regfs(daemon, "get", "never", "--wait", "0.5").returncode == 5
    assert time.monotonic() - started < 5
    assert regfs(daemon, "register", "web", "1.2.3").returncode == 7
    assert regfs(daemon, "register", "bad name", "1.2.3.4:80").returncode == 7
    assert regfs(daemon, "bogus").returncode == 2
    assert regfs(daemon, "deregister", "nothing").returncode == 3
    from conftest import REGFS
    r = subprocess.run([REGFS, "--mount", "/nonexistent", "status"], capture_output=True, text=True)
    assert r.returncode == 8
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", REGFS,
                        "--mount", daemon.mount, "register", "web", "1.2.3.4:80"],
                       capture_output=True, text=True)
    assert r.returncode == 6, r.stderr


def test_cli_get_wait_returns_when_the_service_comes(daemon, servers):
    s = servers()
    threading.Timer(0.3, lambda: regfs(daemon, "register", "late", s.endpoint)).start()
    r = regfs(daemon, "get", "late", "--wait", "5")
    assert r.returncode == 0 and r.stdout.strip() == s.endpoint


def test_cli_run_registers_forwards_signals_and_deregisters(daemon, servers):
    from conftest import REGFS
    dep = servers()
    regfs(daemon, "register", "config-server", dep.endpoint)
    proc = subprocess.Popen([REGFS, "--mount", daemon.mount, "run", "--name", "app", "--port", "auto",
                             "--check", "tcp", "--requires", "config-server",
                             "--requires-timeout", "5", "--",
                             "python3", "-c",
                             "import http.server as h; h.HTTPServer(('127.0.0.1', 0), "
                             "h.BaseHTTPRequestHandler).serve_forever()"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _errno_of(daemon.path("app")) == 0, 10)
        endpoint = read(daemon.path("app")).strip()
        assert endpoint.startswith("127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGTERM
        assert _errno_of(daemon.path("app")) == errno.ENOENT
    finally:
        proc.kill()


def test_cli_run_fails_when_requirements_never_come(daemon):
    r = regfs(daemon, "run", "--name", "app", "--requires", "missing", "--requires-timeout", "0.5",
              "--", "true")
    assert r.returncode == 5


# ---- Fargate mode: no mount, a mirror directory ----------------------------------

def test_mirror_mode_without_a_mount(tmp_path, servers):
    from conftest import REGFS, REGFSD
    mirror = tmp_path / "mirror"
    os.chmod(tmp_path, 0o755)
    proc = subprocess.Popen([REGFSD, "--mirror", str(mirror), "--no-mount", "--state-dir",
                             str(tmp_path / "state"), "--node-name", "n1", "--advertise",
                             "127.0.0.1", "--bind", "127.0.0.1:0", "--check-interval", "200ms"],
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: (mirror / ".regfsd.sock").exists(), 10)
        s, t = servers(), servers()

        def cli(*args, user=None):
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if user else []
            return subprocess.run(prefix + [REGFS, "--mirror", str(mirror), *args],
                                  capture_output=True, text=True, timeout=20)

        def shown(name):  # what a mirror file holds; None until it is written
            try:
                return (mirror / name).read_text().split()
            except FileNotFoundError:
                return None

        assert cli("register", "web", s.endpoint).returncode == 0
        assert cli("register", "web", t.endpoint).returncode == 0
        assert wait_until(lambda: (mirror / "web").exists(), 5)
        assert (mirror / "web").read_text().strip() in (s.endpoint, t.endpoint)
        # web and .all/web are each replaced atomically, one after the other.
        assert wait_until(lambda: sorted(shown(".all/web") or []) ==
                          sorted([s.endpoint, t.endpoint]), 5)
        r = cli("get", "web")
        assert r.returncode == 0 and r.stdout.strip() in (s.endpoint, t.endpoint)
        # An instance that stops is dropped from the files by the background checks.
        t.close()
        assert wait_until(lambda: shown(".all/web") == [s.endpoint], 5)
        assert cli("register", "web", "garbage").returncode == 7
        assert cli("register", "web", s.endpoint, user=True).returncode == 6
        assert cli("deregister", "web").returncode == 0
        assert wait_until(lambda: not (mirror / "web").exists(), 5)
        assert cli("get", "web").returncode == 3
        assert cli("status").returncode == 1
        assert not is_mounted(str(mirror))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


# ---- names, bounds and a daemon that stops answering ------------------------------

def _start_refused(tmp_path, *args):
    from conftest import REGFSD
    mnt = tmp_path / "mnt"
    r = subprocess.run([REGFSD, "--mount", str(mnt), "--state-dir", str(tmp_path / "state"),
                        "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0", *args],
                       capture_output=True, timeout=20)
    assert not is_mounted(str(mnt))
    return r.returncode, r.stderr.decode(errors="replace")


@pytest.mark.parametrize("name", [b"n\xff", b".hidden", b"a b", b"a/b", b"x" * 129])
def test_a_node_name_that_is_not_one_is_refused(tmp_path, name):
    code, err_text = _start_refused(tmp_path, b"--node-name", name)
    assert code == 2, err_text
    assert "--node-name" in err_text and "not a node name" in err_text, err_text
    if name == b"n\xff":
        assert "'n\\xff'" in err_text  # shown as the bytes it is


def test_an_advertise_address_that_is_not_one_is_refused(tmp_path):
    code, err_text = _start_refused(tmp_path, "--node-name", "n1", "--advertise", "10.0.0.1 x")
    assert code == 2 and "--advertise" in err_text, err_text


def test_missing_names_are_not_remembered(daemon, servers):
    """Lookups of names nobody registered leave nothing behind in the daemon."""
    s = servers()
    write(daemon.path("web"), s.endpoint)
    read(daemon.path("web"))
    read(daemon.path(".all", "web"))
    before = daemon.metric("regfs_cached_names")
    assert before >= 1
    for i in range(3000):
        assert err(os.stat, daemon.path(f"missing-{i}")) == errno.ENOENT
        if i % 3 == 0:
            assert err(os.stat, daemon.path(".all", f"missing-{i}")) == errno.ENOENT
    assert daemon.metric("regfs_cached_names") == before
    # What was remembered is still dropped when it changes.
    t = servers()
    write(daemon.path("web"), t.endpoint)
    assert read(daemon.path("web")) == t.endpoint + "\n"
    assert read(daemon.path(".all", "web")) == t.endpoint + "\n"


def test_an_interrupted_wait_stops_the_daemons_work(make_daemon):
    """A .wait/ reader that gives up (a handled signal) ends the daemon's retries too."""
    d = make_daemon("--wait-timeout", "30s")
    write(d.path("down"), f"127.0.0.1:{closed_port()}")  # retried every 250 ms while waited for
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGUSR1, lambda *_: sys.exit(0))\n"
        "print('ready', flush=True)\n"
        "open(sys.argv[1]).read()\n")
    reader = subprocess.Popen([sys.executable, "-c", script, d.path(".wait", "down")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "ready\n"
        assert parked(d)
        assert d.metric("regfs_reads_in_progress") == 1
        reader.send_signal(signal.SIGUSR1)
        assert reader.wait(10) == 0
        assert wait_until(lambda: d.metric("regfs_reads_in_progress") == 0, 5)
        assert d.metric("regfs_parked_requests") == 0
        assert d.metric("regfs_abandoned_total") == 1
    finally:
        reader.kill()


def _ptrace(request, pid):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(request, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), f"ptrace {request:#x}")


def _read_errno(path, timeout):
    """Reads `path` in a child process: its errno (0 if it read), None if still blocked."""
    code = ("import sys\n"
            "try:\n"
            "    open(sys.argv[1]).read()\n"
            "except OSError as e:\n"
            "    sys.exit(e.errno)\n")
    p = subprocess.Popen([sys.executable, "-c", code, path])
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


def test_a_stalled_loop_ends_the_mount_and_a_restart_takes_it_over(make_daemon, servers):
    """The event loop stops (only its thread, stopped by ptrace): within the stall
    timeout readers fail instead of waiting, the daemon exits, a new one takes over."""
    d = make_daemon("--stall-timeout", "1s")
    s = servers()
    write(d.path("web"), s.endpoint)
    pid = d.proc.pid
    PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
    _ptrace(PTRACE_SEIZE, pid)  # the main thread runs the loop
    try:
        _ptrace(PTRACE_INTERRUPT, pid)
        started = time.monotonic()
        got = _read_errno(d.path(".status.json"), 15)
        took = time.monotonic() - started
        assert got in (errno.ENOTCONN, errno.ECONNABORTED), got
        assert took < 5, took
    finally:
        try:
            os.waitpid(pid, 0)  # the interrupt's stop, if it is still to be reaped
        except ChildProcessError:
            pass
        _ptrace(PTRACE_DETACH, pid)
    code = d.proc.wait(10)
    assert code == 3, d.read_log()
    d.proc = None
    assert "no progress" in d.read_log()
    d.start()
    assert read(d.path("web")) == s.endpoint + "\n"


def test_a_stopped_daemon_fails_readers_with_the_kernel_timeout(make_daemon, servers):
    """SIGSTOP stops every thread, the watchdog too: the kernel's request timeout
    (fs.fuse.default_request_timeout, read when the mount starts) ends the wait."""
    knob = "/proc/sys/fs/fuse/default_request_timeout"
    if not os.path.exists(knob):
        pytest.skip("this kernel has no FUSE request timeouts")
    with open(knob) as f:
        saved = f.read().strip()
    with open(knob, "w") as f:
        f.write("3")
    try:
        d = make_daemon("--wait-timeout", "1s", "--read-timeout", "1s")
    finally:
        with open(knob, "w") as f:  # only this mount gets it
            f.write(saved)
    s = servers()
    write(d.path("web"), s.endpoint)
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        got = _read_errno(d.path(".status.json"), 90)
        took = time.monotonic() - started
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    # Ended by the kernel (without the timeout the read waits for good), not
    # before the timeout. The kernel looks at its requests' ages every 15 s;
    # 30 s have been seen on a loaded machine.
    assert got in (errno.ENOTCONN, errno.ECONNABORTED), got
    assert 3 <= took < 3 + 3 * 15, took
    d.stop(signal.SIGKILL)
    d.start()
    assert read(d.path("web")) == s.endpoint + "\n"
