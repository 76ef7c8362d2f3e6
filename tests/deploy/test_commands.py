"""The deployment files' commands do what they say, run here with the paths moved into a
temporary directory (/registry, /dev/shm, /etc/regfs, /run/secrets, /var/lib/regfs):

  * the start scripts (ECS, compose): with stand-ins for regfsd and regfs, the script
    writes the secret to the key file (mode 600, the variable gone from regfsd's and
    the service's environment), starts regfsd, waits for the mount and execs the
    service's command;
  * the health checks and probes, against the real regfsd started with each file's
    settings (gossip on loopback, no join, so nothing leaves the machine): each fails
    before the daemon runs, passes once it runs (a FUSE mount, or the control socket
    in mirror mode), and fails again after it stopped; in mirror mode the `register`
    container's command registers through the daemon.
"""
import glob
import os
import signal
import subprocess
import time

import pytest
import yaml

import validate as v

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "examples", "deploy")
BUILD = os.environ.get("REGFS_BUILD", os.path.join(ROOT, "build"))
KEY_VAR_VALUE = None  # a fresh key per run, from regfs keygen
MOVED = ("/registry", "/dev/shm", "/etc/regfs", "/run/secrets", "/var/lib/regfs")


def check_argv(cmd):
    """A health check or probe as an argv: ECS/compose CMD-SHELL and CMD, or a plain exec."""
    if cmd and cmd[0] == "CMD-SHELL":
        return ["sh", "-c", cmd[1]]
    if cmd and cmd[0] == "CMD":
        return list(cmd[1:])
    return list(cmd)


