"""Being told of changes: poll() on an open answer, and /registry/.events."""
import json
import os
import select
import signal
import subprocess
import threading

from conftest import memory_kb, read, wait_until, write

WAKE = select.POLLPRI | select.POLLERR


class Poller:
    """poll(POLLPRI) on an open file in a thread of its own, up to `timeout` s."""

    def __init__(self, path, timeout=20):
        self.fd = os.open(path, os.O_RDONLY)
        self.content = os.read(self.fd, 4096).decode()
        self.revents = None
        self.timeout = timeout
        self.thread = None

    def start(self, d, waiting):
        """Starts polling; returns once the daemon holds `waiting` handles."""
        def run():
            p = select.poll()
            p.register(self.fd, select.POLLPRI)
            got = p.poll(self.timeout * 1000)
            self.revents = got[0][1] if got else 0
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert wait_until(lambda: d.metric("regfs_poll_waiting") >= waiting, 10)
        return self

    def result(self):
        self.thread.join(self.timeout + 5)
        return self.revents

    def now(self):
        """A poll with no timeout: what the file reports at once."""
        p = select.poll()
        p.register(self.fd, select.POLLPRI)
        got = p.poll(0)
        return got[0][1] if got else 0

    def close(self):
        os.close(self.fd)


def test_poll_wakes_on_add_and_remove_and_not_for_another_service(make_daemon, servers):
    d = make_daemon("--fresh", "200ms")
    a, b, c = servers(), servers(), servers()
    write(d.path("web"), a.endpoint + "\n")
    write(d.path("other"), c.endpoint + "\n")
    web = Poller(d.path("web"))
    assert web.content == a.endpoint + "\n"
    assert web.now() & WAKE == 0

    # A change to another service wakes its own watcher, not this one.
    other = Poller(d.path("other")).start(d, 1)
    web.start(d, 2)
    write(d.path("other"), b.endpoint + "\n", append=True)
    assert other.result() & WAKE == WAKE
    assert d.metric("regfs_poll_wakeups_total") == 1  # only that watcher was told
    assert web.thread.is_alive()
    assert d.metric("regfs_poll_waiting") == 1

    # An instance added: woken; a reopen reads the new answer.
    write(d.path("web"), b.endpoint + "\n", append=True)
    assert web.result() & WAKE == WAKE
    assert web.now() & WAKE == WAKE  # still changed until reopened
    web.close()
    assert sorted(read(d.path(".all", "web")).split()) == sorted([a.endpoint, b.endpoint])

    # An instance removed: woken.
    again = Poller(d.path("web"))
    assert again.now() & WAKE == 0
    again.start(d, 1)
    write(d.path("web"), "-" + b.endpoint + "\n")
    assert again.result() & WAKE == WAKE
    again.close()
    assert read(d.path("web")) == a.endpoint + "\n"
    other.close()


def test_poll_wakes_when_a_verdict_flips(make_daemon, servers):
    d = make_daemon("--fresh", "100ms", "--check-interval", "200ms")
    a, b = servers(), servers()
    write(d.path("web"), f"{a.endpoint}\n{b.endpoint}\n")
    assert sorted(read(d.path(".all", "web")).split()) == sorted([a.endpoint, b.endpoint])
    watcher = Poller(d.path(".all", "web")).start(d, 1)
    b.close()  # the owner's background check finds it failing
    assert watcher.result() & WAKE == WAKE
    watcher.close()
    assert wait_until(lambda: read(d.path(".all", "web")) == a.endpoint + "\n", 10)


def test_poll_on_all_wakes_on_change(make_daemon, servers):
    d = make_daemon()
    a, b = servers(), servers()
    write(d.path("web"), a.endpoint + "\n")
    watcher = Poller(d.path(".all", "web"))
    assert watcher.content == a.endpoint + "\n"
    watcher.start(d, 1)
    write(d.path("web"), b.endpoint + "\n", append=True)
    assert watcher.result() & WAKE == WAKE
    watcher.close()
    assert sorted(read(d.path(".all", "web")).split()) == sorted([a.endpoint, b.endpoint])


def test_poll_on_a_rotating_name_wakes(make_daemon, servers):
    d = make_daemon()
    a, b, c = servers(), servers(), servers()
    write(d.path("web"), f"{a.endpoint}\n{b.endpoint}\n")
    assert os.path.islink(d.path("web"))
    watcher = Poller(d.path("web")).start(d, 1)
    write(d.path("web"), c.endpoint + "\n", append=True)
    assert watcher.result() & WAKE == WAKE
    watcher.close()


def test_a_change_on_another_node_wakes_a_watcher(make_daemon, servers):
    a = make_daemon()
    gossip = next(m["address"] for m in json.loads(read(a.path(".status.json")))["members"]
                  if m["self"])
    b = make_daemon("--node-name", "n2", "--join", gossip)
    s1, s2 = servers(), servers()
    write(a.path("web"), s1.endpoint + "\n")
    assert wait_until(lambda: os.path.exists(b.path(".all", "web")), 10)
    watcher = Poller(b.path(".all", "web"))
    assert watcher.content == s1.endpoint + "\n"
    watcher.start(b, 1)
    write(a.path("web"), s2.endpoint + "\n", append=True)
    assert watcher.result() & WAKE == WAKE
    watcher.close()
    assert sorted(read(b.path(".all", "web")).split()) == sorted([s1.endpoint, s2.endpoint])


# ---- /registry/.events -------------------------------------------------------

