"""The example clients follow the calling rule while their service moves.

Each client runs against a real mount; halfway through, the service starts on
a new port, re-registers, and the old one stops. Every call must succeed: the
first failure on the old endpoint makes the client read the file again.
"""
import json
import os
import shutil
import subprocess

import pytest

from conftest import wait_until, write

CLIENTS = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "clients")


KINDS = ["python", "shell", "java", "node", "go"]


@pytest.fixture(scope="session")
def go_client(tmp_path_factory):
    """client.go compiled once (Debian's golang-go; nothing fetched)."""
    out = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GOCACHE": str(out / "cache"), "GOPATH": str(out / "gopath"),
           "GOFLAGS": "", "GO111MODULE": "off", "GOTOOLCHAIN": "local"}
    subprocess.run([shutil.which("go") or "go", "build", "-o", str(out / "client"),
                    os.path.join(CLIENTS, "client.go")], env=env, check=True, timeout=300)
    return str(out / "client")


def command(kind, request):
    if kind == "python":
        return ["/usr/bin/python3", os.path.join(CLIENTS, "client.py")]
    if kind == "shell":
        return ["bash", os.path.join(CLIENTS, "client.sh")]
    if kind == "node":
        return [shutil.which("node") or "node", os.path.join(CLIENTS, "client.js")]
    if kind == "go":
        return [request.getfixturevalue("go_client")]
    return [shutil.which("java") or "java", os.path.join(CLIENTS, "Client.java")]


def register(d, endpoint):
    write(d.path("web"), f"{endpoint} check=http:/health\n")


@pytest.mark.parametrize("kind", KINDS)
def test_client_follows_a_moving_service(daemon, servers, kind, tmp_path, request):
    codes = {"/health": 200, "/hello": 200}
    old = servers(codes)
    register(daemon, old.endpoint)
    log = tmp_path / "client.log"
    with open(log, "w") as out:
        client = subprocess.Popen([*command(kind, request), "--mount", daemon.mount, "--seconds", "4",
                                   "--interval", "0.02", "web", "/hello"],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        # Move only once the client has used the old endpoint a few times
        # (the JVM needs a moment to compile the source).
        assert wait_until(lambda: old.requests >= 3, 20), log.read_text()
        new = servers(codes)
        register(daemon, new.endpoint)
        old.close()
        assert client.wait(30) == 0, log.read_text()
    finally:
        if client.poll() is None:
            client.kill()
    lines = log.read_text().splitlines()
    summary = json.loads(lines[-1])
    assert summary["failed"] == 0, lines
    assert summary["endpoints"] == [old.endpoint, new.endpoint], lines
    assert summary["rereads"] >= 1
    assert summary["ok"] == summary["calls"] > 3
    assert new.requests >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_client_gives_up_after_one_reread(daemon, servers, kind, request):
    """With nothing healthy to move to, the rule fails the call instead of looping,
    and says why: the read's error (EHOSTDOWN), not an empty endpoint."""
    s = servers({"/health": 200, "/hello": 200})
    register(daemon, s.endpoint)
    s.close()
    out = subprocess.run([*command(kind, request), "--mount", daemon.mount, "--seconds", "1",
                          "--interval", "0.1", "web", "/hello"],
                         capture_output=True, text=True, timeout=30)
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["ok"] == 0 and summary["failed"] == summary["calls"] >= 1, out.stdout
    assert "call failed twice" in out.stdout
    assert "host is down" in out.stdout.lower(), out.stdout
