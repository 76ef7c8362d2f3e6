#!/usr/bin/env python3
"""The calling rule, in Python, with no client library:

call the endpoint you have; if the connection fails or the endpoint answers
"not found", read /registry/<service> again and retry once; if that fails, it
has failed.

    client.py [--mount DIR] [--seconds N] [--interval S] [--trace FILE] SERVICE PATH
Prints one line per failed call and a JSON summary at the end; --trace writes one
JSON line per call (wall-clock start and end, ok, re-read, endpoint, error).
"""
import argparse
import json
import time
import urllib.error
import urllib.request


def lookup(mount, service):
    with open(f"{mount}/{service}") as f:  # a health-checked host:port
        return f.read().strip()


def call(endpoint, path):
    with urllib.request.urlopen(f"http://{endpoint}{path}", timeout=2) as r:
        return r.read().decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mount", default="/registry")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--trace")
    ap.add_argument("service")
    ap.add_argument("path")
    a = ap.parse_args()

    trace = open(a.trace, "w", buffering=1) if a.trace else None
    stats = {"calls": 0, "ok": 0, "rereads": 0, "failed": 0, "endpoints": []}
    endpoint = None
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        stats["calls"] += 1
        start, ok, reread, error = time.time(), False, False, None
        for attempt in (1, 2):
            try:
                if endpoint is None or attempt == 2:
                    if attempt == 2:
                        stats["rereads"] += 1
                        reread = True
                    endpoint = lookup(a.mount, a.service)
                    if endpoint not in stats["endpoints"]:
                        stats["endpoints"].append(endpoint)
                call(endpoint, a.path)
                stats["ok"] += 1
                ok = True
                break
            except (OSError, urllib.error.URLError) as e:
                error = str(e)
                if attempt == 2:
                    stats["failed"] += 1
                    print(f"call failed twice: {e}", flush=True)
        if trace:
            trace.write(json.dumps({"start": start, "end": time.time(), "ok": ok, "reread": reread,
                                    "endpoint": endpoint, "error": None if ok else error}) + "\n")
        time.sleep(a.interval)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
