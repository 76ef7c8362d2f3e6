"""A damaged or full state directory: a clear message and a defined outcome, never a
crash, a hang or the loss of the other services (docs/INTERFACES.md, The state
directory)."""
import errno
import json
import os
import signal
import subprocess

from conftest import REGFSD, read, write


def own(d):
    services = json.loads(read(d.path(".status.json")))["services"]
    return {name: sorted(i["endpoint"] for i in insts if i["owner"] == "n1")
            for name, insts in services.items()}


def services_dir(d):
    return os.path.join(d.state, "services")


def test_damaged_service_files_are_skipped_with_a_message_and_the_rest_restored(make_daemon):
    d = make_daemon()
    for i in range(3):
        write(d.path(f"good{i}"), f"127.0.0.1:{8000 + i} check=none\n")
    d.stop(signal.SIGKILL)
    sd = services_dir(d)
    with open(os.path.join(sd, "zero"), "w"):
        pass
    with open(os.path.join(sd, "truncated"), "w") as f:
        f.write("127.0.0.1:81 check=none\n127.0.0.1:8")  # cut inside its second line
    with open(os.path.join(sd, "garbage"), "wb") as f:
        f.write(os.urandom(3000).replace(b"\n", b"x"))
    with open(os.path.join(d.base, "elsewhere"), "w") as f:
        f.write("127.0.0.1:82 check=none\n")
    os.symlink(os.path.join(d.base, "elsewhere"), os.path.join(sd, "link"))
    os.mkfifo(os.path.join(sd, "fifo"))  # opening it to read would wait for a writer
    os.mkdir(os.path.join(sd, "adir"))
    d.start()
    got = own(d)
    assert {f"good{i}": [f"127.0.0.1:{8000 + i}"] for i in range(3)}.items() <= got.items()
    assert got["truncated"] == ["127.0.0.1:81"]
    for name in ("zero", "garbage", "link", "fifo", "adir"):
        assert name not in got
    log = d.read_log()
    assert "zero: empty; service zero is not restored" in log
    assert "truncated ends inside a line (truncated)" in log
    assert "service garbage is not restored" in log
    assert "service link is not restored" in log
    assert "service fifo is not restored" in log
    assert "service adir is not restored" in log
    # A damaged service is registered again by a write, as any other.
    write(d.path("garbage"), "127.0.0.1:83 check=none")
    assert own(d)["garbage"] == ["127.0.0.1:83"]


def test_a_damaged_generation_file_gives_way_to_the_clock(make_daemon):
    d = make_daemon()
    write(d.path("web"), "127.0.0.1:8000 check=none")
    before = json.loads(read(d.path(".status.json")))["generation"]
    gen = os.path.join(d.state, "generation")
    for damage in (b"", b"garbage\n", b"-5\n", b"12\x0034\n"):
        d.stop(signal.SIGKILL)
        with open(gen, "wb") as f:
            f.write(damage)
        d.start()
        status = json.loads(read(d.path(".status.json")))
        assert status["generation"] >= before, damage
        assert own(d)["web"] == ["127.0.0.1:8000"]
        assert int(read(gen)) == status["generation"]  # recorded again, whole
        if damage:
            assert "holds no generation" in d.read_log(), damage
    # The last generation there is (or beyond) cannot be followed: the start
    # fails with a message naming the file, and changes nothing.
    for last in (b"18446744073709551615\n", b"99999999999999999999999\n"):
        d.stop(signal.SIGKILL)
        with open(gen, "wb") as f:
            f.write(last)
        r = subprocess.run([REGFSD, "--mount", d.mount, "--state-dir", d.state, "--node-name", "n1",
                            "--advertise", "127.0.0.1", "--bind", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r.stderr
        assert "holds the last generation there is" in r.stderr
        assert read(gen).encode() == last
        os.unlink(gen)
        d.start()
        assert own(d)["web"] == ["127.0.0.1:8000"]
    # Leftover temp files of the generation's replacement are removed at start.
    d.stop(signal.SIGKILL)
    for leftover in (".generation.tmp", ".generation.old"):
        with open(os.path.join(d.state, leftover), "w") as f:
            f.write("1\n")
    d.start()
    assert not any(os.path.exists(os.path.join(d.state, n))
                   for n in (".generation.tmp", ".generation.old"))


def test_a_full_state_disk_refuses_writes_keeps_the_rest_and_still_restarts(make_daemon):
    d = make_daemon()
    d.stop(signal.SIGKILL)
    subprocess.run(["umount", "-l", d.mount], stderr=subprocess.DEVNULL)
    state = d.state
    os.makedirs(state, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k,mode=0700", "regfs-test", state],
                   check=True)
    try:
        for name in os.listdir(state):  # start from nothing on the small disk
            subprocess.run(["rm", "-rf", os.path.join(state, name)], check=True)
        d.start()
        written, failed = [], None
        for i in range(200):  # 32 pages of 4 KiB: full well before this
            try:
                write(d.path(f"svc{i}"), f"127.0.0.1:{9000 + i} check=none\n")
                written.append(f"svc{i}")
            except OSError as e:
                failed = (f"svc{i}", e.errno)
                break
        assert failed is not None and failed[1] == errno.EIO, failed
        assert "No space left on device" in d.read_log()
        got = own(d)
        assert sorted(got) == sorted(written)  # the failed write changed nothing
        # An append to a held service fails the same way and keeps what was there.
        try:
            write(d.path(written[0]), "127.0.0.1:1 check=none\n", append=True)
        except OSError as e:
            assert e.errno == errno.EIO
        assert own(d)[written[0]] == [f"127.0.0.1:{9000}"]
        # A restart on the full disk serves everything written (its new generation
        # cannot be recorded; it says so, and the clock keeps the next one higher).
        d.stop(signal.SIGKILL)
        d.start()
        assert sorted(own(d)) == sorted(written)
        assert "is not recorded" in d.read_log()
        # Once there is room again, writes succeed.
        os.unlink(os.path.join(state, "services", written[-1]))
        os.unlink(os.path.join(state, "services", written[-2]))
        write(d.path("after"), "127.0.0.1:7000 check=none\n")
        assert own(d)["after"] == ["127.0.0.1:7000"]
    finally:
        d.cleanup()
        subprocess.run(["umount", "-l", state], stderr=subprocess.DEVNULL)