def shapes():
    """Every place a file runs regfsd (or relies on the host's), with what to run there."""
    out = []
    for path in sorted(glob.glob(os.path.join(DEPLOY, "ecs", "*.json"))):
        doc, _ = v.load_json(path)
        where = os.path.relpath(path, DEPLOY)
        containers = doc["containerDefinitions"]
        daemons = [c for c in containers
                   if v.invocations(v.words((c.get("entryPoint") or []) + (c.get("command") or [])), "regfsd")]
        for c in daemons:
            argv = lambda c2: (c2.get("entryPoint") or []) + (c2.get("command") or [])
            after = [argv(c2) for c2 in containers
                     if any(d["containerName"] == c["name"] for d in c2.get("dependsOn", []))
                     and v.invocations(v.words(argv(c2)), "regfs")]
            out.append(dict(where=f"{where}:{c['name']}",
                            command=(c.get("entryPoint") or []) + (c.get("command") or []),
                            env={e["name"]: e["value"] for e in c.get("environment", [])},
                            secrets=[s["name"] for s in c.get("secrets", [])],
                            checks=[check_argv(c["healthCheck"]["command"])], after=after))
        if not daemons:  # the instance's daemon, with the package's defaults
            app = containers[0]
            out.append(dict(where=f"{where}:host", command=None, env={}, secrets=[],
                            checks=[check_argv(app["healthCheck"]["command"])], after=[]))
    for path in sorted(glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml"))):
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            if doc["kind"] == "Service":
                continue
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if not v.invocations(v.words((c.get("command") or []) + (c.get("args") or [])), "regfsd"):
                    continue
                checks = [check_argv(c[p]["exec"]["command"]) for p in ("readinessProbe", "livenessProbe")]
                post = c.get("lifecycle", {}).get("postStart", {}).get("exec", {}).get("command")
                out.append(dict(where=f"{os.path.relpath(path, DEPLOY)}:{c['name']}",
                                command=(c.get("command") or []) + (c.get("args") or []),
                                env={e["name"]: e["value"] for e in c.get("env", []) if "value" in e},
                                secrets=[], checks=checks, after=[], post_start=post))
    _, compose = v.compose_config(os.path.join(DEPLOY, "compose", "compose.yaml"))
    for name, s in sorted(compose["services"].items()):
        unescape = lambda xs: [x.replace("$$", "$") for x in xs]
        out.append(dict(where=f"compose.yaml:{name}",
                        command=unescape(s["entrypoint"]) + unescape(s["command"]),
                        env={k: str(x) for k, x in s["environment"].items()}, secrets=[],
                        checks=[check_argv(s["healthcheck"]["test"])], after=[]))
    return out


SHAPES = shapes()


class Moved:
    """The files' absolute paths moved under a temporary directory."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        for p in MOVED:
            os.makedirs(self.tmp + p, exist_ok=True)

    def __call__(self, value):
        if isinstance(value, list):
            return [self(x) for x in value]
        if isinstance(value, dict):
            return {k: self(x) for k, x in value.items()}
        for p in MOVED:
            value = value.replace(p, self.tmp + p)
        return value


@pytest.fixture(scope="module")
def key():
    r = subprocess.run([os.path.join(BUILD, "daemon", "cli", "regfs"), "keygen"], capture_output=True,
                       text=True, check=True)
    return r.stdout.strip()


def bin_dir(tmp, fakes):
    d = os.path.join(str(tmp), "bin")
    os.makedirs(d, exist_ok=True)
    for prog in ("regfsd", "regfs"):
        target = os.path.join(d, prog)
        if fakes:
            with open(target, "w") as f:
                f.write(fakes[prog])
            os.chmod(target, 0o755)
        else:
            os.symlink(os.path.join(BUILD, "daemon", "app" if prog == "regfsd" else "cli", prog), target)
    return d


FAKE_REGFSD = """#!/bin/sh
# Stands in for regfsd: records what it was given and makes the mount look ready.
out=$FAKE_OUT/regfsd
echo "args=$*" > "$out"
echo "cluster_key=${CLUSTER_KEY-unset}" >> "$out"
cp "$REGFS_KEY_FILE" "$FAKE_OUT/key"
stat -c %a "$REGFS_KEY_FILE" > "$FAKE_OUT/key_mode"
dir=${REGFS_MIRROR:-${REGFS_MOUNT:-/registry}}
: > "$dir/.metrics"
"""

FAKE_REGFS = """#!/bin/sh
# Stands in for regfs: records its arguments.
printf '%s\\n' "$@" > "$FAKE_OUT/regfs"
echo "cluster_key=${CLUSTER_KEY-unset}" > "$FAKE_OUT/regfs_env"
"""


@pytest.mark.parametrize("shape", [s for s in SHAPES if s["command"] and s["command"][0] == "sh"],
                         ids=lambda s: s["where"])
def test_start_script(shape, tmp_path, key):
    moved = Moved(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    env = {"PATH": bin_dir(tmp_path, {"regfsd": FAKE_REGFSD, "regfs": FAKE_REGFS}) + ":/usr/bin:/bin",
           "FAKE_OUT": str(out), **moved(shape["env"])}
    env.update({name: key for name in shape["secrets"]})
    if "REGFS_KEY_FILE" in shape["env"] and not shape["secrets"]:
        # Kubernetes and compose mount the key as a file; put it where they would.
        path = moved(shape["env"]["REGFS_KEY_FILE"])
        with open(path, "w") as f:
            f.write(key + "\n")
        os.chmod(path, 0o600)
    r = subprocess.run(moved(shape["command"]), env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    seen = (out / "regfsd").read_text()
    assert "cluster_key=unset" in seen, "the secret variable reached regfsd"
    assert (out / "key").read_text() == key + "\n"
    assert (out / "key_mode").read_text().strip() == "600"
    calls = v.invocations(v.words(shape["command"]), "regfs")
    if calls or "exec \"$@\"" in " ".join(shape["command"]):
        expected = calls[0] if calls else shape["command"][shape["command"].index("regfs") + 1:]
        assert (out / "regfs").read_text().split("\n")[:-1] == moved(expected)
        assert (out / "regfs_env").read_text().strip() == "cluster_key=unset"


def run_ok(argv, env):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
                    reason="needs root and /dev/fuse (FUSE mounts)")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s["where"])
def test_health_checks_against_regfsd(shape, tmp_path, key):
    moved = Moved(tmp_path)
    path = bin_dir(tmp_path, None) + ":/usr/bin:/bin"
    env = {k: x for k, x in moved(shape["env"]).items() if k != "REGFS_JOIN"}
    env.update(PATH=path, REGFS_BIND="127.0.0.1:0", REGFS_ADVERTISE="127.0.0.1",
               REGFS_STATE_DIR=str(tmp_path / "state"), REGFS_NODE_NAME="deploy-test")
    env.setdefault("REGFS_MOUNT", moved("/registry"))
    key_file = env.setdefault("REGFS_KEY_FILE", moved("/etc/regfs/key"))
    with open(key_file, "w") as f:
        f.write(key + "\n")
    os.chmod(key_file, 0o600)
    args = []
    if shape["command"]:
        args = moved(v.invocations(v.words(shape["command"]), "regfsd")[0])
    checks = [moved(c) for c in shape["checks"]]
    check_env = {"PATH": path}
    for c in checks:
        assert not run_ok(c, check_env), f"{c} passes with no daemon running"
    if shape.get("post_start"):  # waits for the mount itself (up to 30 s): run once it is up
        checks.append(moved(shape["post_start"]))
    daemon = subprocess.Popen([os.path.join(BUILD, "daemon", "app", "regfsd"), *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fuse = env.get("REGFS_NO_MOUNT") != "1"
    try:
        for c in checks:
            deadline = time.monotonic() + 10
            while not run_ok(c, check_env):
                assert daemon.poll() is None, f"regfsd exited: {daemon.stderr.read()}"
                assert time.monotonic() < deadline, f"{c} does not pass with regfsd running"
                time.sleep(0.05)
        for command in shape["after"]:
            r = subprocess.run(moved(command), env=check_env, capture_output=True, text=True, timeout=10)
            assert r.returncode == 0, f"{command}: {r.stderr}"
            service = command[command.index("register") + 1]
            assert (tmp_path / "state" / "services" / service).exists(), f"{command} kept nothing"
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        if fuse:
            subprocess.run(["umount", "-l", env["REGFS_MOUNT"]], capture_output=True)
    assert daemon.returncode == 0, daemon.stderr.read()
    for c in shape["checks"]:
        assert not run_ok(moved(c), check_env), f"{c} still passes after regfsd stopped"
