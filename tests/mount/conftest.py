"""Fixtures for the scripted suite against a real regfs mount.

Each test gets its own daemon on a temporary mountpoint and state directory,
started from the build directory in REGFS_BUILD, and loopback servers that
registered instances point to. Everything is torn down even when a test fails.
"""
import http.server
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import BUILD, REGFS, REGFSD, wait_until  # noqa: E402,F401




def read(path):
    with open(path) as f:
        return f.read()


def write(path, text, append=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
    try:
        os.write(fd, text.encode() if isinstance(text, str) else text)
    finally:
        os.close(fd)


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Daemon:
    """One regfsd on its own mountpoint; restartable on the same state."""

    def __init__(self, base, *args):
        self.base = base
        self.mount = os.path.join(base, "mnt")
        self.state = os.path.join(base, "state")
        self.args = list(args)
        self.wrap = []  # a command the daemon runs under (e.g. unshare)
        self.proc = None
        self.log = os.path.join(base, "regfsd.log")

    def start(self, *extra):
        cmd = [*self.wrap, REGFSD, "--mount", self.mount, "--state-dir", self.state,
               "--node-name", "n1", "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0",
               *self.args, *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        ok = wait_until(lambda: self.proc.poll() is not None or self._ready(), 10)
        assert ok and self.proc.poll() is None, f"regfsd did not start: {self.read_log()}"
        return self

    def _ready(self):
        try:
            with open(os.path.join(self.mount, ".metrics")) as f:
                return "regfs_reads_total" in f.read()
        except OSError:
            return False

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def cleanup(self):
        self.stop(signal.SIGKILL)
        subprocess.run(["fusermount3", "-uz", self.mount], stderr=subprocess.DEVNULL)
        subprocess.run(["umount", "-l", self.mount], stderr=subprocess.DEVNULL)

    def path(self, *parts):
        return os.path.join(self.mount, *parts)


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
