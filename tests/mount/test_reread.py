"""Re-reads: a process that opens a service again is telling the daemon that the
endpoint it was handed failed (docs/INTERFACES.md, "Re-reads")."""
import json
import subprocess
import sys
import time

import pytest

from conftest import read, wait_until, write

# A client that reads the service once per line on stdin, each read from a new
# thread (the daemon must tell the process, not the thread), and prints what it got.
CLIENT = r"""
import sys, threading
path = sys.argv[1]
def once():
    try:
        with open(path) as f:
            print(f.read().strip(), flush=True)
    except OSError as e:
        print(f"errno {e.errno}", flush=True)
for _ in sys.stdin:
    t = threading.Thread(target=once)
    t.start()
    t.join()
"""


class Client:
    def __init__(self, path, wrap=()):
        self.proc = subprocess.Popen([*wrap, sys.executable, "-c", CLIENT, path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def verdict_age_ms(d, service, endpoint):
    for inst in json.loads(read(d.path(".status.json")))["services"].get(service, []):
        if inst["endpoint"] == endpoint:
            return inst["verdict_age_ms"]
    return None


# Where the reader runs: beside the daemon; in a PID namespace below the
# daemon's (it sees the reader's pid); and beside a daemon in a PID namespace of
# its own, which sees no reader's pid (all come as pid 0: one process).
PLACES = {
    "same namespace": ((), ()),
    "reader in a child pid namespace": ((), ("unshare", "--pid", "--fork", "--kill-child")),
    "daemon in its own pid namespace": (("unshare", "--pid", "--fork", "--kill-child=SIGTERM"), ()),
}


@pytest.mark.parametrize("place", PLACES)
def test_the_re_read_after_a_crash_hands_out_the_new_instance(make_daemon, servers, place):
    daemon_wrap, reader_wrap = PLACES[place]
    # A long freshness window and no background checks: only a re-read can
    # find out, within the window, that the old instance died.
    args = ("--fresh", "10s", "--check-interval", "60s", "--read-timeout", "1s")
    d = make_daemon(*args)
    if daemon_wrap:
        d.stop()
        d.wrap = list(daemon_wrap)
        d.start()
    old = servers()
    write(d.path("gateway"), f"{old.endpoint} check=http:/health")
    client = Client(d.path("gateway"), reader_wrap)
    try:
        assert client.read() == old.endpoint  # checked healthy now, fresh for 10 s
        # The move: the old instance is killed; the new one is registered (and
        # sorts after the old, where the rotation starts) and answers its checks.
        old.close()
        new = servers(host="127.0.0.2")
        write(d.path("gateway"), f"{new.endpoint} check=http:/health\n", append=True)
        # The old verdict is older than the re-check limit (100 ms) and still fresh.
        assert wait_until(lambda: (verdict_age_ms(d, "gateway", old.endpoint) or 0) > 150, 5)
        before = d.metric("regfs_reverify_checks_total")
        # The calling rule: the call to the old endpoint failed; read again.
        assert client.read() == new.endpoint
        assert d.metric("regfs_reverify_checks_total") == before + 1
        assert d.metric("regfs_rereads_total") >= 1
        # The old one failed its check: nobody is handed it any more.
        assert json.loads(read(d.path(".status.json")))["services"]["gateway"][0]["verdict"] == "unhealthy"
        assert client.read() == new.endpoint
    finally:
        client.close()


def test_a_reader_polling_in_a_loop_costs_at_most_ten_checks_per_endpoint_per_second(make_daemon, servers):
    d = make_daemon("--fresh", "10s", "--check-interval", "60s")
    a, b = servers(), servers()
    write(d.path("web"), f"{a.endpoint}\n{b.endpoint}\n")
    assert read(d.path("web")).strip() in (a.endpoint, b.endpoint)
    checks = d.metric("regfs_checks_total")
    reverify = d.metric("regfs_reverify_checks_total")
    started = time.monotonic()
    reads = 0
    while time.monotonic() - started < 2.0 and reads < 200000:  # this process re-reads all along
        with open(d.path("web")) as f:
            assert f.read().strip() in (a.endpoint, b.endpoint)
        reads += 1
    elapsed = time.monotonic() - started
    extra = d.metric("regfs_reverify_checks_total") - reverify
    per_endpoint_per_second = extra / 2 / elapsed
    assert reads > 100
    assert extra > 0  # re-reads do re-verify
    # At most one check per endpoint per 100 ms, and one more per endpoint for the edges.
    assert per_endpoint_per_second <= 10 + 2 / elapsed, (extra, elapsed, reads)
    # Every check in the window was a re-verification (fresh for 10 s otherwise).
    assert d.metric("regfs_checks_total") - checks == extra
