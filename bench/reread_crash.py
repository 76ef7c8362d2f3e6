#!/usr/bin/env python3
"""Calls after a crash, with the calling rule, through one daemon's mount.

    reread_crash.py MOUNT [CYCLES]

Each cycle: the service's instance (a loopback TCP server) is killed, a new one is
registered at once (as `regfs run` does once the new instance passed its check),
and 1.5 s pass. Meanwhile a client (this process) calls every 50 ms with the calling
rule (call the endpoint it has, a TCP connect; on failure read the service again and
retry once), and other readers on the node (a shell loop of `cat`, a new process each
read) read the service every 20 ms, which keeps the dead instance's verdict fresh.
Prints one line: cycles, calls, failed calls, those that started after the new instance
was registered, and those that started more than 100 ms after.
"""
import os
import socket
import subprocess
import sys
import threading
import time


class Server:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.endpoint = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.close()

    def kill(self):
        self.sock.close()


def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def main():
    mount = sys.argv[1]
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    path = os.path.join(mount, "crash")
    current = Server()
    with open(path, "w") as f:
        f.write(current.endpoint + "\n")
    others = subprocess.Popen(["bash", "-c", f"while :; do cat {path} >/dev/null 2>&1; sleep 0.02; done"])
    calls, stop = [], threading.Event()

    def lookup():
        with open(path) as f:
            return f.read().strip()

    def call(endpoint):
        host, port = endpoint.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True

    def client():
        endpoint = lookup()
        while not stop.is_set():
            start, ok = time.monotonic(), False
            for attempt in (1, 2):
                try:
                    if attempt == 2:
                        endpoint = lookup()
                    ok = call(endpoint)
                    break
                except OSError:
                    pass
            calls.append((start, ok))
            time.sleep(max(0.0, 0.05 - (time.monotonic() - start)))

    t = threading.Thread(target=client)
    t.start()
    ready = []
    try:
        time.sleep(1.5)
        for _ in range(cycles):
            old, current = current, Server()
            old.kill()
            write(path, f"{current.endpoint}\n")  # returns once every open sees it
            ready.append(time.monotonic())
            time.sleep(1.5)
            write(path, f"-{old.endpoint}\n")
    finally:
        stop.set()
        t.join()
        others.kill()
        others.wait()
    failed = [s for s, ok in calls if not ok]
    after = [s for s in failed if any(r < s < r + 1.5 for r in ready)]
    late = [s for s in failed if any(r + 0.1 < s < r + 1.5 for r in ready)]
    print(f"cycles {cycles} calls {len(calls)} failed {len(failed)} after {len(after)} late {len(late)}")


if __name__ == "__main__":
    main()
