"""`regfs run` against a real mount: what it registers and removes, where it
looks for the command's port, signals, reaping and exit codes."""
import os
import signal
import subprocess
import sys

from conftest import REGFS, closed_port, read, wait_until, write

# A loopback HTTP server on argv[1] (an address; port 0), answering 200; it
# writes its port to argv[2].
SERVER = r"""
import http.server, os, socket, sys
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = S((sys.argv[1], 0), H)
with open(sys.argv[2] + ".tmp", "w") as f: f.write(str(s.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
"""

# Two HTTP servers on 127.0.0.1: the first answers argv[1], the second
# argv[2] (status codes); with argv[3] == "after-asked" the second opens only
# once the first has been asked something. Ports: argv[5], argv[6] (0: any);
# both are written to argv[4].
TWO_PORTS = r"""
import http.server, os, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.asked.set()
        self.send_response(self.server.code); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
def serve(code, port):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    s.code = code
    s.asked = threading.Event()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s
first = serve(int(sys.argv[1]), int(sys.argv[5]))
if sys.argv[3] == "after-asked":
    first.asked.wait(30)
second = serve(int(sys.argv[2]), int(sys.argv[6]))
with open(sys.argv[4] + ".tmp", "w") as f: f.write(f"{first.server_port} {second.server_port}")
os.rename(sys.argv[4] + ".tmp", sys.argv[4])
threading.Event().wait()
"""


def errno_of(path):
    try:
        read(path)
        return 0
    except OSError as e:
        return e.errno


def read_when(path, timeout=10):
    assert wait_until(lambda: os.path.exists(path), timeout), path
    return read(path)


