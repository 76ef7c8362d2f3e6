"""regfs watch and regfs template against a real mount: they wake on the mount's
poll() notification (and .events for a name not yet registered), print or
render the new answer, and run their command only when that changed."""
import os
import select
import subprocess
import time

from conftest import REGFS, read, stop_process, wait_until, write


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




def test_watch_prints_the_answer_at_start_and_after_each_change(daemon, servers):
    a, b = servers(), servers()
    write(daemon.path("web"), f"{a.endpoint}\n")
    w = regfs(daemon, "watch", "web", "--all")
    try:
        assert lines_of(w, 1) == [a.endpoint]
        write(daemon.path("web"), f"{b.endpoint}\n", append=True)
        assert sorted(lines_of(w, 1)[0].split(" ")) == sorted([a.endpoint, b.endpoint])
        write(daemon.path("web"), f"-{a.endpoint}\n", append=True)
        assert lines_of(w, 1) == [b.endpoint]
        os.unlink(daemon.path("web"))
        assert lines_of(w, 1) == [""]  # not registered: an empty line
        write(daemon.path("web"), f"{a.endpoint}\n")  # back: seen through .events
        assert lines_of(w, 1) == [a.endpoint]
    finally:
        code = stop_process(w)
    err = w.stderr.read().decode()
    assert code == 0, err
    assert "web: not registered" in err


def test_watch_of_a_service_not_yet_registered_waits_for_it(daemon, servers):
    a = servers()
    w = regfs(daemon, "watch", "later")
    try:
        assert lines_of(w, 1) == [""]
        write(daemon.path("later"), f"{a.endpoint}\n")
        assert lines_of(w, 1) == [a.endpoint]
    finally:
        assert stop_process(w) == 0


def test_watch_wakes_when_a_service_with_nothing_healthy_gets_an_instance(daemon, servers):
    dead, a = servers(), servers()
    write(daemon.path("web"), f"{dead.endpoint}\n")
    dead.close()
    w = regfs(daemon, "watch", "web")
    try:
        assert lines_of(w, 1) == [""]
        assert "no healthy instance" in lines_of(w, 1, stream=w.stderr)[0]
        write(daemon.path("web"), f"{a.endpoint}\n", append=True)
        assert lines_of(w, 1) == [a.endpoint]
    finally:
        assert stop_process(w) == 0


def test_template_renders_when_a_service_with_nothing_healthy_gets_an_instance(daemon, servers):
    dead, a = servers(), servers()
    write(daemon.path("web"), f"{dead.endpoint}\n")
    dead.close()
    src, out, _ = files(daemon)
    t = regfs(daemon, "template", "--wait", "10ms", f"{src}:{out}")
    try:
        assert wait_until(lambda: os.path.exists(out) and read(out) == "none\n", 10)
        write(daemon.path("web"), f"{a.endpoint}\n", append=True)
        assert wait_until(lambda: read(out) == f"server {a.endpoint} n1 tcp;\n", 10), read(out)
    finally:
        assert stop_process(t) == 0


def test_watch_runs_the_command_with_the_endpoints_in_its_environment(daemon, servers):
    a, b = servers(), servers()
    write(daemon.path("web"), f"{a.endpoint}\n")
    log = os.path.join(daemon.base, "env.log")
    w = regfs(daemon, "watch", "web", "--", "sh", "-c",
              f'echo "$REGFS_SERVICE $REGFS_STATE $REGFS_ENDPOINT $REGFS_PORT [$REGFS_ENDPOINTS]" >> {log}; '
              "exec sleep 600")
    try:
        assert wait_until(lambda: os.path.exists(log) and read(log).count("\n") == 1, 10)
        assert read(log) == f"web healthy {a.endpoint} {a.port} [{a.endpoint}]\n"
        write(daemon.path("web"), f"{b.endpoint}\n")  # replaces a: the command restarts
        assert wait_until(lambda: read(log).count("\n") == 2, 10)
        assert read(log).splitlines()[1] == f"web healthy {b.endpoint} {b.port} [{b.endpoint}]"
        os.unlink(daemon.path("web"))
        assert wait_until(lambda: read(log).count("\n") == 3, 10)
        assert read(log).splitlines()[2] == "web missing   []"
    finally:
        assert stop_process(w) == 0
    # The command (sleep) ended with watch: no process is left with the log open.
    assert subprocess.run(["fuser", log], capture_output=True).returncode != 0


