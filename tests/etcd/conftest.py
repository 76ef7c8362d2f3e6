"""Fixtures for the etcd store's suite.

`etcd` is a three-member etcd cluster on loopback ports (fresh data
directories, torn down after the test); members can be killed and started
again on the same data. `proxy` is a loopback TCP proxy in front of one member
that can hold every connection (etcd out of reach), or cut a watch stream in
the middle of a message. `make_daemon` starts regfsd daemons on the etcd store.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import REGFSD, Regfsd, read, wait_until, write  # noqa: E402,F401

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode()


class Member:
    def __init__(self, name, client, peer, data, log):
        self.name, self.client, self.peer, self.data, self.log = name, client, peer, data, log
        self.proc = None

    @property
    def addr(self):
        return f"127.0.0.1:{self.client}"


class EtcdCluster:
    def __init__(self, base):
        ports = free_ports(6)
        self.base = base
        self.members = [Member(f"e{i}", ports[2 * i], ports[2 * i + 1],
                               os.path.join(base, f"e{i}"), os.path.join(base, f"e{i}.log"))
                        for i in range(3)]
        self.initial = ",".join(f"{m.name}=http://127.0.0.1:{m.peer}" for m in self.members)
        self.token = None  # once authentication is enabled

    def url(self, order=None):
        ms = self.members if order is None else [self.members[i] for i in order]
        return "etcd://" + ",".join(m.addr for m in ms)

    def start(self, i):
        m = self.members[i]
        cmd = [ETCD, "--name", m.name, "--data-dir", m.data,
               "--listen-client-urls", f"http://127.0.0.1:{m.client}",
               "--advertise-client-urls", f"http://127.0.0.1:{m.client}",
               "--listen-peer-urls", f"http://127.0.0.1:{m.peer}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{m.peer}",
               "--initial-cluster", self.initial, "--initial-cluster-state", "new",
               "--initial-cluster-token", "regfs-test",
               "--heartbeat-interval", "50", "--election-timeout", "500",
               "--experimental-watch-progress-notify-interval", "1s",
               "--log-level", "warn"]
        m.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(m.log, "ab"))

    def start_all(self):
        for i in range(3):
            self.start(i)
        assert wait_until(lambda: self.healthy(), 30, 0.1), self.logs()

    def kill(self, i, sig=signal.SIGKILL):
        m = self.members[i]
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(sig)
            m.proc.wait(10)
        m.proc = None

    def stop_all(self):
        for i in range(3):
            self.kill(i)

    def call(self, path, body, member=None, timeout=2):
        """POSTs to the gateway of `member` (default: the first that answers)."""
        candidates = [self.members[member]] if member is not None else \
            [m for m in self.members if m.proc is not None]
        last = None
        for m in candidates:
            headers = {"Content-Type": "application/json"}
            if self.token:
                headers["Authorization"] = self.token
            req = urllib.request.Request(f"http://{m.addr}{path}", data=json.dumps(body).encode(),
                                         headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read())
            except OSError as e:
                last = e
        raise last or OSError("no member running")

    def healthy(self):
        try:
            self.call("/v3/kv/put", {"key": b64("/health-probe"), "value": b64("x")})
            return True
        except OSError:
            return False

    def enable_auth(self, user, password):
        """A root user `user` with `password`, then authentication on."""
        self.call("/v3/auth/role/add", {"name": "root"})
        self.call("/v3/auth/user/add", {"name": user, "password": password})
        self.call("/v3/auth/user/grant", {"user": user, "role": "root"})
        self.call("/v3/auth/enable", {})
        self.token = self.call("/v3/auth/authenticate", {"name": user, "password": password})["token"]

    def answers(self, i):
        """Member `i` serves reads (it rejoined the cluster)."""
        try:
            self.call("/v3/kv/range", {"key": b64("/")}, member=i, timeout=1)
            return True
        except OSError:
            return False

    def leader(self):
        """Index of the current leader."""
        ids = {}
        leader = None
        for i, m in enumerate(self.members):
            if m.proc is None:
                continue
            try:
                st = self.call("/v3/maintenance/status", {}, member=i)
            except OSError:
                continue
            ids[st["header"]["member_id"]] = i
            leader = st.get("leader")
        return ids.get(leader)

    def keys(self, prefix="/regfs/"):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        r = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
        return {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in r.get("kvs", [])}

    def revision(self):
        return int(self.call("/v3/kv/range", {"key": b64("/")})["header"]["revision"])

    def compact(self, revision):
        self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True}, timeout=10)

    def logs(self):
        out = []
        for m in self.members:
            try:
                with open(m.log) as f:
                    out.append(f"--- {m.name}\n" + f.read()[-1500:])
            except OSError:
                pass
        return "\n".join(out)


@pytest.fixture
def etcd():
    base = tempfile.mkdtemp(prefix="regfs-etcd-")
    cluster = EtcdCluster(base)
    cluster.start_all()
    yield cluster
    cluster.stop_all()
    shutil.rmtree(base, ignore_errors=True)


class Proxy:
    """A loopback TCP proxy to one etcd member.

    hold(): close every connection and refuse new ones (accept and close), so
    the daemon behind it has lost etcd. release(): forward again.
    cut_watch(): the next watch reply carrying events is forwarded only up to
    the middle of its message, then both sides are closed.
    silence_watches(): the watch streams open now stay open but deliver
    nothing more (later connections are served as usual).
    watches: one state per watch request; "answered" once etcd's reply to it
    has been forwarded.
    """

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = False
        self.cut_armed = False
        self.cuts = 0
        self.watches = []
        self.lock = threading.Lock()
        self.conns = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.held:
                c.close()
                continue
            try:
                u = socket.create_connection(self.target, timeout=2)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            state = {"watch": False}
            threading.Thread(target=self._pipe, args=(c, u, state, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, state, True), daemon=True).start()

    def _pipe(self, src, dst, state, downstream):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not downstream and b"POST /v3/watch" in data:
                    state["watch"] = True
                    with self.lock:
                        self.watches.append(state)
                if downstream and state.get("silenced"):
                    continue  # swallowed: the stream stays open and says nothing
                if downstream and state["watch"] and self.cut_armed and b'"events"' in data:
                    at = data.index(b'"events"') + 20
                    dst.sendall(data[:at])
                    self.cut_armed = False
                    self.cuts += 1
                    break
                dst.sendall(data)
                if downstream and state["watch"]:
                    state["answered"] = True
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def hold(self):
        self.held = True
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def release(self):
        self.held = False

    def silence_watches(self):
        with self.lock:
            for state in self.watches:
                state["silenced"] = True

    def cut_watch(self):
        self.cut_armed = True

    def close(self):
        self.stopped = True
        self.hold()
        self.sock.close()


@pytest.fixture
def make_proxy():
    made = []

    def make(member):
        p = Proxy(("127.0.0.1", member.client))
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


class Daemon(Regfsd):
    """One regfsd on the etcd store, on its own mountpoint and state directory."""

    def __init__(self, base, name, url, args):
        super().__init__(base)
        self.name, self.url, self.args = name, url, list(args)

    def command(self):
        return [REGFSD, "--mount", self.mount, "--state-dir", self.state, "--node-name", self.name,
                "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0", "--store", self.url,
                "--fresh", "200ms", "--read-timeout", "500ms", *self.args]

    def endpoints(self, service):
        """The instances `service` reads as in .all/, or None where it does not exist."""
        try:
            return sorted(read(self.path(".all", service)).split())
        except FileNotFoundError:
            return None


@pytest.fixture
def make_daemon():
    made = []

    def make(name, url, *args):
        base = tempfile.mkdtemp(prefix="regfs-etcd-d-")
        os.chmod(base, 0o755)
        d = Daemon(base, name, url, args)
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.cleanup()
        shutil.rmtree(d.base, ignore_errors=True)
