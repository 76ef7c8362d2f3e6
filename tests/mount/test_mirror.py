"""Fargate mode: the mirror directory and the control socket, against a real daemon."""
import os
import pathlib
import shutil
import resource
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import REGFS, REGFSD, stop_process, wait_until


def _start(mirror, state, *extra):
    proc = subprocess.Popen([REGFSD, "--mirror", str(mirror), "--no-mount", "--state-dir", str(state),
                             "--node-name", "n1", "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0",
                             "--check-interval", "200ms", *extra],
                            stderr=open(os.path.join(str(state) + ".log"), "ab"))
    assert wait_until(lambda: proc.poll() is not None or os.path.exists(os.path.join(mirror, ".regfsd.sock")), 10)
    assert proc.poll() is None
    return proc


def cli(mirror, *args):
    return subprocess.run([REGFS, "--mirror", str(mirror), *args], capture_output=True, text=True,
                          timeout=20)


def shown(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


@pytest.fixture
def mirror_daemon(tmp_path):
    """Starts regfsd --mirror DIR --no-mount; stops every one started."""
    os.chmod(tmp_path, 0o755)
    started = []

    def start(mirror, state=None, *extra):
        proc = _start(mirror, state or tmp_path / "state", *extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            stop_process(proc)


@pytest.fixture
def reachable_dir():
    """A directory other users can reach (pytest's tmp_path is under a 0700 one)."""
    base = tempfile.mkdtemp(prefix="regfs-test-")
    os.chmod(base, 0o755)
    yield pathlib.Path(base)
    shutil.rmtree(base, ignore_errors=True)


# ---- the mirror touches only its own files ---------------------------------------

def test_mirror_leaves_files_it_did_not_write(tmp_path, mirror_daemon):
    m = tmp_path / "mirror"
    m.mkdir()
    (m / "app.conf").write_text("mine\n")
    (m / "web").write_text("not the daemon's\n")  # a file with a service's name
    (m / "data").mkdir()
    proc = mirror_daemon(m)
    assert (m / "app.conf").read_text() == "mine\n"
    assert cli(m, "register", "web", "10.0.0.1:80", "--check", "none").returncode == 0
    assert cli(m, "register", "old", "10.0.0.2:80", "--check", "none").returncode == 0
    assert wait_until(lambda: shown(m / "old") == "10.0.0.2:80\n", 5)
    # .all/web was free; web is not the daemon's and is not replaced.
    assert wait_until(lambda: shown(m / ".all" / "web") == "10.0.0.1:80\n", 5)
    assert (m / "web").read_text() == "not the daemon's\n"
    # A restart with other registrations removes what the daemon wrote before
    # and shows nothing now, and only that.
    stop_process(proc)
    mirror_daemon(m, tmp_path / "other-state")
    assert wait_until(lambda: shown(m / "old") is None, 5)
    assert shown(m / ".all" / "old") is None
    assert (m / "app.conf").read_text() == "mine\n"
    assert (m / "web").read_text() == "not the daemon's\n"
    assert (m / "data").is_dir()


def test_a_service_named_like_a_temp_file(tmp_path, mirror_daemon):
    m = tmp_path / "mirror"
    mirror_daemon(m)
    assert cli(m, "register", "web.tmp", "10.0.0.1:80", "--check", "none").returncode == 0
    assert wait_until(lambda: shown(m / ".all" / "web.tmp") == "10.0.0.1:80\n", 5)
    # Writing web's files after web.tmp's must leave web.tmp's alone.
    assert cli(m, "register", "web", "10.0.0.2:80", "--check", "none").returncode == 0
    assert wait_until(lambda: shown(m / ".all" / "web") == "10.0.0.2:80\n", 5)
    assert shown(m / "web") == "10.0.0.2:80\n"
    assert shown(m / "web.tmp") == "10.0.0.1:80\n"
    assert shown(m / ".all" / "web.tmp") == "10.0.0.1:80\n"
    assert cli(m, "get", "web.tmp").stdout == "10.0.0.1:80\n"


def test_links_planted_in_the_mirror_are_never_followed(tmp_path, mirror_daemon):
    m = tmp_path / "mirror"
    m.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {name: tmp_path / f"victim-{i}" for i, name in enumerate(["web.tmp", ".regfsd.tmp"])}
    for name, victim in victims.items():
        victim.write_text("precious\n")
        os.symlink(victim, m / name)
    os.symlink(outside, m / ".all")
    mirror_daemon(m)
    assert cli(m, "register", "web", "10.0.0.1:80", "--check", "none").returncode == 0
    assert wait_until(lambda: shown(m / "web") == "10.0.0.1:80\n", 5)
    for victim in victims.values():
        assert victim.read_text() == "precious\n"
    assert os.listdir(outside) == []
    assert os.path.islink(m / ".all")
    assert os.path.islink(m / "web.tmp")  # not the daemon's: left as it was
    # Once the link at .all is gone, the daemon makes its own directory there.
    os.unlink(m / ".all")
    assert wait_until(lambda: shown(m / ".all" / "web") == "10.0.0.1:80\n", 15)
    assert os.listdir(outside) == []


def test_a_failed_mirror_write_is_retried(make_daemon, reachable_dir):
    m = reachable_dir / "mirror"
    m.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "regfs-test", str(m)], check=True)
    try:
        (m / "db").mkdir()  # a directory in the way of a service's file
        d = make_daemon("--mirror", str(m), "--check-interval", "200ms")
        filler = m / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with pytest.raises(OSError):
                for _ in range(1024):
                    os.write(fd, b"x" * 4096)
        finally:
            os.close(fd)
        assert cli(m, "register", "web", "10.0.0.1:80", "--check", "none").returncode == 0
        assert cli(m, "register", "db", "10.0.0.2:5432", "--check", "none").returncode == 0
        # Both verdicts arrive (background checks) and both files fail: disk full, name taken.
        assert wait_until(lambda: d.metric("regfs_mirror_pending") == 4, 10)
        assert shown(m / "web") is None
        os.unlink(filler)
        assert wait_until(lambda: shown(m / "web") == "10.0.0.1:80\n", 15)
        assert shown(m / "db") is None
        os.rmdir(m / "db")
        assert wait_until(lambda: shown(m / "db") == "10.0.0.2:5432\n", 15)
        assert wait_until(lambda: d.metric("regfs_mirror_pending") == 0, 15)
    finally:
        subprocess.run(["umount", "-l", str(m)])


