#!/usr/bin/env python3
"""A real HTTP service for the demo: listens on a random port of HOST, registers itself
by writing its endpoint into the registry mount, and answers /hello and /health.   service.py MOUNT NAME [HOST]"""
import http.server
import os
import sys

mount, name = sys.argv[1], sys.argv[2]
host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path not in ("/hello", "/health"):
            self.send_error(404)
            return
        body = f"hello from {name} on port {port} (pid {os.getpid()})\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((host, 0), Handler)
port = server.server_address[1]
# Registering is writing a line: `>` replaces this node's instances of the service.
with open(os.path.join(mount, name), "w") as f:
    f.write(f"{host}:{port} check=http:/health\n")
print(port, flush=True)
server.serve_forever()