def test_watch_ends_with_no_daemon_when_the_mount_goes(make_daemon, servers):
    d = make_daemon()
    a = servers()
    write(d.path("web"), f"{a.endpoint}\n")
    w = regfs(d, "watch", "web")
    assert lines_of(w, 1) == [a.endpoint]
    d.stop()
    assert w.wait(10) == 8
    assert "is gone" in w.stderr.read().decode()


def test_template_required_missing_is_rendered_once_it_is_there(daemon, servers):
    src, out, _ = files(daemon, "{{#service:db!}}db {{endpoint}}\n{{/service:db!}}")
    t = regfs(daemon, "template", f"{src}:{out}")
    try:
        assert "required service db is not registered" in lines_of(t, 1, stream=t.stderr)[0]
        assert not os.path.exists(out)
        a = servers()
        write(daemon.path("db"), f"{a.endpoint}\n")
        assert wait_until(lambda: os.path.exists(out) and read(out) == f"db {a.endpoint}\n", 10)
    finally:
        assert stop_process(t) == 0


def test_template_follows_changes_and_runs_the_command_only_when_the_text_changed(daemon, servers):
    a, b = servers(), servers()
    write(daemon.path("web"), f"{a.endpoint}\n")
    # Two templates: `same` does not change when a second instance comes; `all` does.
    same_src, same_out, same_log = files(daemon, "{{#service:web}}{{#first}}some\n{{/first}}{{/service:web}}")
    all_src = os.path.join(daemon.base, "all.mustache")
    with open(all_src, "w") as f:
        f.write(TEMPLATE)
    all_out, all_log = os.path.join(daemon.base, "all.conf"), os.path.join(daemon.base, "all.log")
    t = regfs(daemon, "template", f"{same_src}:{same_out}:echo ran >> {same_log}",
              f"{all_src}:{all_out}:cat {all_out} >> {all_log}; echo -- >> {all_log}")
    try:
        assert wait_until(lambda: os.path.exists(all_log) and read(all_log).count("--") == 1, 10)
        assert read(same_out) == "some\n" and read(same_log) == "ran\n"
        write(daemon.path("web"), f"{b.endpoint}\n", append=True)
        assert wait_until(lambda: read(all_log).count("--") == 2, 10)
        assert b.endpoint in read(all_out)
        assert read(same_log) == "ran\n"  # rendered the same text: not run again
    finally:
        assert stop_process(t) == 0


def test_template_a_burst_of_changes_makes_one_render(daemon, servers):
    srv = [servers() for _ in range(6)]
    write(daemon.path("web"), f"{srv[0].endpoint}\n")
    src, out, log = files(daemon)
    # Quiet period 1 s: the burst below takes well under that.
    t = regfs(daemon, "template", "--wait", "1s:20s", f"{src}:{out}:echo run >> {log}")
    try:
        assert wait_until(lambda: os.path.exists(log) and read(log) == "run\n", 10)  # at start
        for s in srv[1:]:
            write(daemon.path("web"), f"{s.endpoint}\n", append=True)
        # COMMAND runs after OUT is written: once it has run for the burst, OUT
        # holds all six (a burst split in two renders would show fewer here).
        assert wait_until(lambda: read(log) == "run\nrun\n", 15), read(log)
        assert read(out).count("server") == 6
    finally:
        assert stop_process(t) == 0


def test_template_ends_with_no_daemon_when_the_mount_goes(make_daemon, servers):
    d = make_daemon()
    src, out, _ = files(d)
    t = regfs(d, "template", f"{src}:{out}")
    assert wait_until(lambda: os.path.exists(out), 10)
    d.stop()
    assert t.wait(10) == 8
    assert "is gone" in t.stderr.read().decode()
