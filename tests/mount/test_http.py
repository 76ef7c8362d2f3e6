"""The HTTP face (--http): every endpoint, the token, and the limits: too many clients
or streams refused, a stream that stops reading closed while others go on (what it lost
counted), malformed and oversized requests answered 400, an idle client that holds up
nobody, and a request not sent whole within the deadline closed at it. And when this node
last heard from each member, as /v1/status (and .status.json) shows it.
"""
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import REGFSD, closed_port, gossip_address, read, wait_until, write


def http_daemon(make_daemon, *extra):
    port = closed_port()
    d = make_daemon("--http", f"127.0.0.1:{port}", *extra)
    d.http = f"http://127.0.0.1:{port}"
    d.port = port
    return d


def get(d, path, token=None, method="GET"):
    """(status, headers, body) of one request."""
    req = urllib.request.Request(d.http + path, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def raw(port, data, timeout=5):
    """Sends `data` on a new connection and returns all it answers until closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return out.decode(errors="replace")
            out += chunk


class Stream:
    """A /v1/events client on a raw socket; `events` collects the data lines read."""

    def __init__(self, port, token=None, rcvbuf=None, read=True):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall(f"GET /v1/events HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        self.head = b""
        self.events = []
        self.closed = False
        if read:
            while b"\r\n\r\n" not in self.head:
                chunk = self.sock.recv(4096)
                assert chunk, "the stream closed before its head"
                self.head += chunk
            self.head, _, rest = self.head.partition(b"\r\n\r\n")
            self.buf = rest
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        try:
            while True:
                self._parse()
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except OSError:
            pass
        self.closed = True

    def _parse(self):
        while b"\n\n" in self.buf:
            event, _, self.buf = self.buf.partition(b"\n\n")
            for line in event.decode().split("\n"):
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))

    def status_line(self):
        return self.head.split(b"\r\n")[0].decode()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread; the peer sees the end
        except OSError:
            pass
        self.sock.close()


def test_every_endpoint(make_daemon, servers):
    d = http_daemon(make_daemon)
    web = servers()
    write(d.path("web"), f"{web.endpoint} check=http:/health\n")

    code, headers, page = get(d, "/")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    assert "<svg" in page and "/v1/events" in page and "<script>" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", ""), "the page loads nothing from outside"

    code, headers, body = get(d, "/v1/status")
    assert code == 200 and headers["Content-Type"] == "application/json"
    doc, mounted = json.loads(body), json.loads(read(d.path(".status.json")))
    assert doc["node"] == "n1" and doc.keys() == mounted.keys()
    assert [i["endpoint"] for i in doc["services"]["web"]] == [web.endpoint]

    code, headers, body = get(d, "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "regfs_reads_total" in body and "regfs_http_clients" in body

    assert get(d, "/v1/health")[:1] == (200,) and json.loads(get(d, "/v1/health")[2]) == {"ready": True}
    code, headers, body = get(d, "/v1/status", method="HEAD")
    assert code == 200 and body == "" and int(headers["Content-Length"]) > 0
    assert get(d, "/nothing")[0] == 404
    assert get(d, "/v1/status", method="POST")[0] == 405


def test_events_stream_changes(make_daemon):
    d = http_daemon(make_daemon)
    s = Stream(d.port)
    try:
        assert s.status_line() == "HTTP/1.1 200 OK" and b"text/event-stream" in s.head
        write(d.path("api"), "127.0.0.1:9 check=none\n")
        assert wait_until(lambda: any(e.get("service") == "api" for e in s.events), 1.0), s.events
        assert d.metric("regfs_http_streams") == 1
    finally:
        s.close()
    assert wait_until(lambda: d.metric("regfs_http_streams") == 0, 5)


def test_health_without_a_mount(tmp_path):
    """Fargate mode: no mount, and /v1/health still says the daemon serves."""
    port = closed_port()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    proc = subprocess.Popen([REGFSD, "--mirror", str(mirror), "--no-mount", "--state-dir", str(tmp_path / "state"),
                             "--node-name", "n1", "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0",
                             "--http", str(port)], stderr=subprocess.PIPE)

    def health():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as r:
                return r.status
        except OSError:
            return None
    try:
        assert wait_until(lambda: proc.poll() is not None or health() == 200, 10)
        assert proc.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            assert "regfs_mirror" in r.read().decode()
    finally:
        proc.terminate()
        proc.wait(10)
    assert health() is None


def test_token(make_daemon, tmp_path):
    token = "s3cret-token-0123456789"
    path = tmp_path / "token"
    path.write_text(token + "\n")
    d = http_daemon(make_daemon, "--http-token-file", str(path))
    for route in ("/v1/status", "/metrics", "/v1/events"):
        code, headers, _ = get(d, route)
        assert code == 401 and headers["WWW-Authenticate"] == "Bearer", route
        assert get(d, route, token="wrong-token-0123456789")[0] == 401, route
    assert get(d, "/v1/status", token=token)[0] == 200
    assert get(d, "/metrics", token=token)[0] == 200
    s = Stream(d.port, token=token)
    assert s.status_line() == "HTTP/1.1 200 OK"
    s.close()
    assert get(d, "/")[0] == 200 and get(d, "/v1/health")[0] == 200
    assert d.metric("regfs_http_unauthorized_total") == 6


@pytest.mark.parametrize("args, message", [
    (["--http", "0.0.0.0:{port}"], "refusing to serve HTTP on 0.0.0.0:{port} without a token"),
    (["--http", "localhost:{port}"], "--http: 'localhost:{port}': the address must be an IPv4 or IPv6 address"),
    (["--http", "{port}", "--http-token-file", "/nonexistent"], "--http-token-file: the first line of"),
    (["--http", "{port}", "--http-max-clients", "0"], "--http-max-clients: '0' is not a number"),
])
def test_bad_options_refuse_to_start(tmp_path, args, message):
    port = closed_port()
    args = [a.format(port=port) for a in args]
    r = subprocess.run([REGFSD, "--mount", str(tmp_path / "m"), "--state-dir", str(tmp_path / "s"),
                        "--node-name", "n1", "--bind", "127.0.0.1:0", *args],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert message.format(port=port) in r.stderr
    assert not os.path.exists(tmp_path / "s" / "generation"), "it started before refusing"


def test_too_many_clients_and_streams_are_refused(make_daemon):
    d = http_daemon(make_daemon, "--http-max-clients", "4", "--http-max-streams", "2")
    streams = [Stream(d.port) for _ in range(2)]
    refused = Stream(d.port)
    assert refused.status_line() == "HTTP/1.1 503 Service Unavailable"
    refused.close()
    assert d.metric("regfs_http_refused_streams_total") == 1
    assert wait_until(lambda: d.metric("regfs_http_clients") == 2, 2)
    idle = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(2)]
    assert wait_until(lambda: d.metric("regfs_http_clients") == 4, 2)
    answer = raw(d.port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith("HTTP/1.1 503") and "too many clients" in answer
    assert d.metric("regfs_http_refused_clients_total") == 1
    for s in idle:
        s.close()
    assert wait_until(lambda: d.metric("regfs_http_clients") == 2, 2)
    assert get(d, "/v1/health")[0] == 200
    for s in streams:
        s.close()


def test_bad_requests_get_400_and_an_idle_client_holds_up_nobody(make_daemon):
    d = http_daemon(make_daemon)
    idle = socket.create_connection(("127.0.0.1", d.port))  # sends nothing
    idle.sendall(b"GET /v1/sta")  # half a request
    assert raw(d.port, b"NONSENSE\r\n\r\n").startswith("HTTP/1.1 400")
    long_header = b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"
    assert raw(d.port, long_header).startswith("HTTP/1.1 400")
    body = b"GET /v1/status HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    assert raw(d.port, body).startswith("HTTP/1.1 400")
    assert d.metric("regfs_http_bad_requests_total") == 3
    # The half request still waits; reads through the mount and HTTP go on.
    assert get(d, "/v1/health")[0] == 200
    assert "regfs_reads_total" in read(d.path(".metrics"))
    idle.close()


def test_a_stream_that_stops_reading_is_closed_and_others_go_on(make_daemon):
    d = http_daemon(make_daemon)
    slow = Stream(d.port, rcvbuf=4096, read=False)  # never reads
    fast = Stream(d.port)
    assert wait_until(lambda: d.metric("regfs_http_streams") == 2, 2)
    assert d.metric("regfs_http_events_missed_total") == 0
    # Changes with long lines, until the slow stream is more than its queue behind.
    endpoints = [f"10.0.{i // 250}.{i % 250}:8080 check=none" for i in range(250)]
    writes = 0
    wide = lambda: sum(1 for e in fast.events if e.get("service") == "wide")
    while d.metric("regfs_http_streams_dropped_total") == 0:
        assert writes < 500, "the stream that does not read was never closed"
        shift = writes % 2
        write(d.path("wide"), "\n".join(e.replace(":8080", f":{8080 + shift}") for e in endpoints) + "\n")
        writes += 1
        # The stream that reads keeps up (it is not what this test is about).
        assert wait_until(lambda: wide() >= writes, 5), "the stream that reads fell behind"
    assert d.metric("regfs_http_streams_dropped_total") == 1, d.read_log()
    assert d.metric("regfs_http_streams") == 1
    # Closed a whole feed history (1,024 changes) behind: what it had not taken is lost.
    missed = d.metric("regfs_http_events_missed_total")
    assert missed > 1024, d.read_log()
    assert f"regfs_http_events_missed_total {missed:.0f}" in get(d, "/metrics")[2]
    print(f"the stream that did not read was closed after {writes} writes, {missed:.0f} changes behind")
    before = len(fast.events)
    write(d.path("after"), "127.0.0.1:9 check=none\n")
    assert wait_until(lambda: any(e.get("service") == "after" for e in fast.events[before:]), 2)
    assert not fast.closed
    slow.close()
    fast.close()


def test_a_request_not_sent_whole_in_time_is_closed_while_others_are_served(make_daemon):
    """The deadline for a request (10 s, not configurable): a client that sends half a
    request, or trickles one, or nothing, or nothing more after an answer, is closed by the
    daemon at it; everyone else is served meanwhile."""
    d = http_daemon(make_daemon)
    socks, since = {}, {}
    for name, first in (("nothing", b""), ("half", b"GET /v1/sta"),
                        ("trickle", b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")):
        socks[name] = socket.create_connection(("127.0.0.1", d.port))
        since[name] = time.monotonic()
        socks[name].sendall(first)
    kept = socks["kept"] = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    kept.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b'{"ready":true}\n'):
        answer += kept.recv(4096)
    since["kept"] = time.monotonic()  # answered, and kept alive: the deadline starts again

    closed, served = {}, 0
    try:
        while len(closed) < len(socks) and time.monotonic() - min(since.values()) < 20:
            # Waits for a close (or 0.2 s, the trickle's pace).
            readable, _, _ = select.select([s for n, s in socks.items() if n not in closed], [], [], 0.2)
            for name, s in socks.items():
                if s not in readable:
                    continue
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                assert data == b"", f"{name} was answered: {data!r}"
                closed[name] = time.monotonic() - since[name]
            if "trickle" not in closed:
                try:
                    socks["trickle"].sendall(b"a")
                except OSError:
                    pass
            assert get(d, "/v1/health")[0] == 200
            served += 1
        assert closed.keys() == socks.keys(), f"never closed: {socks.keys() - closed.keys()}"
        for name, after in closed.items():
            assert 9.5 <= after <= 13, f"{name} closed after {after:.2f} s"
        # Counted: the requests begun (half, trickle), not the connections that sent nothing.
        assert d.metric("regfs_http_timeouts_total") == 2
        assert get(d, "/v1/health")[0] == 200
        print("closed after " + ", ".join(f"{n} {t:.2f} s" for n, t in sorted(closed.items())) +
              f"; {served} other requests served meanwhile")
    finally:
        for s in socks.values():
            s.close()


def test_last_heard_of_a_member(make_daemon):
    """/v1/status and .status.json: how long ago this node last heard from each member.
    Small while it answers; growing once its daemon is stopped (SIGSTOP), through suspect
    and dead; small again once it goes on."""
    a = http_daemon(make_daemon)
    b = make_daemon("--node-name", "n2", "--join", gossip_address(a))
    n2 = lambda: next((m for m in a.status()["members"] if m["name"] == "n2"), {})
    assert wait_until(lambda: n2().get("state") == "alive" and n2().get("last_heard_age_ms") is not None, 10)
    assert next(m for m in a.status()["members"] if m["self"])["last_heard_age_ms"] is None
    assert wait_until(lambda: n2()["last_heard_age_ms"] < 1000, 5), n2()
    live = n2()["last_heard_age_ms"]
    over_http = next(m for m in json.loads(get(a, "/v1/status")[2])["members"] if m["name"] == "n2")
    assert over_http["last_heard_age_ms"] < 1000

    samples = []

    def grown(limit):
        m = n2()
        samples.append((round(time.monotonic() - stopped, 2), m["state"], m["last_heard_age_ms"]))
        return m["last_heard_age_ms"] >= limit

    b.proc.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        assert wait_until(lambda: grown(3000), 10), samples
        # Beyond a few probe intervals (what may still have been on its way when it stopped
        # is behind us), it only grows.
        ages = [age for _, _, age in samples if age >= 500]
        assert ages == sorted(ages), samples
        assert any(state != "alive" for _, state, _ in samples), samples
    finally:
        b.proc.send_signal(signal.SIGCONT)
    assert wait_until(lambda: n2()["state"] == "alive" and n2()["last_heard_age_ms"] < 1000, 10), n2()
    print(f"live: {live} ms; stopped: {samples[::max(1, len(samples) // 12)]}; "
          f"after SIGCONT: {n2()['last_heard_age_ms']} ms")