class EventReader:
    """Reads /registry/.events line by line in a thread, as a program would."""

    def __init__(self, d):
        self.fd = os.open(d.path(".events"), os.O_RDONLY)
        self.lines = []
        self.error = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        pending = b""
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.error = "end of file"
                    return
                pending += chunk
                *whole, pending = pending.split(b"\n")
                with self.lock:
                    self.lines += [json.loads(w) for w in whole]
        except OSError as e:
            self.error = e

    def wait_for(self, n, timeout=10):
        assert wait_until(lambda: len(self.lines) >= n or self.error is not None, timeout), \
            self.lines
        assert self.error is None, self.error
        with self.lock:
            return list(self.lines)


def test_events_streams_a_line_for_each_kind_of_change(make_daemon, servers):
    d = make_daemon("--fresh", "100ms", "--check-interval", "200ms")
    assert os.path.islink(d.path(".events"))
    a, b = servers(), servers()
    write(d.path("before"), a.endpoint + "\n")  # before the open: not in the stream
    events = EventReader(d)
    assert wait_until(lambda: d.metric("regfs_event_readers_waiting") == 1, 10)
    write(d.path("web"), f"{a.endpoint}\n{b.endpoint}\n")
    write(d.path("web"), "-" + a.endpoint + "\n")
    lines = events.wait_for(3)
    seen = [(e["service"], e["kind"], e["endpoint"], e["owner"]) for e in lines[:3]]
    assert sorted(seen[:2]) == sorted([("web", "added", a.endpoint, "n1"),
                                       ("web", "added", b.endpoint, "n1")])
    assert seen[2] == ("web", "removed", a.endpoint, "n1")
    assert all(set(e) == {"time", "seq", "service", "kind", "endpoint", "owner", "verdict"}
               for e in lines[:3])
    assert lines[0]["seq"] < lines[1]["seq"] < lines[2]["seq"]
    assert lines[0]["time"].endswith("Z")
    # A verdict flip: healthy first (a read checks), then the server stops.
    assert read(d.path("web")) == b.endpoint + "\n"
    b.close()
    lines = events.wait_for(4)
    assert (lines[3]["service"], lines[3]["kind"], lines[3]["endpoint"], lines[3]["verdict"]) == \
        ("web", "verdict", b.endpoint, "unhealthy")
    os.close(events.fd)


def test_cat_follows_the_registry_live(make_daemon, servers):
    d = make_daemon()
    s = servers()
    cat = subprocess.Popen(["cat", d.path(".events")], stdout=subprocess.PIPE)
    try:
        assert wait_until(lambda: d.metric("regfs_event_readers_waiting") == 1, 10)
        for i in range(3):
            write(d.path(f"svc{i}"), s.endpoint + "\n")
            line = json.loads(cat.stdout.readline())
            assert (line["service"], line["kind"]) == (f"svc{i}", "added")
        assert cat.poll() is None  # still following
    finally:
        cat.kill()
        cat.wait()


def test_a_slow_reader_is_told_what_it_missed_and_memory_stays_bounded(memory_measured, make_daemon):
    d = make_daemon()
    pid = d.proc.pid
    slow = [os.open(d.path(".events"), os.O_RDONLY) for _ in range(50)]
    assert wait_until(lambda: d.metric("regfs_event_streams") == 50, 10)
    # 20 changes a write: 10 instances replaced by 10 others.
    sets = ["".join(f"10.1.{k}.{i}:80 check=none\n" for i in range(1, 11)) for k in range(2)]

    def burst(writes):
        for n in range(writes):
            write(d.path("churn"), sets[n % 2])

    burst(20)  # 390 events (the first write adds 10)
    before = memory_kb(pid)["VmRSS"]
    burst(100)  # 2,000 more
    after = memory_kb(pid)["VmRSS"]
    print(f"daemon RSS with 50 readers behind: {before} kB, after 2,000 more events {after} kB")
    assert after - before < 4096
    first = os.read(slow[0], 65536).decode().splitlines()
    missed = json.loads(first[0])
    assert missed["kind"] == "missed"
    assert missed["missed"] == 2390 - 256
    # Then the newest 256, in order, one line a read.
    lines = [json.loads(first[1])] if len(first) > 1 else []
    while len(lines) < 256:
        lines += [json.loads(x) for x in os.read(slow[0], 65536).decode().splitlines()]
    assert [e["kind"] for e in lines[-2:]] == ["added", "added"]
    assert lines[-1]["seq"] - lines[0]["seq"] == 255
    assert d.metric("regfs_events_missed_total") == 2390 - 256
    for fd in slow:
        os.close(fd)
    # Closed: the kernel forgets each stream's inode, and the stream ends.
    assert wait_until(lambda: d.metric("regfs_event_streams") == 0, 10)


def test_a_killed_events_reader_leaves_the_daemon_serving(make_daemon, servers):
    d = make_daemon()
    s = servers()
    reader = subprocess.Popen(["cat", d.path(".events")], stdout=subprocess.DEVNULL)
    assert wait_until(lambda: d.metric("regfs_event_readers_waiting") == 1, 10)
    reader.send_signal(signal.SIGKILL)
    reader.wait(10)
    assert wait_until(lambda: d.metric("regfs_event_readers_waiting") == 0, 10)
    write(d.path("web"), s.endpoint + "\n")
    assert read(d.path("web")) == s.endpoint + "\n"
    assert d.proc.poll() is None
    events = EventReader(d)
    assert wait_until(lambda: d.metric("regfs_event_readers_waiting") == 1, 10)
    write(d.path("web"), "-" + s.endpoint + "\n")
    assert events.wait_for(1)[0]["kind"] == "removed"
    os.close(events.fd)
