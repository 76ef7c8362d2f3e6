"""regfsd on the etcd store against a real three-member etcd cluster.

Every wait is bounded and waits for something observable: a file's content,
a .metrics counter, .status.json or a key in etcd.
"""
import errno
import os
import signal
import threading
import time

import pytest

from conftest import read, wait_until, write

TTL = "3s"  # the daemons' lease; kill -9 tests wait for it


def test_registrations_propagate_through_every_mount(etcd, make_daemon):
    daemons = [make_daemon(f"n{i}", etcd.url([i, (i + 1) % 3, (i + 2) % 3]), "--store-ttl", TTL)
               for i in range(3)]
    for i, d in enumerate(daemons):
        write(d.path(f"svc{i}"), f"10.1.0.{i}:80 check=none\n")
    for d in daemons:
        for i in range(3):
            assert wait_until(lambda: d.endpoints(f"svc{i}") == [f"10.1.0.{i}:80"], 5), d.read_log()
    # The same service from two owners: both instances everywhere.
    write(daemons[1].path("svc0"), "10.1.1.1:80 check=none\n")
    assert wait_until(lambda: daemons[2].endpoints("svc0") == ["10.1.0.0:80", "10.1.1.1:80"], 5)
    # One key per instance, readable as etcd's endpoint format.
    keys = etcd.keys()
    assert '"Addr":"10.1.0.0:80"' in keys["/regfs/svc0/n0/10.1.0.0:80"]
    status = daemons[0].status()
    assert status["store"]["kind"] == "etcd" and status["store"]["reachable"] is True
    assert {m["name"] for m in status["members"]} == {"n0", "n1", "n2"}
    assert all(m["last_heard_age_ms"] is None for m in status["members"])  # heard of only through etcd
    # A removal, then a SIGTERM: gone everywhere at once (the lease is revoked).
    os.unlink(daemons[1].path("svc0"))
    assert wait_until(lambda: daemons[0].endpoints("svc0") == ["10.1.0.0:80"], 5)
    assert daemons[2].stop() == 0
    assert wait_until(lambda: daemons[0].endpoints("svc2") is None, 2)
    assert not any("/n2/" in k for k in etcd.keys())


def test_a_killed_daemon_s_instances_disappear_when_its_lease_expires(etcd, make_daemon):
    a = make_daemon("a", etcd.url(), "--store-ttl", TTL)
    b = make_daemon("b", etcd.url([1, 2, 0]), "--store-ttl", TTL)
    write(b.path("web"), "10.2.0.1:80 check=none\n")
    assert wait_until(lambda: a.endpoints("web") == ["10.2.0.1:80"], 5)
    killed = time.monotonic()
    b.stop(signal.SIGKILL)
    assert a.endpoints("web") == ["10.2.0.1:80"]  # the lease still holds
    assert wait_until(lambda: a.endpoints("web") is None, 10), a.read_log()
    assert time.monotonic() - killed >= 2.0
    # Restarted, it comes back with its registrations from its state directory.
    b.start()
    assert wait_until(lambda: a.endpoints("web") == ["10.2.0.1:80"], 5), b.read_log()


def test_killing_the_leader_and_a_member_during_writes_loses_no_acknowledged_registration(etcd, make_daemon):
    a = make_daemon("a", etcd.url(), "--store-ttl", TTL)
    b = make_daemon("b", etcd.url([2, 1, 0]), "--store-ttl", TTL)
    write(a.path("stable"), "10.3.0.1:80 check=none\n")
    assert wait_until(lambda: b.endpoints("stable") == ["10.3.0.1:80"], 5)

    read_failures = []
    stop = threading.Event()

    def reader():
        for _ in range(100000):
            if stop.is_set():
                return
            try:
                if read(b.path("stable")) != "10.3.0.1:80\n":
                    read_failures.append("wrong answer")
            except OSError as e:
                read_failures.append(e.errno)
            time.sleep(0.005)

    t = threading.Thread(target=reader)
    t.start()
    acknowledged, refused = [], []
    killed = None
    try:
        for i in range(60):
            if i == 15:
                killed = etcd.leader()
                etcd.kill(killed)
            if i == 30:  # the old leader back, then a follower killed
                etcd.start(killed)
                assert wait_until(lambda: etcd.answers(killed), 20), etcd.logs()
                leader = etcd.leader()
                etcd.kill(next(j for j in range(3) if j != leader))
            try:
                write(a.path(f"w{i}"), f"10.3.1.{i}:80 check=none\n")
                acknowledged.append(i)
            except OSError as e:
                refused.append((i, e.errno))
    finally:
        stop.set()
        t.join()
    assert read_failures == []
    assert all(code == errno.ETIMEDOUT for _, code in refused), refused
    assert len(acknowledged) >= 50, refused
    keys = etcd.keys()
    for i in acknowledged:
        assert f"/regfs/w{i}/a/10.3.1.{i}:80" in keys
    for i in acknowledged:
        assert wait_until(lambda: b.endpoints(f"w{i}") == [f"10.3.1.{i}:80"], 5), i


