"""A cluster of regfsd daemons, each in its own network namespace on a bridge.

Each daemon is started with `nsenter --net`, which enters only the network
namespace: its FUSE mount lands in the root mount namespace, so the tests read
and write every node's mount directly. The bridge has 10.77.0.1/24 in the root
namespace; the namespaces have no default route, so nothing addressed to a test
host can leave the machine. Traffic faults are nftables rules inside a node's
namespace.
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
from harness import BUILD, REGFS, REGFSD, stop_process, wait_until  # noqa: E402,F401

BRIDGE = "br-regfs"
SUBNET = "10.77.0"
PORT = 7946


def sh(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p



class Host:
    def __init__(self, index, base, prefix="rf", subnet=SUBNET, bridge=BRIDGE):
        self.index = index
        self.name = f"{prefix}{index}"
        self.subnet = subnet
        self.bridge = bridge
        self.ip = f"{subnet}.{10 + index}"
        self.dir = os.path.join(base, self.name)
        self.mount = os.path.join(self.dir, "mnt")
        self.state = os.path.join(self.dir, "state")
        self.proc = None
        self.root = ""

    def up(self):
        # A namespace deleted a moment ago may still hold its name and its veth
        # peer while the kernel tears it down; wait for both to go.
        sh("ip", "netns", "del", self.name, check=False)
        wait_until(lambda: sh("ip", "link", "show", f"v{self.name}", check=False).returncode != 0, 5)
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", f"v{self.name}", "type", "veth", "peer", "name", "eth0",
           "netns", self.name)
        sh("ip", "link", "set", f"v{self.name}", "master", self.bridge, "up")
        self.netns("ip", "addr", "add", f"{self.ip}/24", "dev", "eth0")
        self.netns("ip", "link", "set", "eth0", "up")
        self.netns("ip", "link", "set", "lo", "up")
        os.makedirs(self.dir, exist_ok=True)

    def netns(self, *cmd, check=True):
        return sh("nsenter", f"--net=/run/netns/{self.name}", *cmd, check=check)

    def start(self, key_file, join, *extra, own_mounts=False):
        """Starts the daemon in the node's network namespace (without a key,
        `key_file` None, in the clear: --insecure). With own_mounts
        it runs under `ip netns exec`, which gives it the namespace's
        /etc/netns/NAME files (resolv.conf) and a private mount namespace: its
        mount is then reached through /proc/PID/root."""
        enter = (["ip", "netns", "exec", self.name] if own_mounts
                 else ["nsenter", f"--net=/run/netns/{self.name}"])
        cmd = [*enter, REGFSD, "--mount", self.mount,
               "--state-dir", self.state, "--node-name", self.name, "--bind", f"{self.ip}:{PORT}",
               "--advertise", self.ip,
               *(["--key-file", key_file] if key_file else ["--insecure"]), *extra]
        for j in join:
            cmd += ["--join", j]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "regfsd.log"), "ab"))
        # Both ways of entering exec the daemon in place: the pid is the daemon's.
        self.root = f"/proc/{self.proc.pid}/root" if own_mounts else ""
        assert wait_until(lambda: os.path.exists(self.path(".metrics")), 10), \
            f"{self.name} did not start"
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the daemon (SIGKILL after `timeout` s), unmounts, and returns its
        exit code (None when it was not running)."""
        code = None
        if self.proc is not None:
            code = stop_process(self.proc, sig, timeout)
            self.proc = None
        subprocess.run(["fusermount3", "-uz", self.mount], stderr=subprocess.DEVNULL)
        return code

    def path(self, *parts):
        return self.root + os.path.join(self.mount, *parts)

    def status(self):
        with open(self.path(".status.json")) as f:
            return json.load(f)

    def members(self):
        return {m["name"]: m["state"] for m in self.status()["members"]}

    def metric(self, name):
        with open(self.path(".metrics")) as f:
            for line in f:
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def read(self, *parts):
        with open(self.path(*parts)) as f:
            return f.read()

    def write(self, service, text, append=False):
        with open(self.path(service), "a" if append else "w") as f:
            f.write(text)

    # Traffic faults, inside this node's namespace.
    def nft(self, rules):
        p = subprocess.run(["nsenter", f"--net=/run/netns/{self.name}", "nft", "-f", "-"],
                           input=rules, text=True, capture_output=True)
        assert p.returncode == 0, p.stderr

    def isolate(self, peers):
        drops = "".join(f"ip saddr {p.ip} drop\n" for p in peers)
        outs = "".join(f"ip daddr {p.ip} drop\n" for p in peers)
        self.nft(f"table inet regfs_fault\ndelete table inet regfs_fault\n"
                 f"table inet regfs_fault {{\n chain in {{ type filter hook input priority 0;\n{drops} }}\n"
                 f" chain out {{ type filter hook output priority 0;\n{outs} }}\n}}\n")

    def lossy(self, percent):
        self.nft(f"table inet regfs_fault\ndelete table inet regfs_fault\n"
                 f"table inet regfs_fault {{\n chain in {{ type filter hook input priority 0;\n"
                 f"  ip saddr {self.subnet}.0/24 numgen random mod 100 < {percent} drop\n }}\n}}\n")

    def heal(self):
        self.netns("nft", "delete", "table", "inet", "regfs_fault", check=False)

    def down(self):
        self.stop(signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)


def _teardown_network():
    for i in range(1, 110):
        subprocess.run(["ip", "netns", "del", f"rf{i}"], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)


# The kernel's ARP table is one table for every network namespace, and its
# default ceiling (1024 entries) is below what 100 hosts that all talk to each
# other need (~100 x 99): beyond it, new neighbours are dropped ("neighbor
# table overflow") and whole hosts stay cut off. Raised while a cluster runs.
NEIGH = {f"/proc/sys/net/ipv4/neigh/default/gc_thresh{i}": v
         for i, v in ((1, 4096), (2, 16384), (3, 32768))}


def _write_sysctls(values):
    for path, value in values.items():
        with open(path, "w") as f:
            f.write(str(value))


def _raise_neigh_ceiling():
    """Raises the ARP table thresholds (never lowers one); returns the old values."""
    old = {}
    for path in NEIGH:
        with open(path) as f:
            old[path] = int(f.read())
    _write_sysctls({path: max(value, old[path]) for path, value in NEIGH.items()})
    return old


@pytest.fixture
def cluster():
    """cluster(n) -> [Host] with daemons started, joined through the first."""
    _teardown_network()
    saved_neigh = _raise_neigh_ceiling()
    base = tempfile.mkdtemp(prefix="regfs-net-")
    os.chmod(base, 0o755)
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    key = os.path.join(base, "key")
    with open(key, "w") as f:
        f.write(subprocess.run([REGFS, "keygen"], capture_output=True, text=True, check=True).stdout)
    hosts = []

    def make(n, *extra):
        for i in range(1, n + 1):
            h = Host(i, base)
            h.up()
            hosts.append(h)
        seed = f"{hosts[0].ip}:{PORT}"
        for h in hosts:
            h.start(key, [seed], *extra)
        return hosts

    make.key = key
    make.base = base
    make.hosts = hosts
    yield make
    for h in hosts:
        h.stop(signal.SIGKILL)
    _teardown_network()
    _write_sysctls(saved_neigh)
    shutil.rmtree(base, ignore_errors=True)
