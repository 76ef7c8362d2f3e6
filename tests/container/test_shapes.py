"""The image started in the three ways it is used, two hosts (network
namespaces) forming one cluster in each:

- in the task container: regfsd and the application in one container, which
  has /dev/fuse and CAP_SYS_ADMIN (`--device /dev/fuse --cap-add SYS_ADMIN`);
- as a sidecar: regfsd in its own container mounts into a volume shared with
  bidirectional (rshared) propagation; the application's container has no
  capabilities and no /dev/fuse and sees the mount through the volume (rslave);
- Fargate mode: no /dev/fuse, no CAP_SYS_ADMIN; regfsd keeps plain files in a
  shared volume (`--mirror DIR --no-mount`), the application reads them and
  registers through `regfs --mirror`.

The sidecar and Fargate daemons run with a read-only root filesystem
(`--read-only`, readOnlyRootFilesystem): all they write is the state volume,
the shared volume and the mount.

The application is busybox from the image: `httpd` serves a page naming its
container, `cat` reads the registry, `wget` calls the endpoint it read.
"""
import errno
import os

from conftest import DEFAULT_CAPS, PORT, SYS_ADMIN, wait_for

FUSE = ["/dev/fuse"]
TASK_CAPS = DEFAULT_CAPS + [SYS_ADMIN]
KEY = {"REGFS_KEY_FILE": "/etc/regfs/key"}


def serve(container, port=8080):
    """Starts the application's web server in the container: it answers
    `GET /` with the container's name."""
    page = os.path.join(container.rootfs, "srv")
    os.makedirs(page, exist_ok=True)
    with open(os.path.join(page, "index.html"), "w") as f:
        f.write(f"hello from {container.name}\n")
    return container.spawn("/usr/bin/httpd", "-f", "-p", str(port), "-h", "/srv")


def ready(container, metrics):
    wait_for(lambda: container.read(metrics) is not None and "regfs_reads_total" in container.read(metrics),
             15, f"{metrics} in {container.name}", container)


def call(container, path):
    """The application's call: read the endpoint, then GET it (busybox's
    `wget -T` crashes in Debian 12's busybox-static; `timeout` bounds it)."""
    p = container.exec("/bin/sh", "-c", f'read -r ep < {path} && timeout 3 wget -q -O - "http://$ep/"')
    return p.stdout if p.returncode == 0 else None


# The task container's own command when regfsd and the service share it (as
# the ECS in-task file does): regfsd in the background, the service started by
# `regfs run` once the mount is up. Bounded: 300 polls of 0.1 s.
TASK_COMMAND = (
    "mkdir -p /srv && echo hello from $HOSTNAME >/srv/index.html; regfsd & "
    "i=0; while [ ! -r /registry/.metrics ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; "
    "exec regfs run --name web-$SIDE --port 8080 --check http:/ -- httpd -f -p 8080 -h /srv")


def test_task_container(lab):
    """regfsd and the application in one container, which has /dev/fuse and
    SYS_ADMIN. task-a runs the image's entry point and the application beside
    it (`docker exec`), registering through the mount; task-b's command starts
    both (regfsd in the background, the service under `regfs run`). Each reads
    and calls the service the other host's container registered."""
    h1, h2 = lab.host(), lab.host()
    a = lab.container("task-a", h1, caps=TASK_CAPS, devices=FUSE, env=KEY)
    b = lab.container("task-b", h2, caps=TASK_CAPS, devices=FUSE,
                      env={"REGFS_JOIN": f"{h1.ip}:{PORT}", "SIDE": "b", **KEY},
                      argv=["/bin/sh", "-c", TASK_COMMAND])
    ready(a, "/registry/.metrics")
    serve(a)
    p = a.exec("/usr/bin/regfs", "register", "web-a", ":8080", "--check", "http:/")
    assert p.returncode == 0, p.stderr
    # Each reads the other's registration through its own mount and calls it.
    wait_for(lambda: call(a, "/registry/web-b") == "hello from task-b\n", 15, "a calls web-b", b)
    wait_for(lambda: call(b, "/registry/web-a") == "hello from task-a\n", 15, "b calls web-a", b)
    assert a.read("/registry/web-b").strip() == f"{h2.ip}:8080"
    assert b.read("/registry/web-a").strip() == f"{h1.ip}:8080"
    # The node names are the containers' host names.
    members = a.exec("/usr/bin/regfs", "members").stdout
    assert "task-a" in members and "task-b" in members, members
    # SIGTERM (docker stop) unmounts and exits 0.
    assert a.stop(15) == 0, a.log()


def test_without_key_the_entry_point_refuses_to_listen(lab):
    """The image listens on every interface by default, so it needs a key
    (REGFS_KEY_FILE) or an explicit REGFS_INSECURE=1."""
    c = lab.container("nokey", lab.host(), caps=TASK_CAPS, devices=FUSE)
    assert c.proc.wait(timeout=10) != 0
    assert "without a key" in c.log(), c.log()


