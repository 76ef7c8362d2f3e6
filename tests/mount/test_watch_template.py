"""regfs watch and regfs template against a real mount: they wake on the mount's
poll() notification (and .events for a name not yet registered), print or
render the new answer, and run their command only when that changed."""
import os
import select
import signal
import subprocess
import time

from conftest import REGFS, read, wait_until, write


def regfs(d, *args, **kw):
    return subprocess.Popen([REGFS, "--mount", d.mount, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def run(d, *args, timeout=20):
    return subprocess.run([REGFS, "--mount", d.mount, *args], capture_output=True, text=True,
                          timeout=timeout)


_pending = {}  # (pid, fd) -> bytes read past the last line handed out


def lines_of(proc, n, timeout=10, stream=None):
    """The next n lines of proc's stdout (or `stream`), read as they come."""
    fd = (stream or proc.stdout).fileno()
    key = (proc.pid, fd)
    buf = _pending.get(key, b"")
    deadline = time.monotonic() + timeout
    while buf.count(b"\n") < n:
        left = deadline - time.monotonic()
        assert left > 0, f"got {buf!r}, wanted {n} lines"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 65536)
            assert chunk, f"stream ended after {buf!r}"
            buf += chunk
    lines = buf.split(b"\n")
    _pending[key] = b"\n".join(lines[n:])
    return [line.decode() for line in lines[:n]]


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_watch_usage_errors(daemon):
    assert run(daemon, "watch").returncode == 2
    assert run(daemon, "watch", "web", "--").returncode == 2
    r = run(daemon, "watch", "bad name")
    assert r.returncode == 7 and "invalid service name" in r.stderr


TEMPLATE = ("{{#service:web}}server {{endpoint}} {{owner}} {{check}};\n{{/service:web}}"
            "{{^service:web}}none\n{{/service:web}}")


def files(daemon, text=TEMPLATE):
    src = os.path.join(daemon.base, "in.mustache")
    with open(src, "w") as f:
        f.write(text)
    return src, os.path.join(daemon.base, "out.conf"), os.path.join(daemon.base, "runs.log")


def test_template_once_renders_healthy_instances_with_owner_and_check(daemon, servers):
    a, b = servers(), servers()
    dead = servers()
    write(daemon.path("web"), f"{a.endpoint}\n{b.endpoint} check=http:/health\n{dead.endpoint}\n")
    dead.close()
    src, out, _ = files(daemon)
    r = run(daemon, "template", "--once", f"{src}:{out}")
    assert r.returncode == 0, r.stderr
    want = sorted([f"server {a.endpoint} n1 tcp;", f"server {b.endpoint} n1 http:/health;"])
    assert read(out).splitlines() == want
    assert oct(os.stat(out).st_mode & 0o777) == "0o644"
    assert [n for n in os.listdir(daemon.base) if ".regfs-" in n] == []  # no temporary left


def test_template_missing_service_renders_empty_lists(daemon):
    src, out, _ = files(daemon)
    r = run(daemon, "template", "--once", f"{src}:{out}")
    assert r.returncode == 0, r.stderr
    assert read(out) == "none\n"


def test_template_once_required_missing_writes_nothing(daemon, servers):
    src, out, log = files(daemon, "{{#service:db!}}db {{endpoint}}\n{{/service:db!}}")
    r = run(daemon, "template", "--once", f"{src}:{out}:echo ran >> {log}")
    assert r.returncode == 3
    assert "required service db is not registered" in r.stderr
    assert not os.path.exists(out) and not os.path.exists(log)
    # Registered, nothing healthy: 4.
    dead = servers()
    write(daemon.path("db"), f"{dead.endpoint}\n")
    dead.close()
    r = run(daemon, "template", "--once", f"{src}:{out}")
    assert r.returncode == 4 and "has no healthy instance" in r.stderr
    assert not os.path.exists(out)


def test_template_bad_template_is_refused_and_writes_nothing(daemon):
    for text, says in [("{{#service:web}}\n", "Unclosed section"),
                       ("{{#service:web}}{{endpont}}{{/service:web}}", "unknown name 'endpont'"),
                       ("{{#service:.x}}{{/service:.x}}", "not a service name")]:
        src, out, log = files(daemon, text)
        r = run(daemon, "template", f"{src}:{out}:echo ran >> {log}")
        assert r.returncode == 7, r.stderr
        assert says in r.stderr
        assert not os.path.exists(out) and not os.path.exists(log)
    r = run(daemon, "template", "in-only")
    assert r.returncode == 2 and "IN:OUT" in r.stderr


