#!/usr/bin/env python3
"""The demo's services: small real HTTP services that find each other only through
the registry mount, the way a Spring Cloud system would if no port were fixed.

    shop.py ROLE [--mount DIR]        ROLE: discovery, config, gateway, user, order

Each listens on a random port of every address (port 0) and answers GET /health;
`regfs run --port auto` finds that port and registers it. At start each one does what
a Spring Cloud service does before it serves: fetch its settings from config
(everything but discovery and config) and announce itself to discovery (everything
but discovery); when that fails it exits 1, so the orchestrator starts it again.
Then it heartbeats to discovery every second, like a Eureka client.

The request path is gateway -> order -> user: GET /order on the gateway is passed to
order, which asks user for the customer. Every hop follows the calling rule: call the
endpoint you have; if the connection fails or the endpoint answers "not found", read
/registry/<service> again and retry once. A hop that fails twice answers 502 with the
name of the service that failed.
"""
import argparse
import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

ROLES = ("discovery", "config", "gateway", "user", "order")


class Peers:
    """Endpoints of the services this one calls, read from the mount; the calling rule."""

    def __init__(self, mount):
        self.mount = mount
        self.endpoints = {}
        self.lock = threading.Lock()

    def lookup(self, service):
        with open(os.path.join(self.mount, service)) as f:  # a health-checked host:port
            endpoint = f.read().strip()
        with self.lock:
            self.endpoints[service] = endpoint
        return endpoint

    def call(self, service, path, data=None, timeout=1.0):
        """The body of a 2xx answer; raises OSError when the call failed twice."""
        for attempt in (1, 2):
            with self.lock:
                endpoint = self.endpoints.get(service)
            try:
                if endpoint is None or attempt == 2:
                    endpoint = self.lookup(service)
                req = urllib.request.Request(f"http://{endpoint}{path}", data=data)
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return r.read()
            except urllib.error.HTTPError as e:
                if e.code != 404 or attempt == 2:  # only "not found" means a wrong endpoint
                    raise OSError(f"{service} at {endpoint}: http {e.code}") from None
            except OSError as e:
                if attempt == 2:
                    raise OSError(f"{service} at {endpoint}: {e}") from None
        raise AssertionError("unreachable")


class Service:
    def __init__(self, role, mount):
        self.role = role
        self.peers = Peers(mount)
        self.settings = {}
        self.announced = {}  # discovery's table: name -> {endpoint, seen}
        self.orders = 0
        self.lock = threading.Lock()

    # What each role answers; (status, body as a dict).
    def answer(self, path):
        if path == "/health":
            return 200, {"status": "UP", "role": self.role}
        if self.role == "discovery" and path == "/services":
            with self.lock:
                return 200, dict(self.announced)
        if self.role == "config" and path.startswith("/config/"):
            name = path[len("/config/"):]
            return 200, {"name": name, "greeting": f"hello from {name}", "retries": 1}
        if self.role == "user" and path.startswith("/user/"):
            return 200, {"id": path[len("/user/"):], "name": "Ada", "served_by": self.port}
        if self.role == "order" and path == "/order":
            with self.lock:
                self.orders += 1
                n = self.orders
            try:
                user = json.loads(self.peers.call("user", f"/user/{n % 7}"))
            except OSError as e:
                return 502, {"error": str(e), "failed": "user"}
            return 200, {"order": n, "user": user, "served_by": self.port}
        if self.role == "gateway" and path == "/order":
            try:
                return 200, json.loads(self.peers.call("order", "/order"))
            except OSError as e:
                failed = "user" if "user" in str(e) else "order"
                return 502, {"error": str(e), "failed": failed}
        return 404, {"error": "not found"}

    def announce(self, name, endpoint):
        with self.lock:
            self.announced[name] = {"endpoint": endpoint, "seen": time.time()}

    def start(self):
        server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), self.handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        if self.role != "config" and self.role != "discovery":
            self.settings = json.loads(self.peers.call("config", f"/config/{self.role}"))
        if self.role != "discovery":
            self.heartbeat()
            threading.Thread(target=self.heartbeats, daemon=True).start()
        server.serve_forever()

    def heartbeat(self):
        self.peers.call("discovery", f"/register?name={self.role}&port={self.port}", data=b"")

    def heartbeats(self):
        while True:
            time.sleep(1)
            try:
                self.heartbeat()
            except OSError as e:  # discovery is moving; the next beat finds it again
                print(f"{self.role}: heartbeat: {e}", file=sys.stderr, flush=True)

    def handler(self):
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = service.answer(self.path)
                self.reply(status, body)

            def do_POST(self):
                if service.role == "discovery" and self.path.startswith("/register?"):
                    q = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&") if "=" in p)
                    service.announce(q.get("name", "?"), f"{self.client_address[0]}:{q.get('port', '?')}")
                    self.reply(200, {"ok": True})
                else:
                    self.reply(404, {"error": "not found"})

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=ROLES)
    ap.add_argument("--mount", default=os.environ.get("REGFS_MOUNT", "/registry"))
    a = ap.parse_args()
    try:
        Service(a.role, a.mount).start()
    except OSError as e:  # what it needs at start is not there: die, to be started again
        print(f"{a.role}: cannot start: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
