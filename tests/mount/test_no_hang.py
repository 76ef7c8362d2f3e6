"""No hang: hostile health-check targets, a stalled TCP exchange on the gossip port and a
reader killed mid-request hold nobody past their deadline, and the daemon serves others
meanwhile. "Meanwhile" is shown by an observable, not by timing: another reader's read
completes while the hostile one is still held."""
import errno
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import closed_port, read, wait_until, write


class Hostile:
    """A loopback TCP server that accepts every connection and then never answers
    (`trickle=False`) or sends one byte a second, forever (`trickle=True`)."""

    def __init__(self, trickle):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.trickle = trickle
        self.accepted = threading.Event()
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            self.accepted.set()
            if self.trickle:
                threading.Thread(target=self._trickle, args=(c,), daemon=True).start()

    def _trickle(self, c):
        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 100:
            if self.stop.wait(1):
                return
            try:
                c.send(bytes([b]))
            except OSError:
                return

    def close(self):
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


class Reader:
    """Reads `path` on a thread; .result is ('ok', text) or ('err', errno)."""

    def __init__(self, path):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self.thread.start()

    def _run(self, path):
        try:
            self.result = ("ok", read(path))
        except OSError as e:
            self.result = ("err", e.errno)

    def done(self):
        return not self.thread.is_alive()


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickle"])
def test_a_hostile_check_target_holds_no_reader_past_the_deadline(make_daemon, servers, trickle):
    d = make_daemon("--read-timeout", "5s")
    hostile = Hostile(trickle)
    good = servers()
    try:
        write(d.path("hostile"), f"127.0.0.1:{hostile.port} check=http:/health")
        write(d.path("good"), good.endpoint)
        started = time.monotonic()
        held = Reader(d.path("hostile"))
        assert hostile.accepted.wait(10), "the check never connected"
        # While the hostile read is still held, another read is answered.
        assert read(d.path("good")) == good.endpoint + "\n"
        assert not held.done(), "the hostile read ended before another was answered"
        held.thread.join(10)
        took = time.monotonic() - started
        assert held.result == ("err", errno.EHOSTDOWN), held.result
        assert took < 5 + 3, took  # the read deadline (5 s) and slack for a loaded machine
        status = json.loads(read(d.path(".status.json")))
        assert status["services"]["hostile"][0]["verdict"] == "unhealthy"
    finally:
        hostile.close()


def test_with_no_freshness_window_a_read_still_ends_by_its_deadline(make_daemon, servers):
    # --fresh 0: every read checks. The kernel holds the name's entry (here
    # from the write that created it) and revalidates it with a lookup; that
    # lookup's answer is another inode, so the kernel drops the entry and looks
    # the name up again within the same open. That second lookup must not wait
    # for a check of its own: one open, one decision, one deadline.
    d = make_daemon("--fresh", "0", "--read-timeout", "3s")
    hostile = Hostile(False)
    good = servers()
    try:
        write(d.path("hostile"), f"127.0.0.1:{hostile.port} check=http:/health")
        write(d.path("good"), good.endpoint)
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(OSError) as info:
                read(d.path("hostile"))
            assert info.value.errno == errno.EHOSTDOWN
            took = time.monotonic() - started
            assert 2.5 < took < 3 + 2, took  # the deadline, not twice it (6 s)
        # A healthy answer after a failed one: another inode again, one check.
        write(d.path("hostile"), good.endpoint)
        assert read(d.path("hostile")) == good.endpoint + "\n"
        assert read(d.path("good")) == good.endpoint + "\n"
    finally:
        hostile.close()


def test_a_stalled_tcp_exchange_on_the_gossip_port_is_closed_and_holds_nobody(make_daemon, servers):
    d = make_daemon()
    me = next(m for m in json.loads(read(d.path(".status.json")))["members"] if m["self"])
    host, port = me["address"].rsplit(":", 1)
    timeouts = d.metric("regfs_net_stream_timeouts_total") or 0
    stalled = []
    try:
        for partial in (b"", b"\x01", b"\x00" * 7):  # nothing, a byte, part of a header
            s = socket.create_connection((host, int(port)), timeout=30)
            s.sendall(partial)
            stalled.append(s)
        assert wait_until(lambda: d.metric("regfs_net_streams_open") >= 1, 10)
        # The daemon goes on serving while they are held.
        s = servers()
        write(d.path("web"), s.endpoint)
        assert read(d.path("web")) == s.endpoint + "\n"
        # Each is closed by the daemon (the handshake bound: 2 s), not kept for good:
        # what it sent first (its challenge) is read, then the end of the stream.
        for c in stalled:
            got = b""
            for _ in range(1000):
                try:
                    chunk = c.recv(4096)
                except ConnectionResetError:  # closed with our bytes unread
                    break
                if not chunk:
                    break
                got += chunk
            assert len(got) < 4096, len(got)
        assert wait_until(lambda: d.metric("regfs_net_streams_open") == 0, 10)
        # The one that sent nothing ran out of time (the others may end as malformed).
        assert d.metric("regfs_net_stream_timeouts_total") >= timeouts + 1
    finally:
        for c in stalled:
            c.close()


def test_a_wait_reader_killed_mid_request_frees_its_wait_and_others_go_on(make_daemon, servers):
    d = make_daemon("--wait-timeout", "30s")
    write(d.path("down"), f"127.0.0.1:{closed_port()} check=tcp")
    reader = subprocess.Popen([sys.executable, "-c",
                               "import sys; open(sys.argv[1]).read()", d.path(".wait", "down")])
    try:
        assert wait_until(lambda: d.metric("regfs_reads_in_progress") == 1, 10)
        s = servers()
        write(d.path("web"), s.endpoint)
        assert read(d.path("web")) == s.endpoint + "\n"  # answered while the wait is held
        assert reader.poll() is None
        reader.send_signal(signal.SIGKILL)
        assert reader.wait(10) == -signal.SIGKILL  # a .wait/ reader is killable
        assert wait_until(lambda: d.metric("regfs_reads_in_progress") == 0, 10)
        assert wait_until(lambda: d.metric("regfs_parked_requests") == 0, 10)
        assert read(d.path("web")) == s.endpoint + "\n"
    finally:
        reader.kill()
        reader.wait()