class Run:
    """One `regfs run`, its stderr kept in a file."""

    def __init__(self, daemon, tmp_path, tag, run_args, command, prefix=()):
        self.stderr_path = tmp_path / f"run-{tag}.err"
        self.proc = subprocess.Popen([*prefix, REGFS, "--mount", daemon.mount, "run", *run_args,
                                      "--", *command],
                                     stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"))

    @property
    def stderr(self):
        return self.stderr_path.read_text()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        return self.proc.wait(10)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def serve(daemon, tmp_path, tag, address="127.0.0.1", run_args=("--name", "web")):
    port_file = tmp_path / f"port-{tag}"
    run = Run(daemon, tmp_path, tag, list(run_args),
              [sys.executable, "-c", SERVER, address, str(port_file)])
    return run, port_file


def all_of(daemon, name):
    try:
        return sorted(read(daemon.path(".all", name)).split())
    except OSError:
        return []


def test_two_replicas_each_add_and_remove_their_own_instance(daemon, tmp_path):
    a, a_port = serve(daemon, tmp_path, "a")
    b, b_port = serve(daemon, tmp_path, "b")
    try:
        ports = [read_when(a_port), read_when(b_port)]
        both = sorted(f"127.0.0.1:{p}" for p in ports)
        assert wait_until(lambda: all_of(daemon, "web") == both, 10), (all_of(daemon, "web"), a.stderr)
        assert a.stop() == 128 + signal.SIGTERM
        assert all_of(daemon, "web") == [f"127.0.0.1:{ports[1]}"]
        assert read(daemon.path("web")).strip() == f"127.0.0.1:{ports[1]}"
        assert b.stop() == 128 + signal.SIGTERM
        assert errno_of(daemon.path("web")) == 2  # ENOENT
    finally:
        a.kill()
        b.kill()


def test_a_failed_registration_removes_nothing(daemon, tmp_path):
    # This node already holds the most instances of `web` it may (256): run's
    # registration fails with ENOSPC, and its exit must leave them alone.
    held = "".join(f"127.0.0.1:{10000 + i} check=none\n" for i in range(256))
    write(daemon.path("web"), held)
    run, port_file = serve(daemon, tmp_path, "full")
    try:
        assert wait_until(lambda: "register web" in run.stderr, 10), run.stderr
        assert "No space left on device" in run.stderr
        assert run.stop() == 128 + signal.SIGTERM
        assert len(all_of(daemon, "web")) == 256
    finally:
        run.kill()


def test_removing_one_instance_through_the_mount(daemon):
    write(daemon.path("web"), "127.0.0.1:1 check=none\n:2 check=none\n")
    write(daemon.path("web"), "-0.0.0.0:2\n", append=True)
    assert all_of(daemon, "web") == ["127.0.0.1:1"]
    # An endpoint this node does not hold: ENOENT, and nothing changes.
    try:
        write(daemon.path("web"), "-127.0.0.1:1\n-127.0.0.1:3\n", append=True)
        raise AssertionError("removal of an unheld endpoint succeeded")
    except OSError as e:
        assert e.errno == 2
    assert all_of(daemon, "web") == ["127.0.0.1:1"]
    write(daemon.path("web"), "-127.0.0.1:1\n")
    assert errno_of(daemon.path("web")) == 2


def test_a_command_listening_on_ipv6_loopback_is_registered_there(daemon, tmp_path):
    run, port_file = serve(daemon, tmp_path, "v6", address="::1")
    try:
        port = read_when(port_file)
        assert wait_until(lambda: errno_of(daemon.path("web")) == 0, 10), run.stderr
        assert read(daemon.path("web")).strip() == f"[::1]:{port}"
    finally:
        run.kill()


def test_a_command_listening_on_one_address_is_registered_there(daemon, tmp_path):
    run, port_file = serve(daemon, tmp_path, "one", address="127.0.0.2")
    try:
        port = read_when(port_file)
        assert wait_until(lambda: errno_of(daemon.path("web")) == 0, 10), run.stderr
        assert read(daemon.path("web")).strip() == f"127.0.0.2:{port}"
    finally:
        run.kill()


def test_of_two_ports_the_one_that_passes_the_check_is_registered(daemon, tmp_path):
    # The admin port opens first and fails the check (404); the service's port
    # opens only after run has checked the admin port.
    ports = tmp_path / "ports"
    run = Run(daemon, tmp_path, "two", ["--name", "web", "--check", "http:/health"],
              [sys.executable, "-c", TWO_PORTS, "404", "200", "after-asked", str(ports), "0", "0"])
    try:
        admin, main = read_when(ports).split()
        assert wait_until(lambda: errno_of(daemon.path("web")) == 0, 10), run.stderr
        assert read(daemon.path("web")).strip() == f"127.0.0.1:{main}"
    finally:
        run.kill()


def test_two_ports_that_both_pass_are_not_guessed(daemon, tmp_path):
    ports = tmp_path / "ports"
    run = Run(daemon, tmp_path, "both", ["--name", "web"],
              [sys.executable, "-c", TWO_PORTS, "200", "200", "now", str(ports), "0", "0"])
    try:
        first, second = read_when(ports).split()
        assert wait_until(lambda: "--port" in run.stderr, 10), run.stderr
        message = run.stderr
        assert f"ports {min(first, second, key=int)}, {max(first, second, key=int)}" in message
        assert errno_of(daemon.path("web")) == 2
    finally:
        run.kill()
    # Named with --port, that one is registered.
    wanted = closed_port()
    ports2 = tmp_path / "ports2"
    run = Run(daemon, tmp_path, "named", ["--name", "web", "--port", str(wanted)],
              [sys.executable, "-c", TWO_PORTS, "200", "200", "now", str(ports2), "0", str(wanted)])
    try:
        read_when(ports2)
        assert wait_until(lambda: errno_of(daemon.path("web")) == 0, 10), run.stderr
        assert read(daemon.path("web")).strip() == f"127.0.0.1:{wanted}"
    finally:
        run.kill()


def test_a_bad_check_is_invalid_input(daemon):
    r = subprocess.run([REGFS, "--mount", daemon.mount, "run", "--name", "web", "--check", "bogus",
                        "--", "true"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 7, r
    assert "unknown check" in r.stderr


def test_exit_code_with_sigchld_ignored(daemon):
    # Started with SIGCHLD ignored (inherited across exec), run still learns
    # the command's exit status.
    wrapper = ("import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
               "os.execv(sys.argv[1], sys.argv[1:])")
    r = subprocess.run([sys.executable, "-c", wrapper, REGFS, "--mount", daemon.mount, "run",
                        "--name", "web", "--", "sh", "-c", "exit 3"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 3, r


def test_a_signal_pending_when_run_starts_reaches_the_command(daemon):
    # SIGTERM arrives (blocked, so pending) before run has started the
    # command; run forwards it once the command exists. The command starts
    # with the mask run was given (SIGTERM blocked), so it sees it pending.
    wrapper = ("import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM]); "
               "os.kill(os.getpid(), signal.SIGTERM); os.execv(sys.argv[1], sys.argv[1:])")
    child = ("import signal, sys, time\n"
             "deadline = time.monotonic() + 10\n"
             "while time.monotonic() < deadline:\n"
             "    if signal.SIGTERM in signal.sigpending(): sys.exit(0)\n"
             "    time.sleep(0.01)\n"
             "sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", wrapper, REGFS, "--mount", daemon.mount, "run",
                        "--name", "web", "--", sys.executable, "-c", child],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r


def test_as_pid_1_run_reaps_orphans(daemon):
    # In a new PID namespace run is PID 1: an orphaned grandchild that exits
    # is handed to it and must be reaped, not left a zombie.
    child = ("import os, sys, time\n"
             "r, w = os.pipe()\n"
             "if os.fork() == 0:\n"
             "    g = os.fork()\n"
             "    if g == 0: os._exit(0)\n"
             "    os.write(w, str(g).encode()); os._exit(0)\n"
             "os.close(w); g = int(os.read(r, 32)); os.wait()\n"
             "deadline = time.monotonic() + 10\n"
             "while time.monotonic() < deadline:\n"
             "    try: os.kill(g, 0)\n"
             "    except ProcessLookupError: sys.exit(0)\n"
             "    time.sleep(0.01)\n"
             "sys.exit(3)\n")
    r = subprocess.run(["unshare", "--fork", "--pid", "--mount-proc", REGFS, "--mount", daemon.mount,
                        "run", "--name", "web", "--", sys.executable, "-c", child],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
