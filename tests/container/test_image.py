"""The OCI archive itself: its config, its files, and that every program in it
finds its libraries inside it."""
import os
import re
import struct

from conftest import HERE, sh

ROOT = os.path.dirname(os.path.dirname(HERE))
LOADER = "/lib64/ld-linux-x86-64.so.2"


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"^project\(regfs VERSION ([0-9.]+)", f.read(), re.M).group(1)


def interpreter(path):
    """The ELF program interpreter (PT_INTERP) of a 64-bit little-endian file,
    None for a static program, False for a file that is not ELF."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        assert head[4] == 2 and head[5] == 1, f"{path}: not ELF64 little-endian"
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ptype, _, offset, _, _, size = struct.unpack("<IIQQQQ", f.read(40))
            if ptype == 3:  # PT_INTERP
                f.seek(offset)
                return f.read(size).rstrip(b"\0").decode()
    return None


def test_config(image):
    cfg = image.config
    assert cfg["os"] == "linux" and cfg["architecture"] == "amd64"
    c = cfg["config"]
    assert c["Entrypoint"] == ["/usr/bin/regfsd"]
    assert not c.get("Cmd")
    assert image.env["REGFS_MOUNT"] == "/registry"
    assert image.env["REGFS_STATE_DIR"] == "/var/lib/regfs"
    assert image.env["REGFS_BIND"] == "0.0.0.0:7946"
    assert image.env["PATH"] == "/usr/bin:/bin"
    assert set(c["ExposedPorts"]) == {"7946/udp", "7946/tcp"}
    assert c["Labels"]["org.opencontainers.image.version"] == project_version()
    assert c.get("StopSignal") == "SIGTERM"
    layers = image.manifest["layers"]
    assert len(layers) == 1 and layers[0]["mediaType"].endswith("tar+gzip")


def test_files(image):
    r = image.rootfs
    for d in ("registry", "var/lib/regfs", "proc", "dev", "tmp", "etc"):
        assert os.path.isdir(os.path.join(r, d)), d
    for f in ("usr/bin/regfsd", "usr/bin/regfs", "usr/bin/fusermount3", "usr/bin/busybox",
              "usr/bin/sh", "etc/passwd", "etc/group", "etc/fuse.conf",
              "usr/share/doc/regfs/README.md", "usr/share/doc/regfs/image-packages"):
        assert os.path.exists(os.path.join(r, f)), f
    # Only what a container uses: no systemd unit, no /etc/default file.
    assert not os.path.exists(os.path.join(r, "usr/lib/systemd"))
    assert not os.path.exists(os.path.join(r, "etc/default"))
    packages = open(os.path.join(r, "usr/share/doc/regfs/image-packages")).read()
    for pkg in ("libc6", "libfuse3-3", "libsodium23", "libstdc++6", "fuse3", "busybox-static"):
        assert re.search(rf"^{re.escape(pkg)} \S+$", packages, re.M), f"{pkg} not listed"
        assert os.path.exists(os.path.join(r, "usr/share/doc", pkg, "copyright")), pkg


def test_every_program_finds_its_libraries_inside(image):
    """Each dynamically linked program under /usr is resolved by the image's
    own loader under chroot (which lists the libraries' own dependencies too):
    a library missing from the image shows as `not found`."""
    r = image.rootfs
    dynamic, static = [], []
    for d, _, files in os.walk(os.path.join(r, "usr")):
        for name in files:
            path = os.path.join(d, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            interp = interpreter(path)
            inside = "/" + os.path.relpath(path, r)
            if interp:
                assert interp == LOADER, f"{inside}: interpreter {interp}"
                dynamic.append(inside)
            elif interp is None and not name.startswith("ld-linux") and ".so" not in name:
                static.append(inside)
    assert {"/usr/bin/regfsd", "/usr/bin/regfs", "/usr/bin/fusermount3"} <= set(dynamic), dynamic
    assert static == ["/usr/bin/busybox"], static
    for inside in dynamic:
        p = sh("chroot", r, LOADER, "--list", inside, check=False)
        assert p.returncode == 0, f"{inside}: {p.stdout}{p.stderr}"
        assert "not found" not in p.stdout, f"{inside}:\n{p.stdout}"
        for line in p.stdout.splitlines():
            m = re.search(r"=> (/\S+)", line)
            if m:
                assert os.path.exists(r + m.group(1)), f"{inside}: {line}"
    version = project_version()
    assert sh("chroot", r, "/usr/bin/regfsd", "--version").stdout.strip() == f"regfsd {version}"
    assert sh("chroot", r, "/usr/bin/regfs", "--version").stdout.strip() == f"regfs {version}"
    assert "fusermount3 version" in sh("chroot", r, "/usr/bin/fusermount3", "-V").stdout
    assert sh("chroot", r, "/bin/sh", "-c", "echo ok").stdout == "ok\n"


def test_size(image):
    archive = os.path.getsize(image.archive)
    unpacked = int(sh("du", "-sk", "--apparent-size", image.rootfs).stdout.split()[0])
    print(f"\nimage: archive {archive / 1e6:.1f} MB, root filesystem {unpacked / 1e3:.1f} MB")
    # The image is the programs and their libraries; a distribution's base
    # image slipping in would be ten times this.
    assert archive < 12e6, archive
