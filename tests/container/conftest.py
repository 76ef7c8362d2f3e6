"""Containers started from the regfs OCI image the way a runtime starts them.

The image (REGFS_IMAGE, an OCI archive from packaging/image.sh) is unpacked
once: index.json -> manifest -> config and layers, each layer a tar. Each
container gets its own copy of that root filesystem and is started with
`nsenter --net` into its host's network namespace, then `unshare` for its own
mount, PID, UTS and IPC namespaces, then launcher.py (mounts, chroot, the
capability bounding set, exec of the image's entry point with the image's
environment). Hosts are network namespaces rfc1, rfc2, ... on the bridge
br-regfs-ctr, which has 10.79.0.1/24 in the root namespace; the namespaces have
no default route, so nothing leaves the machine.

Everything the tests create lives under one temporary directory that is a
private mount (the containers' own mounts cannot reach the host through it);
volumes are directories in it, bind-mounted on themselves and made shared when
a volume must carry mounts between containers.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "launcher.py")
IMAGE = os.environ.get("REGFS_IMAGE", "")
BRIDGE = "br-regfs-ctr"
SUBNET = "10.79.0"
NETNS = "rfc"
PORT = 7946

# Capability numbers (linux/capability.h). A container started with docker's
# defaults gets DEFAULT_CAPS; `--cap-add SYS_ADMIN` adds SYS_ADMIN.
CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP = 0, 1, 3, 4, 5, 6, 7, 8
NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, SYS_ADMIN, MKNOD, AUDIT_WRITE, SETFCAP = 10, 13, 18, 21, 27, 29, 31
DEFAULT_CAPS = [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
                NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP]


def sh(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def oci_blob(layout, digest):
    algo, _, hexdigest = digest.partition(":")
    return os.path.join(layout, "blobs", algo, hexdigest)


def unpack_image(archive, dest):
    """Unpacks an OCI archive's single image into dest/rootfs; returns (manifest, config)."""
    layout = os.path.join(dest, "layout")
    os.makedirs(layout)
    sh("tar", "-xf", archive, "-C", layout)
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    assert len(index["manifests"]) == 1, index
    with open(oci_blob(layout, index["manifests"][0]["digest"])) as f:
        manifest = json.load(f)
    with open(oci_blob(layout, manifest["config"]["digest"])) as f:
        config = json.load(f)
    rootfs = os.path.join(dest, "rootfs")
    os.makedirs(rootfs)
    for layer in manifest["layers"]:
        blob = oci_blob(layout, layer["digest"])
        names = sh("tar", "-tf", blob).stdout.split()
        # Whiteouts only matter on top of a lower layer; this image has none.
        assert not [n for n in names if os.path.basename(n).startswith(".wh.")], "whiteouts"
        sh("tar", "-xpf", blob, "-C", rootfs, "--numeric-owner")
    return manifest, config


class Image:
    def __init__(self, archive, dest):
        self.archive = archive
        self.dir = dest
        self.manifest, self.config = unpack_image(archive, dest)
        self.rootfs = os.path.join(dest, "rootfs")
        self.env = dict(e.split("=", 1) for e in self.config["config"].get("Env", []))
        self.argv = (self.config["config"].get("Entrypoint") or []) + \
            (self.config["config"].get("Cmd") or [])


