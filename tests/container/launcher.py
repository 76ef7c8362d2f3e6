"""The last step of starting a container, as a runtime (runc) takes it.

    launcher.py run SPEC.json    inside fresh mount, PID, UTS and IPC namespaces
                                 (and the container's network namespace): mounts
                                 the root filesystem, /proc, /dev and the
                                 volumes, sets the host name, then enters it
    launcher.py exec SPEC.json   inside a running container's namespaces (what
                                 `docker exec` does): enters its root

Entering means: chroot into the root filesystem, keep only the spec's
capabilities (the bounding set; uid 0 keeps the rest on exec, as in a
container), set no_new_privs when the spec has no capabilities at all, and exec
the command with exactly the spec's environment. Runs the host's python3 and
mount(8) before the chroot; nothing of it is left inside the container.

SPEC: {"rootfs", "hostname", "argv", "env": {..}, "caps": [numbers],
       "devices": ["/dev/fuse", ..], "read_only": bool,
       "volumes": [{"source", "target", "propagation": "rshared"|"rslave"|"private"}]}
"""
import ctypes
import json
import os
import subprocess
import sys

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_LAST = 63
DEVICES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]

libc = ctypes.CDLL(None, use_errno=True)


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def bind_file(src, dst):
    open(dst, "a").close()
    mount("--bind", src, dst)


def setup(spec):
    root = spec["rootfs"]
    # The container's mounts must not reach the host: the root filesystem is
    # a bind mount of itself under a private parent (the test's directory),
    # so everything mounted below it stays in this namespace, except what is
    # mounted under an rshared volume, which is the point of one.
    mount("--bind", root, root)
    mount("--make-private", root)
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", f"{root}/proc")
    mount("-t", "tmpfs", "-o", "nosuid,mode=755,size=64k", "tmpfs", f"{root}/dev")
    for dev in DEVICES + spec.get("devices", []):
        bind_file(dev, root + dev)
    for v in spec.get("volumes", []):
        target = root + v["target"]
        os.makedirs(target, exist_ok=True)
        # Runtimes bind volumes recursively: what is mounted inside a volume
        # (a FUSE mount left by an earlier sidecar) comes with it.
        mount("--rbind", v["source"], target)
        mount(f"--make-{v['propagation']}", target)
    if spec.get("read_only"):  # `--read-only`: the volumes and /dev stay writable
        mount("-o", "remount,bind,ro", root)
    name = spec["hostname"].encode()
    if libc.sethostname(name, len(name)) != 0:
        raise OSError(ctypes.get_errno(), "sethostname")


def enter(spec):
    os.chroot(spec["rootfs"])
    os.chdir("/")
    keep = set(spec.get("caps", []))
    for cap in range(CAP_LAST + 1):
        if cap not in keep and libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == 22:  # EINVAL: past the kernel's last capability
                break
            raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap}")
    if not keep and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    argv = spec["argv"]
    os.execve(argv[0], argv, spec["env"])


def main():
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        spec = json.load(f)
    if mode == "run":
        setup(spec)
    enter(spec)


if __name__ == "__main__":
    main()