def test_all_members_down_then_back(etcd, make_daemon):
    a = make_daemon("a", etcd.url(), "--store-ttl", "10s", "--store-timeout", "1s")
    b = make_daemon("b", etcd.url(), "--store-ttl", "10s")
    write(a.path("web"), "10.4.0.1:80 check=none\n")
    assert wait_until(lambda: b.endpoints("web") == ["10.4.0.1:80"], 5)
    etcd.stop_all()
    assert wait_until(lambda: b.status()["store"]["reachable"] is False, 10), b.read_log()
    store = b.status()["store"]
    assert store["unreachable_since"].endswith("Z") and store["unreachable_for_ms"] >= 0
    # Reads keep serving what was last seen.
    assert read(b.path("web")) == "10.4.0.1:80\n"
    # A write fails after the deadline with ETIMEDOUT and changes nothing.
    started = time.monotonic()
    with pytest.raises(OSError) as e:
        write(a.path("web"), "10.4.0.2:80 check=none\n")
    assert e.value.errno == errno.ETIMEDOUT
    assert 0.9 <= time.monotonic() - started < 3
    assert a.endpoints("web") == ["10.4.0.1:80"]
    for i in range(3):
        etcd.start(i)
    assert wait_until(lambda: b.status()["store"]["reachable"] is True, 20), b.read_log()
    assert wait_until(lambda: a.status()["store"]["reachable"] is True, 20), a.read_log()
    assert b.endpoints("web") == ["10.4.0.1:80"]
    write(a.path("web"), "10.4.0.3:80 check=none\n")
    assert wait_until(lambda: b.endpoints("web") == ["10.4.0.3:80"], 5)


def test_a_compaction_while_a_daemon_is_away_is_caught_up_by_a_new_range(etcd, make_daemon,
                                                                           make_proxy):
    proxy = make_proxy(etcd.members[0])
    a = make_daemon("a", etcd.url(), "--store-ttl", "30s")
    b = make_daemon("b", f"etcd://{proxy.addr}", "--store-ttl", "30s")
    write(a.path("old"), "10.5.0.1:80 check=none\n")
    assert wait_until(lambda: b.endpoints("old") == ["10.5.0.1:80"], 5)
    proxy.hold()
    assert wait_until(lambda: b.metric("regfs_etcd_reachable") == 0, 10), b.read_log()
    os.unlink(a.path("old"))
    write(a.path("new"), "10.5.0.2:80 check=none\n")
    etcd.compact(etcd.revision())
    proxy.release()
    assert wait_until(lambda: b.metric("regfs_etcd_compactions_total") >= 1, 10), b.read_log()
    assert wait_until(lambda: b.endpoints("new") == ["10.5.0.2:80"], 5)
    assert b.endpoints("old") is None


def test_a_watch_cut_in_the_middle_of_a_message_resumes_without_losing_it(etcd, make_daemon,
                                                                           make_proxy):
    proxy = make_proxy(etcd.members[1])
    a = make_daemon("a", etcd.url(), "--store-ttl", TTL)
    b = make_daemon("b", f"etcd://{proxy.addr}", "--store-ttl", TTL)
    restarts = b.metric("regfs_etcd_watch_restarts_total")
    proxy.cut_watch()
    write(a.path("cut"), "10.6.0.1:80 check=none\n")
    assert wait_until(lambda: proxy.cuts == 1, 5)
    assert wait_until(lambda: b.endpoints("cut") == ["10.6.0.1:80"], 5), b.read_log()
    assert b.metric("regfs_etcd_watch_restarts_total") > restarts
    write(a.path("cut"), "10.6.0.2:80 check=none\n")
    assert wait_until(lambda: b.endpoints("cut") == ["10.6.0.2:80"], 5)


