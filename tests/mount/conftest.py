"""Fixtures for the scripted suite against a real regfs mount.

Each test gets its own daemon on a temporary mountpoint and state directory,
started from the build directory in REGFS_BUILD, and loopback servers that
registered instances point to. Everything is torn down even when a test fails.
"""
import http.server
import os
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import BUILD, REGFS, REGFSD, Regfsd, read, stop_process, wait_until, write  # noqa: E402,F401

# The suite runs again against a sanitizer build (tests/run sets ASAN_OPTIONS):
# its allocator keeps freed memory aside, so resident memory is no measure there.
SANITIZED = "ASAN_OPTIONS" in os.environ


def gossip_address(d):
    """The host:port this daemon's cluster transport listens on."""
    return next(m["address"] for m in d.status()["members"] if m["self"])


def memory_kb(pid):
    """A process's resident memory now and at its peak: {"VmRSS": kB, "VmHWM": kB}."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Daemon(Regfsd):
    """One regfsd on the gossip store, alone on loopback unless told to join."""

    def __init__(self, base, *args):
        super().__init__(base)
        self.args = list(args)
        self.wrap = []  # a command the daemon runs under (e.g. unshare)

    def command(self):
        return [*self.wrap, REGFSD, "--mount", self.mount, "--state-dir", self.state,
                "--node-name", "n1", "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0", *self.args]


@pytest.fixture
def memory_measured(monkeypatch):
    """For a test that bounds a daemon's resident memory: under AddressSanitizer the
    daemons it starts free memory at once instead of setting it aside (the
    quarantine, which catches a use after free), so resident memory follows what
    they hold."""
    if SANITIZED:
        monkeypatch.setenv("ASAN_OPTIONS", os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=0")


@pytest.fixture
def make_daemon():
    made = []

    def make(*args):
        base = tempfile.mkdtemp(prefix="regfs-test-")
        os.chmod(base, 0o755)  # unprivileged readers must reach the mountpoint
        d = Daemon(base, *args)
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.cleanup()
        shutil.rmtree(d.base, ignore_errors=True)


@pytest.fixture
def daemon(make_daemon):
    return make_daemon("--fresh", "200ms", "--read-timeout", "500ms", "--wait-timeout", "1s")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/health":
            self.server.requests += 1
        code = self.server.codes.get(self.path, 404)
        if code is None:  # never answer
            time.sleep(5)
            return
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # checks come in bursts; a full backlog would time them out


class HttpServer:
    """A loopback HTTP server; codes maps paths to status codes (None: hang)."""

    def __init__(self, codes=None, port=0, host="127.0.0.1"):
        self.host = host
        self.server = _Server((host, port), _Handler)
        self.server.codes = codes or {"/health": 200}
        self.server.requests = 0  # calls other than health checks
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.server.requests

    @property
    def endpoint(self):
        return f"{self.host}:{self.port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    made = []

    def make(codes=None, port=0, host="127.0.0.1"):
        s = HttpServer(codes, port, host)
        made.append(s)
        return s

    yield make
    for s in made:
        try:
            s.close()
        except OSError:
            pass


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