# ---- the control socket ------------------------------------------------------------

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def test_control_socket_is_for_writers_only(tmp_path, mirror_daemon):
    m = tmp_path / "mirror"
    mirror_daemon(m)
    assert os.stat(m / ".regfsd.sock").st_mode & 0o777 == 0o600
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", REGFS,
                        "--mirror", str(m), "register", "web", "10.0.0.1:80"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 6, r.stderr


def test_control_connections_are_bounded_and_idle_ones_time_out(make_daemon, reachable_dir):
    subprocess.run(["groupadd", "-f", "regfs-test-writers"], check=True)
    gid = int(subprocess.run(["getent", "group", "regfs-test-writers"], capture_output=True,
                             text=True, check=True).stdout.split(":")[2])
    m = reachable_dir / "mirror"
    d = make_daemon("--mirror", str(m), "--writers", "regfs-test-writers")
    sock = str(m / ".regfsd.sock")
    assert os.stat(sock).st_mode & 0o777 == 0o660 and os.stat(sock).st_gid == gid
    # A writer holds as many idle connections as one user may.
    holder = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", f"--groups={gid}", "/usr/bin/python3", "-c",
         "import socket, sys, time\n"
         f"s = [socket.socket(socket.AF_UNIX) for _ in range(20)]\n"
         f"[c.connect({sock!r}) for c in s]\n"
         "print('ready', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    idle = []
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert wait_until(lambda: d.metric("regfs_control_refused_total") == 12, 5)
        assert d.metric("regfs_control_connections") == 8
        # Another user (root) is still served at once.
        assert cli(m, "register", "web", "10.0.0.1:80", "--check", "none").returncode == 0
        # Root fills its own share; one more is refused.
        idle = [connect(sock) for _ in range(8)]
        assert wait_until(lambda: d.metric("regfs_control_connections") == 16, 5)
        extra = connect(sock)
        extra.settimeout(5)
        assert extra.recv(100).startswith(b"ERR 11 ")
        assert cli(m, "register", "web", "10.0.0.2:80").returncode != 0
        # Idle connections are closed after 5 s; then root is served again.
        assert wait_until(lambda: d.metric("regfs_control_connections") == 0, 15)
        assert d.metric("regfs_control_timeouts_total") == 16
        assert cli(m, "register", "web", "10.0.0.2:80", "--check", "none").returncode == 0
    finally:
        holder.kill()
        holder.wait()
        for s in idle:
            s.close()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_accept_errors_do_not_spin(make_daemon, tmp_path):
    m = tmp_path / "mirror"
    os.chmod(tmp_path, 0o755)
    d = make_daemon("--mirror", str(m))
    pid = d.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
    clients = []
    try:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (highest + 1, hard))
        clients = [connect(str(m / ".regfsd.sock")) for _ in range(4)]  # queued, never accepted
        assert wait_until(lambda: (d.metric("regfs_control_accept_errors_total") or 0) >= 3, 5)
        before = cpu_ticks(pid)
        window = time.monotonic() + 2
        while time.monotonic() < window:
            time.sleep(0.1)
        used = cpu_ticks(pid) - before
        errors = d.metric("regfs_control_accept_errors_total")
        print(f"daemon CPU over 2 s of EMFILE: {used} ticks; accept errors so far: {errors}")
        assert used < 20
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    # Service resumes: the queued clients are accepted, and a new one is served.
    assert cli(m, "register", "web", "10.0.0.1:80", "--check", "none").returncode == 0
    for c in clients:
        c.close()