def test_a_daemon_away_longer_than_its_lease_puts_its_registrations_back(etcd, make_daemon,
                                                                         make_proxy):
    proxy = make_proxy(etcd.members[2])
    a = make_daemon("a", etcd.url(), "--store-ttl", TTL)
    b = make_daemon("b", f"etcd://{proxy.addr}", "--store-ttl", TTL)
    write(b.path("mine"), "10.7.0.1:80 check=none\n")
    assert wait_until(lambda: a.endpoints("mine") == ["10.7.0.1:80"], 5)
    proxy.hold()
    assert wait_until(lambda: a.endpoints("mine") is None, 10)  # the lease expired
    assert read(b.path("mine")) == "10.7.0.1:80\n"  # its own still served on b
    proxy.release()
    assert wait_until(lambda: a.endpoints("mine") == ["10.7.0.1:80"], 10), b.read_log()
    assert b.metric("regfs_etcd_leases_lost_total") >= 1


def test_a_write_over_etcd_s_transaction_bound_fails_with_enospc_and_changes_nothing(etcd,
                                                                                    make_daemon):
    a = make_daemon("a", etcd.url(), "--store-ttl", TTL)
    write(a.path("big"), "".join(f"10.10.0.{i}:80 check=none\n" for i in range(1, 101)))
    started = time.monotonic()
    with pytest.raises(OSError) as e:  # 130 puts: over etcd's default --max-txn-ops (128)
        write(a.path("big"), "".join(f"10.10.1.{i}:80 check=none\n" for i in range(1, 131)))
    assert e.value.errno == errno.ENOSPC
    assert time.monotonic() - started < 1  # refused at once, not after the deadline
    assert len(a.endpoints("big")) == 100
    assert sum(k.startswith("/regfs/big/") for k in etcd.keys()) == 100


def test_a_silent_watch_is_replaced(etcd, make_daemon, make_proxy):
    proxy = make_proxy(etcd.members[0])
    a = make_daemon("a", etcd.url(), "--store-ttl", TTL)
    b = make_daemon("b", f"etcd://{proxy.addr}", "--store-ttl", TTL)
    # The watch is answered (silenced before its reply, it fails as a request
    # and is replaced without being a silent stream).
    assert wait_until(lambda: any(w.get("answered") for w in proxy.watches), 5)
    proxy.silence_watches()
    write(a.path("quiet"), "10.11.0.1:80 check=none\n")
    # Silence for three TTLs (9 s), then a new watch from where the old one stood.
    assert wait_until(lambda: b.endpoints("quiet") == ["10.11.0.1:80"], 20), b.read_log()
    assert "watch: nothing for 9000 ms" in b.read_log()
    assert b.metric("regfs_etcd_watch_restarts_total") >= 1
    # Its lease was kept alive meanwhile (its keepalives do not wait for the watch).
    assert b.metric("regfs_etcd_leases_lost_total") == 0
    write(b.path("loud"), "10.11.0.2:80 check=none\n")
    assert wait_until(lambda: a.endpoints("loud") == ["10.11.0.2:80"], 5)


def test_with_authentication_a_daemon_given_the_user_works_and_a_wrong_password_fails_clearly(
        etcd, make_daemon, tmp_path):
    good = tmp_path / "password"
    good.write_text("s3cret\n")
    creds = ["--store-user", "root", "--store-password-file", str(good)]
    # Started before etcd's authentication is on, they take tokens once it is.
    a = make_daemon("a", etcd.url(), "--store-ttl", TTL, *creds)
    b = make_daemon("b", etcd.url([1, 2, 0]), "--store-ttl", TTL, *creds)
    write(a.path("before"), "10.12.0.9:80 check=none\n")
    assert wait_until(lambda: b.endpoints("before") == ["10.12.0.9:80"], 5), b.read_log()
    etcd.enable_auth("root", "s3cret")
    write(a.path("auth"), "10.12.0.1:80 check=none\n")
    assert wait_until(lambda: b.endpoints("auth") == ["10.12.0.1:80"], 5), b.read_log()
    assert "/regfs/auth/a/10.12.0.1:80" in etcd.keys()
    bad = tmp_path / "wrong"
    bad.write_text("wrong\n")
    c = make_daemon("c", etcd.url(), "--store-user", "root", "--store-password-file", str(bad),
                    "--store-timeout", "500ms")
    assert wait_until(lambda: "authentication failed" in c.read_log(), 10), c.read_log()
    assert c.status()["store"]["reachable"] is False
    with pytest.raises(OSError) as e:
        write(c.path("x"), "10.12.0.2:80 check=none\n")
    assert e.value.errno == errno.ETIMEDOUT
    assert c.endpoints("auth") is None  # it never read the prefix
    assert b.endpoints("x") is None
