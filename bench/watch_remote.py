"""A change made on another node: how long after the writer's open() on node A a
poll(POLLPRI) waiter on node B's .all/svc wakes, against the propagation time
measured the same run (a reader on B re-reading .all/svc until it shows the
change). The two take turns, one change each, so a noisy stretch of the machine
falls on both. Prints a Markdown table.
  python3 watch_remote.py MOUNT_A MOUNT_B ENDPOINT_1 ENDPOINT_2 ITERATIONS"""
import os
import select
import statistics
import sys
import threading
import time

mount_a, mount_b, ep1, ep2, iterations = sys.argv[1:6]
iterations = int(iterations)
answers = [f"{ep1}\n", f"{ep1}\n{ep2}\n"]  # what .all/svc shows after each change
watched = os.path.join(mount_b, ".all", "svc")


def read_b():
    with open(watched) as f:
        return f.read()


def shows(n):
    """Whether B's .all/svc lists the n-th answer's endpoints (in its own order)."""
    return sorted(read_b().split()) == sorted(answers[n % 2].split())


def change(n):
    """Writes the n-th answer through A; returns the time just before its open()."""
    start = time.perf_counter()
    fd = os.open(os.path.join(mount_a, "svc"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, (answers[n % 2].replace("\n", " check=none\n")).encode())
    os.close(fd)
    return start


def settle(n):
    """Waits (bounded) until B shows the n-th answer, so each turn starts from it."""
    deadline = time.monotonic() + 10
    while not shows(n):
        if time.monotonic() > deadline:
            sys.exit(f"B did not show change {n} within 10 s: it shows {read_b()!r}")
        time.sleep(0.001)


def poll_turn(n):
    fd = os.open(watched, os.O_RDONLY)
    try:
        woke = []
        def wait():
            p = select.poll()
            p.register(fd, select.POLLPRI)
            if p.poll(10_000):
                woke.append(time.perf_counter())
        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.01)  # the waiter is in poll() (a missed wake-up shows as a 10 s outlier)
        start = change(n)
        waiter.join()
        if not woke:
            sys.exit(f"the poll() waiter on B did not wake for change {n} within 10 s")
        return woke[0] - start
    finally:
        os.close(fd)


def read_turn(n):
    start = change(n)
    deadline = time.monotonic() + 10
    while not shows(n):
        if time.monotonic() > deadline:
            sys.exit(f"B did not show change {n} within 10 s: it shows {read_b()!r}")
    return time.perf_counter() - start


settle(0)
woke, seen = [], []
n = 0
for _ in range(iterations):
    for turn, into in ((poll_turn, woke), (read_turn, seen)):
        n += 1
        into.append(turn(n) * 1e3)
        settle(n)


def row(name, values):
    q = statistics.quantiles(values, n=10)
    return f"| {name} | {statistics.median(values):.2f} ms | {q[8]:.2f} ms |"


print(f"Changes made on node A, {iterations} per case, from just before the writer's open():")
print()
print("| on node B | median | p90 |")
print("|---|---|---|")
print(row("poll(POLLPRI) waiter on an open .all/svc wakes", woke))
print(row("a reader re-reading .all/svc sees the change (propagation, reference)", seen))
print()
print(f"median difference: {statistics.median(woke) - statistics.median(seen):+.2f} ms")
