"""Load on regfsd's HTTP face for bench/http.sh: CLIENTS open /v1/events streams that
read everything, one page load per second (the page, then /v1/status, as the browser
does), and one registration change per second through the mount, so that every stream
carries events. Runs until killed; prints what it saw on SIGTERM.

  python3 bench/http_load.py PORT CLIENTS MOUNT_DIR
"""
import signal
import socket
import sys
import threading
import time

port, clients, mount = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
events = [0] * clients
pages = 0
stop = threading.Event()


def stream(i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: bench\r\n\r\n")
    while not stop.is_set():
        data = s.recv(65536)
        if not data:
            break
        events[i] += data.count(b"\ndata: ") + data.startswith(b"data: ")


def get(path):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        while s.recv(65536):
            pass


def report(*_):
    print(f"http_load: {clients} streams, {pages} page loads, events per stream "
          f"min {min(events)} max {max(events)}", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
for i in range(clients):
    threading.Thread(target=stream, args=(i,), daemon=True).start()
n = 0
while True:
    started = time.monotonic()
    get("/")
    get("/v1/status")
    pages += 1
    with open(f"{mount}/bench-churn", "w") as f:
        f.write(f"127.0.0.1:{1000 + n % 2} check=none\n")
    n += 1
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