@pytest.fixture(scope="session")
def image():
    if not IMAGE:
        pytest.fail("REGFS_IMAGE is not set (tests/container/run.sh builds the image)")
    dest = tempfile.mkdtemp(prefix="regfs-image-")
    try:
        yield Image(IMAGE, dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


class Host:
    """A network namespace on the bridge: what ECS calls a task's network (awsvpc)
    and Kubernetes a pod's; every container of the task shares it."""

    def __init__(self, index):
        self.name = f"{NETNS}{index}"
        self.ip = f"{SUBNET}.{10 + index}"

    def up(self):
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", f"v{self.name}", "type", "veth", "peer", "name", "eth0",
           "netns", self.name)
        sh("ip", "link", "set", f"v{self.name}", "master", BRIDGE, "up")
        for cmd in (["ip", "addr", "add", f"{self.ip}/24", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
            sh("nsenter", f"--net=/run/netns/{self.name}", *cmd)


class Container:
    def __init__(self, lab, name, host, *, caps, devices=(), volumes=(), env=None, argv=None,
                 read_only=False):
        self.lab, self.name, self.host = lab, name, host
        self.dir = os.path.join(lab.base, "containers", name)
        if os.path.exists(self.dir):  # a restart: a fresh root filesystem, as a new container has
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.rootfs = os.path.join(self.dir, "rootfs")
        sh("cp", "-a", lab.image.rootfs, self.rootfs)
        os.makedirs(os.path.join(self.rootfs, "etc/regfs"), exist_ok=True)
        shutil.copy(lab.key, os.path.join(self.rootfs, "etc/regfs/key"))
        os.chmod(os.path.join(self.rootfs, "etc/regfs/key"), 0o600)
        self.env = dict(lab.image.env, HOSTNAME=name, **(env or {}))  # HOSTNAME: as docker sets it
        self.caps = list(caps)
        self.spec = {
            "rootfs": self.rootfs, "hostname": name, "argv": argv or lab.image.argv,
            "env": self.env, "caps": self.caps, "devices": list(devices),
            "volumes": [{"source": s, "target": t, "propagation": p} for s, t, p in volumes],
            "read_only": read_only,
        }
        spec_path = os.path.join(self.dir, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(self.spec, f)
        self.log_path = os.path.join(self.dir, "log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.name}",
                 "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork",
                 "--propagation", "unchanged", "--kill-child",
                 sys.executable, LAUNCHER, "run", spec_path],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = None
        lab.containers.append(self)  # stopped at the end whatever happens next
        children = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"

        def forked():
            try:
                with open(children) as f:
                    return f.read().split()
            except FileNotFoundError:
                return []
        assert wait_until(forked, 10), f"{name}: unshare did not fork: {self.log()}"
        self.pid = int(forked()[0])  # the container's PID 1, seen from the host

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def path(self, inside):
        """Where the host reads a path as the container's PID 1 sees it."""
        return f"/proc/{self.pid}/root{inside}"

    def read(self, inside):
        try:
            with open(self.path(inside)) as f:
                return f.read()
        except OSError:
            return None

    def exec_argv(self, argv, caps=None, env=None):
        spec = dict(self.spec, argv=list(argv), caps=self.caps if caps is None else list(caps),
                    env=dict(self.env, **(env or {})))
        fd, path = tempfile.mkstemp(dir=self.dir, prefix="exec-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(spec, f)
        return ["nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p",
                sys.executable, LAUNCHER, "exec", path]

    def exec(self, *argv, caps=None, env=None, timeout=10):
        """What `docker exec` does: runs argv in the container; returns the CompletedProcess."""
        return subprocess.run(self.exec_argv(argv, caps, env), capture_output=True, text=True,
                              timeout=timeout)

    def spawn(self, *argv, caps=None, env=None):
        """`docker exec -d`: argv keeps running in the container until it stops."""
        return subprocess.Popen(self.exec_argv(argv, caps, env), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def running(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGKILL):
        """Signals PID 1 (the whole PID namespace ends with it); returns unshare's status."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid or self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def _teardown_network():
    for i in range(1, 10):
        subprocess.run(["ip", "netns", "del", f"{NETNS}{i}"], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


class Lab:
    def __init__(self, image, base):
        self.image, self.base = image, base
        self.containers, self.hosts = [], []
        self.key = os.path.join(base, "key")
        keygen = sh("chroot", image.rootfs, "/usr/bin/regfs", "keygen").stdout
        with open(self.key, "w") as f:
            f.write(keygen)
        os.chmod(self.key, 0o600)

    def host(self):
        h = Host(len(self.hosts) + 1)
        h.up()
        self.hosts.append(h)
        return h

    def volume(self, name, shared=False):
        """A host directory for volumes; `shared` makes it a shared mount, the
        host side of a volume with bidirectional (rshared) propagation."""
        path = os.path.join(self.base, "volumes", name)
        os.makedirs(path)
        if shared:
            sh("mount", "--bind", path, path)
            sh("mount", "--make-shared", path)
        return path

    def container(self, name, host, **kwargs):
        return Container(self, name, host, **kwargs)


@pytest.fixture
def lab(image):
    _teardown_network()
    base = tempfile.mkdtemp(prefix="regfs-container-")
    sh("mount", "--bind", base, base)
    sh("mount", "--make-private", base)
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    lab = Lab(image, base)
    try:
        yield lab
    finally:
        for c in lab.containers:
            c.stop()
        # Mounts that reached the host through shared volumes go with the rest.
        subprocess.run(["umount", "--recursive", "--lazy", base], stderr=subprocess.DEVNULL)
        _teardown_network()
        left = _mounts_under(base)
        assert not left, f"mounts left under {base}: {left}"
        shutil.rmtree(base, ignore_errors=True)


def wait_for(predicate, timeout, what, container=None):
    """wait_until, failing with `what` and the container's log when it does not hold."""
    if wait_until(predicate, timeout):
        return
    detail = f"\n--- {container.name} log:\n{container.log()}" if container else ""
    raise AssertionError(f"timed out after {timeout}s: {what}{detail}")