def capabilities(container):
    status = container.exec("/bin/cat", "/proc/self/status").stdout
    return [line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")][0]


def regfs_mounts(container):
    """The mountpoints of regfs mounts in the container, one line per mount."""
    with open(f"/proc/{container.pid}/mountinfo") as f:
        return [line.split()[4] for line in f if " - fuse.regfs " in line]


def test_sidecar(lab):
    """regfsd in its own container mounts into a volume with bidirectional
    propagation; the application's container (no capabilities, no /dev/fuse)
    sees the mount through the same volume. When the sidecar is killed the
    application sees a dead mount (ENOTCONN); the restarted sidecar takes it
    over and the application sees the new mount, with the registration it made
    before (kept in the sidecar's state volume)."""
    h1, h2 = lab.host(), lab.host()
    shared = lab.volume("registry-a", shared=True)
    state = lab.volume("state-a")
    sidecar_spec = dict(caps=TASK_CAPS, devices=FUSE, read_only=True,
                        volumes=[(shared, "/shared", "rshared"), (state, "/var/lib/regfs", "private")],
                        env={"REGFS_MOUNT": "/shared/registry", **KEY})
    side = lab.container("side-a", h1, **sidecar_spec)
    app = lab.container("app-a", h1, caps=[], volumes=[(shared, "/shared", "rslave")],
                        env={"REGFS_MOUNT": "/shared/registry"},
                        argv=["/bin/sh", "-c", "mkdir -p /srv && echo hello from app-a >/srv/index.html"
                              " && exec httpd -f -p 8080 -h /srv"])
    b = lab.container("task-b", h2, caps=TASK_CAPS, devices=FUSE,
                      env={"REGFS_JOIN": f"{h1.ip}:{PORT}", **KEY})
    ready(side, "/shared/registry/.metrics")
    ready(app, "/shared/registry/.metrics")
    ready(b, "/registry/.metrics")
    assert capabilities(app) == "0000000000000000"
    assert app.exec("/bin/ls", "/dev/fuse").returncode != 0
    assert regfs_mounts(app) == ["/shared/registry"]

    serve(b)
    p = app.exec("/usr/bin/regfs", "register", "web-a", ":8080", "--check", "http:/")
    assert p.returncode == 0, p.stderr
    p = b.exec("/usr/bin/regfs", "register", "web-b", ":8080", "--check", "http:/")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: call(b, "/registry/web-a") == "hello from app-a\n", 15, "b calls web-a", side)
    wait_for(lambda: call(app, "/shared/registry/web-b") == "hello from task-b\n", 15,
             "app calls web-b", side)

    side.stop()  # SIGKILL: no unmount
    dead = os.strerror(errno.ENOTCONN)
    wait_for(lambda: dead in app.exec("/bin/cat", "/shared/registry/.metrics").stderr, 10,
             "the application sees the dead mount")

    side = lab.container("side-a", h1, **sidecar_spec)
    ready(side, "/shared/registry/.metrics")
    # The dead mount is detached, not buried under the new one: the detach
    # propagates through the volume like the mount does.
    assert regfs_mounts(app) == ["/shared/registry"]
    assert "took over /shared/registry" in side.log(), side.log()
    ready(app, "/shared/registry/.metrics")
    wait_for(lambda: call(app, "/shared/registry/web-b") == "hello from task-b\n", 15,
             "app calls web-b after the sidecar's restart", side)
    wait_for(lambda: call(b, "/registry/web-a") == "hello from app-a\n", 15,
             "b calls web-a after the sidecar's restart", side)
    assert "restored" in side.log() and "1 restored" in side.log(), side.log()


def test_fargate_mirror(lab):
    """No /dev/fuse and no CAP_SYS_ADMIN: regfsd keeps plain files in a shared
    volume; the application reads them and registers through `regfs --mirror`
    (REGFS_MIRROR), on two hosts that form one cluster."""
    hosts = [lab.host(), lab.host()]
    apps, daemons, volumes = [], [], []
    for i, h in enumerate(hosts):
        x = "ab"[i]
        vol = lab.volume(f"mirror-{x}")
        env = {"REGFS_MIRROR": "/shared/registry", "REGFS_NO_MOUNT": "1",
               "REGFS_CHECK_INTERVAL": "1s", **KEY}
        if i > 0:
            env["REGFS_JOIN"] = f"{hosts[0].ip}:{PORT}"
        state = lab.volume(f"state-{x}")
        daemons.append(lab.container(f"fargate-{x}", h, caps=DEFAULT_CAPS, read_only=True,
                                     volumes=[(vol, "/shared", "rslave"),
                                              (state, "/var/lib/regfs", "private")], env=env))
        apps.append(lab.container(
            f"app-{x}", h, caps=[], volumes=[(vol, "/shared", "rslave")],
            env={"REGFS_MIRROR": "/shared/registry"},
            argv=["/bin/sh", "-c", f"mkdir -p /srv && echo hello from app-{x} >/srv/index.html"
                  " && exec httpd -f -p 8080 -h /srv"]))
        volumes.append(vol)
    for d in daemons:
        wait_for(lambda: os.path.exists(d.path("/shared/registry/.regfsd.sock")), 15,
                 f"the control socket of {d.name}", d)
        assert regfs_mounts(d) == []
        assert int(capabilities(d), 16) & (1 << SYS_ADMIN) == 0
    for app in apps:
        p = app.exec("/usr/bin/regfs", "register", f"web-{app.name[-1]}", ":8080", "--check", "http:/")
        assert p.returncode == 0, p.stderr
    a, b = apps
    wait_for(lambda: call(b, "/shared/registry/web-a") == "hello from app-a\n", 15,
             "b calls web-a through the mirror", daemons[1])
    wait_for(lambda: call(a, "/shared/registry/web-b") == "hello from app-b\n", 15,
             "a calls web-b through the mirror", daemons[0])
    # Plain files, seen as such from the host side of the volume too.
    with open(os.path.join(volumes[0], "registry", "web-b")) as f:
        assert f.read().strip() == f"{hosts[1].ip}:8080"
    p = b.exec("/usr/bin/regfs", "get", "web-a")
    assert p.returncode == 0 and p.stdout.strip() == f"{hosts[0].ip}:8080", p
