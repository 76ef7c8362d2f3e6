"""A real gateway follows moves: Debian's nginx, unprivileged on loopback, with
the upstream block of examples/nginx rendered by `regfs template` and reloaded
by it, while instances of the service come and go on new ports. A client
calling through nginx sees no failed call except while no instance is up."""
import http.client
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from conftest import REGFS, closed_port, read, stop_process, wait_until, write

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "nginx")
NGINX = "/usr/sbin/nginx"


def call(port):
    """One call through nginx: (ok, what came back)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status == 200, r.status
    except OSError as e:
        return False, repr(e)


class Client:
    """Calls through nginx in a loop, recording (start, end, ok, what) per call."""

    def __init__(self, port):
        self.port = port
        self.calls = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            start = time.monotonic()
            ok, what = call(self.port)
            self.calls.append((start, time.monotonic(), ok, what))

    def stop(self):
        self.done.set()
        self.thread.join(10)



def workers(master):
    """The pids of nginx's worker processes now."""
    try:
        with open(f"/proc/{master}/task/{master}/children") as f:
            return set(f.read().split())
    except OSError:
        return set()


def reloaded(master, before):
    """nginx serves with a configuration loaded after `before` was taken: none of
    the workers then is left (a reload starts new workers and ends the old)."""
    now = workers(master)
    return bool(now) and not (now & before)


def test_nginx_follows_instances_that_come_and_go(make_daemon, servers):
    assert os.path.exists(NGINX), "nginx is not installed (packaging/install-deps.sh installs nginx-light)"
    d = make_daemon("--fresh", "200ms", "--read-timeout", "500ms", "--check-interval", "200ms")
    nobody = pwd.getpwnam("nobody")
    prefix = tempfile.mkdtemp(prefix="regfs-nginx-")
    port = closed_port()
    with open(os.path.join(EXAMPLE, "nginx.conf")) as f:
        conf = f.read()
    assert "listen 127.0.0.1:8080;" in conf
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};"))
    tmpl = os.path.join(EXAMPLE, "upstream.conf.mustache")
    upstream = os.path.join(prefix, "upstream.conf")
    reloads = os.path.join(prefix, "reloads.log")
    nginx_log = os.path.join(prefix, "nginx.log")
    os.mkdir(os.path.join(prefix, "tmp"))
    for p in (prefix, os.path.join(prefix, "tmp")):
        os.chown(p, nobody.pw_uid, nobody.pw_gid)

    ok = {"/": 200, "/health": 200}
    a = servers(ok)
    write(d.path("web"), f"{a.endpoint}\n")
    r = subprocess.run([REGFS, "--mount", d.mount, "template", "--once", f"{tmpl}:{upstream}"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert f"server {a.endpoint} max_fails=0;" in read(upstream)

    nginx = subprocess.Popen(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                              "--clear-groups", NGINX, "-p", prefix, "-c", "nginx.conf", "-e", "stderr",
                              "-g", "daemon off;"], stderr=open(nginx_log, "wb"))
    template = None
    client = None
    try:
        assert wait_until(lambda: nginx.poll() is not None or call(port)[0], 10), \
            read(nginx_log) if nginx.poll() is not None else "nginx does not answer"
        template = subprocess.Popen(
            [REGFS, "--mount", d.mount, "template", "--wait", "50ms:500ms",
             f"{tmpl}:{upstream}:kill -HUP {nginx.pid}; echo reload >> {reloads}"],
            stderr=subprocess.PIPE)
        client = Client(port)
        marks = {}

        # A second instance comes; calls reach it once nginx has reloaded.
        b = servers(ok)
        before = workers(nginx.pid)
        write(d.path("web"), f"{b.endpoint}\n", append=True)
        marks["b_registered"] = time.monotonic()
        assert wait_until(lambda: b.endpoint in read(upstream) and reloaded(nginx.pid, before), 15), read(upstream)
        assert wait_until(lambda: b.requests > 0, 15)
        # The first leaves the way a drained instance does: deregistered, and
        # stopped once the gateway no longer sends it calls.
        before = workers(nginx.pid)
        write(d.path("web"), f"-{a.endpoint}\n", append=True)
        marks["a_removed"] = time.monotonic()
        assert wait_until(lambda: a.endpoint not in read(upstream) and reloaded(nginx.pid, before), 15)
        a.close()
        # A third comes, and the second dies without deregistering: nginx sends
        # the calls it refuses to the third until regfs has dropped it.
        c = servers(ok)
        before = workers(nginx.pid)
        write(d.path("web"), f"{c.endpoint}\n", append=True)
        marks["c_registered"] = time.monotonic()
        assert wait_until(lambda: c.endpoint in read(upstream) and reloaded(nginx.pid, before), 15), read(upstream)
        assert wait_until(lambda: c.requests > 0, 15)
        before = workers(nginx.pid)
        b.close()
        marks["b_killed"] = time.monotonic()
        assert wait_until(lambda: b.endpoint not in read(upstream) and reloaded(nginx.pid, before), 15), \
            read(upstream)
        served = c.requests
        assert wait_until(lambda: c.requests > served + 20, 15)

        # No instance at all for a moment: those calls may fail (nginx: 502).
        gap_start = time.monotonic()
        before = workers(nginx.pid)
        write(d.path("web"), f"-{c.endpoint}\n", append=True)
        c.close()
        assert wait_until(lambda: "down;" in read(upstream) and reloaded(nginx.pid, before), 15), read(upstream)
        assert wait_until(lambda: any(not x[2] for x in client.calls if x[0] >= gap_start), 15)
        e = servers(ok)
        before = workers(nginx.pid)
        write(d.path("web"), f"{e.endpoint}\n", append=True)
        assert wait_until(lambda: e.endpoint in read(upstream) and reloaded(nginx.pid, before), 15), read(upstream)
        gap_end = time.monotonic()  # nginx serves with the new instance from here on
        assert wait_until(lambda: e.requests > 20, 15)
        client.stop()

        outside = [x for x in client.calls if not x[2] and not gap_start <= x[0] <= gap_end]
        assert outside == [], (f"calls failed while an instance was up: {outside[:5]}; "
                               f"no instance from {gap_start} to {gap_end}; marks {marks}; nginx: {read(nginx_log)[-2000:]}")
        assert sum(1 for x in client.calls if x[2]) > 100
        # One reload per change: b, -a, c, b's check failing, -c, e.
        assert read(reloads).count("reload") >= 5, read(reloads)
    finally:
        if client:
            client.stop()
        if template:
            template.send_signal(signal.SIGTERM)
            assert template.wait(10) == 0, template.stderr.read().decode()
        stop_process(nginx, signal.SIGQUIT)
        shutil.rmtree(prefix, ignore_errors=True)
