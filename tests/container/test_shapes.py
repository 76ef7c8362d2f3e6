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


def test_task_container(lab):
    """regfsd as the container's entry point, the application beside it
    (`docker exec`): it registers through the mount and reads a service that
    the other host's container registered."""
    h1, h2 = lab.host(), lab.host()
    join = {"REGFS_JOIN": f"{h1.ip}:{PORT}", **KEY}
    a = lab.container("task-a", h1, caps=TASK_CAPS, devices=FUSE, env=KEY)
    b = lab.container("task-b", h2, caps=TASK_CAPS, devices=FUSE, env=join)
    for c in (a, b):
        ready(c, "/registry/.metrics")
    for c, svc in ((a, "web-a"), (b, "web-b")):
        serve(c)
        p = c.exec("/usr/bin/regfs", "register", svc, ":8080", "--check", "http:/")
        assert p.returncode == 0, p.stderr
    # Each reads the other's registration through its own mount and calls it.
    wait_for(lambda: call(a, "/registry/web-b") == "hello from task-b\n", 15, "a calls web-b", a)
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
