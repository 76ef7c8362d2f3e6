"""A node's lives on real daemons: one restarted with its state directory lost and a
clock behind its previous life still becomes a member at once, above that life, and
records the generation it took in its state directory.
"""
import json
import os
import shutil
import signal
import time

import pytest

from conftest import read, wait_until, write


def status(d):
    return json.loads(read(d.path(".status.json")))


def member(d, name):
    return next((m for m in status(d)["members"] if m["name"] == name), None)


def gossip_address(d):
    return next(m["address"] for m in status(d)["members"] if m["self"])


def test_a_node_restarted_below_its_previous_life_lives_above_it(make_daemon, servers):
    a = make_daemon()
    b = make_daemon("--node-name", "n2", "--join", gossip_address(a))
    # b's previous life: a generation an hour ahead of the wall clock, as if its
    # clock has since been set back an hour.
    b.stop()
    ahead = time.time_ns() // 1000 + 3600 * 1000 * 1000
    write(os.path.join(b.state, "generation"), f"{ahead}\n")
    b.start()
    previous = ahead + 1
    assert wait_until(lambda: (member(a, "n2") or {}).get("generation") == previous
                      and member(a, "n2")["state"] == "alive", 10)
    b.stop(signal.SIGKILL)
    assert wait_until(lambda: member(a, "n2")["state"] == "dead", 10)

    # The state directory is lost: the new life's wall-clock generation is an
    # hour below the previous one, which a holds dead.
    shutil.rmtree(b.state)
    started = time.monotonic()
    b.start()
    srv = servers()
    write(b.path("web"), srv.endpoint + "\n")
    assert wait_until(lambda: member(a, "n2")["state"] == "alive"
                      and member(a, "n2")["generation"] > previous
                      and os.path.exists(a.path("web")), 10), b.read_log()
    took = time.monotonic() - started
    assert took < 5, took
    assert read(a.path("web")) == srv.endpoint + "\n"
    life = member(a, "n2")["generation"]
    assert life == previous + 1
    # b recorded it: its next start goes higher still.
    assert int(read(os.path.join(b.state, "generation"))) == life
    assert next(m for m in status(b)["members"] if m["self"])["generation"] == life
    assert status(b)["generation"] == life
    assert "starts a new life" in b.read_log()
