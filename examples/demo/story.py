#!/usr/bin/python3
"""The regfs demo, end to end: a small Spring-Cloud-shaped system on four hosts with
no fixed port and no load balancer, moved around while clients call it.

    story.py BUILD_DIR OUT_DIR [--seed N]        (run by examples/demo.sh, as root)

Hosts are network namespaces on a bridge (10.78.0.0/24, no default route: nothing leaves
the machine), each with its own regfsd and /registry mount. This script plays the
orchestrator: it starts discovery, config, gateway, user and order, each on a random host
in a shuffled order, each as
    regfs run --name X --port auto --check http:/health --requires ... -- shop.py X
and starts again any that exits (a service whose requirements are not up dies). A client
on every host calls GET /order through the gateway every 50 ms with the calling rule
(examples/clients/client.py). Then the chaos: config moves (started elsewhere, then the
old one stopped), the gateway is killed with kill -9 and started on another host, and a
whole host (its daemon, its services, its client) is killed with kill -9 and its services
are started elsewhere. It prints a table and draws OUT_DIR/timeline.png.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
BRIDGE = "br-regfs-demo"
SUBNET = "10.78.0"
HOSTS = 4
GOSSIP_PORT = 7946
SERVICES = ("discovery", "config", "gateway", "user", "order")
REQUIRES = {"discovery": [], "config": ["discovery"], "gateway": ["discovery", "config"],
            "user": ["discovery", "config"], "order": ["discovery", "config", "user"]}
NEEDED = ("gateway", "order", "user")  # on the path of every call
INTERVAL = 0.05
MAX_STARTS = 40  # per task: an orchestrator's restart budget

T0 = time.time()


def say(msg):
    print(f"\033[1m[demo {time.time() - T0:6.2f}s]\033[0m {msg}", flush=True)


def sh(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"demo: {' '.join(cmd)}: {p.stderr.strip()}")
    return p


def wait_until(pred, seconds, step=0.02):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def descendants(pid):
    """pid and every process below it (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def kill9(pid):
    for p in descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Events:
    """What happened when: (time, kind, service, host, detail)."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def add(self, kind, service, host, detail="", t=None):
        with self.lock:
            self.items.append((t or time.time(), kind, service, host, detail))

    def of(self, kind, service=None):
        with self.lock:
            return [e for e in self.items if e[1] == kind and (service is None or e[2] == service)]


class Host:
    def __init__(self, n, work, build):
        self.n, self.name, self.ip = n, f"rd{n}", f"{SUBNET}.1{n}"
        self.dir = os.path.join(work, self.name)
        self.mount = os.path.join(self.dir, "registry")
        self.build = build
        self.daemon = None
        self.alive = True

    def enter(self):
        return ["nsenter", f"--net=/run/netns/{self.name}"]

    def up(self, key):
        sh("ip", "netns", "del", self.name, check=False)
        wait_until(lambda: sh("ip", "link", "show", f"v{self.name}", check=False).returncode != 0, 5)
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", f"v{self.name}", "type", "veth", "peer", "name", "eth0", "netns", self.name)
        sh("ip", "link", "set", f"v{self.name}", "master", BRIDGE, "up")
        sh(*self.enter(), "ip", "addr", "add", f"{self.ip}/24", "dev", "eth0")
        sh(*self.enter(), "ip", "link", "set", "eth0", "up")
        sh(*self.enter(), "ip", "link", "set", "lo", "up")
        os.makedirs(self.dir, exist_ok=True)
        joins = [a for i in range(1, HOSTS + 1) for a in ("--join", f"{SUBNET}.1{i}:{GOSSIP_PORT}")]
        self.daemon = subprocess.Popen(
            [*self.enter(), os.path.join(self.build, "daemon/app/regfsd"), "--mount", self.mount,
             "--state-dir", os.path.join(self.dir, "state"), "--node-name", self.name,
             "--bind", f"{self.ip}:{GOSSIP_PORT}", "--advertise", self.ip, "--key-file", key,
             "--reap-after", "5s", "--log-level", "warn", *joins],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "regfsd.log"), "w"))

    def members(self):
        try:
            with open(os.path.join(self.mount, ".status.json")) as f:
                return sum(m["state"] == "alive" for m in json.load(f)["members"])
        except (OSError, ValueError):
            return 0


class Task:
    """One service placed on one host, started again whenever it exits (until stopped)."""

    def __init__(self, service, host, regfs, events):
        self.service, self.host, self.regfs, self.events = service, host, regfs, events
        self.proc = None
        self.stopped = False
        self.starts = 0
        self.log = open(os.path.join(host.dir, f"{service}.log"), "a")
        self.thread = threading.Thread(target=self.supervise, daemon=True)

    def command(self):
        cmd = [*self.host.enter(), self.regfs, "--mount", self.host.mount, "run", "--name", self.service,
               "--port", "auto", "--check", "http:/health"]
        if REQUIRES[self.service]:
            cmd += ["--requires", ",".join(REQUIRES[self.service]), "--requires-timeout", "1"]
        return cmd + ["--", PY, os.path.join(HERE, "shop.py"), self.service, "--mount", self.host.mount]

    def supervise(self):
        while not self.stopped and self.starts < MAX_STARTS and self.host.alive:
            self.starts += 1
            self.events.add("start", self.service, self.host.name)
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True)
            for line in self.proc.stderr:  # regfs run says when the check passed and it registered
                self.log.write(f"{time.time():.3f} {line}")
                self.log.flush()
                if "run: registered" in line:
                    self.events.add("ready", self.service, self.host.name, line.split()[-1])
            code = self.proc.wait()
            if self.stopped or not self.host.alive:
                return
            why = {5: "what it requires is not up"}.get(code, f"exit {code}")
            say(f"  {self.service} on {self.host.name} exited ({why}); the orchestrator starts it again")
            time.sleep(0.2)

    def start(self):
        self.thread.start()
        return self

    def kill(self):
        """kill -9 of regfs run and the service under it, as a crash would."""
        self.stopped = True
        if self.proc is not None:
            kill9(self.proc.pid)

    def stop(self):
        """SIGTERM: regfs run forwards it, the service ends, run removes its instance."""
        self.stopped = True
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                kill9(self.proc.pid)
        self.thread.join(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("DEMO_SEED", random.randrange(10**6))))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    regfs = os.path.join(a.build, "daemon/cli/regfs")
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="regfs-demo-")
    os.chmod(work, 0o755)
    events = Events()
    hosts, tasks, clients = [], {}, {}

    def teardown():
        for t in tasks.values():
            t.stopped = True
            if t.proc is not None:
                kill9(t.proc.pid)
        for c in clients.values():
            kill9(c.pid)
        for h in hosts:
            if h.daemon is not None:
                kill9(h.daemon.pid)
                h.daemon.wait()
            subprocess.run(["fusermount3", "-uz", h.mount], stderr=subprocess.DEVNULL)
            sh("ip", "netns", "del", h.name, check=False)
        sh("ip", "link", "del", BRIDGE, check=False)
        shutil.rmtree(work, ignore_errors=True)

    try:
        say(f"seed {a.seed} (DEMO_SEED={a.seed} examples/demo.sh replays the same placements)")
        sh("ip", "link", "del", BRIDGE, check=False)
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        key = os.path.join(work, "key")
        with open(key, "w") as f:
            f.write(sh(regfs, "keygen").stdout)
        for n in range(1, HOSTS + 1):
            h = Host(n, work, a.build)
            h.up(key)
            hosts.append(h)
        if not wait_until(lambda: all(h.members() == HOSTS for h in hosts), 20, 0.1):
            raise SystemExit("demo: the four daemons did not form one cluster")
        say(f"{HOSTS} hosts ({', '.join(f'{h.name}={h.ip}' for h in hosts)}), one regfsd each, one cluster")

        def place(service, host):
            tasks[service] = Task(service, host, regfs, events).start()

        def wait_ready(service, host, since, seconds=15):
            ok = wait_until(lambda: any(e[3] == host.name and e[0] >= since
                                        for e in events.of("ready", service)), seconds)
            if not ok:
                raise SystemExit(f"demo: {service} did not come up on {host.name}; see {host.dir}/{service}.log")

        order = list(SERVICES)
        rng.shuffle(order)
        say("starting, in this shuffled order, each on a random host: " + ", ".join(order))
        begin = time.time()
        for service in order:
            host = rng.choice(hosts)
            say(f"  regfs run --name {service} --port auto --check http:/health"
                f"{' --requires ' + ','.join(REQUIRES[service]) if REQUIRES[service] else ''}"
                f" -- shop.py {service}   on {host.name}")
            place(service, host)
            time.sleep(0.3)
        for service in SERVICES:
            wait_ready(service, tasks[service].host, begin, 30)
        for e in sorted(events.of("ready"), key=lambda e: e[0]):
            say(f"  {e[2]:9} passed its check on {e[3]} at {e[4]:17} ({e[0] - begin:5.2f} s after the first start)")

        seconds = 20
        say(f"a client on every host calls GET /order through the gateway every 50 ms for {seconds} s")
        start = time.time()
        for h in hosts:
            clients[h.name] = subprocess.Popen(
                [*h.enter(), PY, os.path.join(ROOT, "examples/clients/client.py"), "--mount", h.mount,
                 "--seconds", str(seconds), "--interval", str(INTERVAL),
                 "--trace", os.path.join(h.dir, "calls.jsonl"), "gateway", "/order"],
                stdout=open(os.path.join(h.dir, "client.log"), "w"), stderr=subprocess.STDOUT)

        def at(offset):
            delay = start + offset - time.time()
            if delay > 0:
                time.sleep(delay)

        def other_host(*avoid):
            return rng.choice([h for h in hosts if h.alive and h not in avoid])

        at(3)
        old = tasks["config"]
        new_host = other_host(old.host)
        say(f"chaos 1: config moves from {old.host.name} to {new_host.name} "
            f"(started there first, then the old one stopped)")
        events.add("move", "config", new_host.name, f"from {old.host.name}")
        t = time.time()
        place("config", new_host)
        wait_ready("config", new_host, t)
        old.stop()
        events.add("stopped", "config", old.host.name)

        at(7)
        old = tasks["gateway"]
        new_host = other_host(old.host)
        say(f"chaos 2: kill -9 the gateway (and its regfs run) on {old.host.name}; "
            f"the orchestrator starts it on {new_host.name}")
        events.add("kill", "gateway", old.host.name)
        old.kill()
        place("gateway", new_host)

        at(12)
        victim = tasks["order"].host
        moving = [s for s, t in tasks.items() if t.host is victim]
        say(f"chaos 3: kill -9 host {victim.name}: its regfsd, its client and {', '.join(moving)}; "
            f"they start elsewhere")
        events.add("hostkill", "", victim.name, ",".join(moving))
        victim.alive = False
        for s in moving:
            events.add("kill", s, victim.name)
            tasks[s].kill()
        kill9(clients[victim.name].pid)
        kill9(victim.daemon.pid)
        for s in moving:
            place(s, other_host(victim))

        for name, c in clients.items():
            c.wait(seconds + 30)
        say("the clients are done")
        placements = ", ".join(f"{s} on {t.host.name}" for s, t in tasks.items())
        say(f"where everything runs now: {placements}")
        starts = {s: sum(1 for e in events.of("start", s)) for s in SERVICES}
        result = analyse(hosts, events, start, seconds)
        result["seed"], result["starts"] = a.seed, starts
        with open(os.path.join(a.out, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
        print_table(result)
        draw(result, os.path.join(a.out, "timeline.png"))
        say(f"timeline: {os.path.join(a.out, 'timeline.png')}; numbers: {os.path.join(a.out, 'result.json')}")
        return 0 if result["outside"] == 0 else 1
    finally:
        teardown()


def analyse(hosts, events, start, seconds):
    """Calls per host, outage windows, and which failures fall outside them."""
    calls = {}
    for h in hosts:
        path = os.path.join(h.dir, "calls.jsonl")
        rows = []
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    try:
                        rows.append(json.loads(line))
                    except ValueError:  # the last line of a client killed mid-write
                        pass
        calls[h.name] = rows
    # A move: from the moment a service lost its live instance (a kill, or the old
    # instance's stop) to the moment its new instance passed its check (regfs run's
    # "registered"). Its window counts only for a service on the path of every call.
    moves = []
    for when, kind, service, host, detail in sorted(events.of("kill") + events.of("move"), key=lambda e: e[0]):
        ready = min((e[0] for e in events.of("ready", service) if e[0] > when), default=None)
        if kind == "move":  # started elsewhere first: the old one stopped after the new one was up
            stopped = min((e[0] for e in events.of("stopped", service) if e[0] > when), default=when)
            moves.append({"service": service, "chaos": f"{service} moved {detail} to {host}", "at": when,
                          "from": stopped, "ready": ready, "window": False,
                          "outage": max(0.0, ready - stopped) if ready else None})
        else:
            what = f"host {host} killed" if events.of("hostkill") and any(
                e[3] == host and abs(e[0] - when) < 0.5 for e in events.of("hostkill")) else f"{service} killed on {host}"
            moves.append({"service": service, "chaos": what, "at": when, "from": when, "ready": ready,
                          "window": service in NEEDED, "outage": ready - when if ready else None})
    windows = [(m["from"], m["ready"] or float("inf")) for m in moves if m["window"]]

    def in_window(c):
        return any(c["start"] <= b and c["end"] >= a for a, b in windows)

    failed = [(h, c) for h, rows in calls.items() for c in rows if not c["ok"]]
    outside = [(h, c) for h, c in failed if not in_window(c)]
    # One row per chaos event: the calls that failed from it until the next one, and
    # the recovery: from the last needed service's new instance passing its check
    # until every client's calls succeed again (the end of each one's first good call
    # after its last failure).
    chaos = []
    for m in moves:
        if not chaos or chaos[-1]["chaos"] != m["chaos"]:
            chaos.append({"chaos": m["chaos"], "at": m["at"], "moves": []})
        chaos[-1]["moves"].append(m)
    for i, c in enumerate(chaos):
        until = chaos[i + 1]["at"] if i + 1 < len(chaos) else float("inf")
        needed = [m for m in c["moves"] if m["window"]]
        c["failed"] = sum(1 for _, x in failed if c["at"] <= x["start"] < until)
        c["late"] = 0
        c["after_100ms"] = 0
        c["recovery"] = None
        if not needed or any(m["ready"] is None for m in needed):
            continue
        ready = max(m["ready"] for m in needed)
        c["late"] = sum(1 for _, x in failed if x["end"] > ready and x["start"] < until and not in_window(x))
        # The target of the calling rule: a call that starts 100 ms after the new
        # instance passed its check succeeds (its re-read, if it needs one, finds it).
        c["after_100ms"] = sum(1 for _, x in failed if ready + 0.1 < x["start"] < until)
        worst = 0.0
        for rows in calls.values():
            span = [x for x in rows if x["end"] > c["at"] and x["start"] < until]
            last_fail = max([ready] + [x["end"] for x in span if not x["ok"]])
            first_ok = min((x["end"] for x in span if x["ok"] and x["end"] >= last_fail), default=None)
            if first_ok is not None:  # None: this host's client was killed
                worst = max(worst, first_ok - ready)
        c["recovery"] = worst
    return {
        "start": start, "seconds": seconds,
        "calls": {h: len(rows) for h, rows in calls.items()},
        "failed_by_host": {h: sum(1 for c in rows if not c["ok"]) for h, rows in calls.items()},
        "total": sum(len(r) for r in calls.values()), "failed": len(failed), "outside": len(outside),
        "outside_calls": [{"host": h, **c} for h, c in outside],
        "moves": moves, "chaos": chaos, "trace": calls,
        "events": [list(e) for e in sorted(events.items, key=lambda e: e[0])],
    }


def print_table(r):
    say("results")
    print(f"  calls {r['total']}, failed {r['failed']}, failed outside the outage windows {r['outside']}")
    print("  per client: " + ", ".join(f"{h} {n} calls, {r['failed_by_host'][h]} failed"
                                        for h, n in r["calls"].items()))
    print()
    print(f"  {'chaos':30} {'service':10} {'outage':>8} {'failed calls':>13} {'of them late':>13}"
          f" {'after +100 ms':>14} {'recovery':>9}")
    for c in r["chaos"]:
        for i, m in enumerate(c["moves"]):
            outage = f"{m['outage'] * 1000:.0f} ms" if m["outage"] is not None else "never up"
            last = i == len(c["moves"]) - 1
            failed = str(c["failed"]) if last else ""
            late = str(c["late"]) if last else ""
            after = str(c.get("after_100ms", 0)) if last else ""
            recovery = (f"{c['recovery'] * 1000:.0f} ms" if c["recovery"] is not None else "-") if last else ""
            print(f"  {c['chaos'] if i == 0 else '':30} {m['service']:10} {outage:>8} {failed:>13} {late:>13}"
                  f" {after:>14} {recovery:>9}"
                  f"{'' if m['window'] else '   (not on the call path)'}")
    print()
    print("  outage: from the kill (or the old instance's stop) until the new instance passed its check")
    print("  late: failed although every service on the call path had passed its check again")
    print("  after +100 ms: failed calls that started more than 100 ms after that (target: none)")
    print("  recovery: from the last needed new instance passing its check until every client's calls")
    print("  succeed again (the end of its first good call after its last failure; calls are 50 ms apart)")
    for c in r["outside_calls"][:10]:
        print(f"  failed outside a window: client on {c['host']} at {c['start'] - r['start']:.2f} s: {c['error']}")


def draw(r, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = r["start"]
    hosts = list(r["calls"])
    fig, ax = plt.subplots(figsize=(11, 4.2))
    for i, h in enumerate(hosts):
        rows = r["trace"][h]
        ok = [c["start"] - t0 for c in rows if c["ok"]]
        bad = [c["start"] - t0 for c in rows if not c["ok"]]
        ax.scatter(ok, [i] * len(ok), marker="|", s=90, color="tab:green", linewidths=1)
        ax.scatter(bad, [i] * len(bad), marker="x", s=40, color="tab:red", linewidths=1.5)
    colors = {"gateway": "tab:orange", "order": "tab:purple", "user": "tab:brown",
              "config": "tab:blue", "discovery": "tab:gray"}
    for i, m in enumerate(r["moves"]):
        a = m["from"] - t0
        b = (m["ready"] or m["from"]) - t0
        if m["window"]:
            ax.axvspan(a, max(b, a + 0.01), color=colors[m["service"]], alpha=0.25)
        ax.axvline(a, color=colors[m["service"]], lw=1)
        ax.axvline(b, color=colors[m["service"]], lw=1, ls=":")
        outage = f"{m['outage'] * 1000:.0f} ms" if m["outage"] is not None else "never up"
        ax.text(a, len(hosts) - 0.5 + 0.28 * (i % 4), f" {m['service']}: {outage} to a new instance",
                fontsize=7, color=colors[m["service"]], va="bottom")
    for e in r["events"]:
        if e[1] == "hostkill":
            ax.axvline(e[0] - t0, color="black", lw=2)
            ax.text(e[0] - t0, -0.75, f" host {e[3]} killed (kill -9)", fontsize=8)
    ax.set_yticks(range(len(hosts)), [f"client on {h}" for h in hosts])
    ax.set_ylim(-0.9, len(hosts) + 0.7)
    ax.set_xlim(0, r["seconds"])
    ax.set_xlabel("seconds since the clients started    | call ok   x call failed   shaded: a service on the "
                  "call path had no live instance (solid line: gone, dotted: new one passed its check)", fontsize=8)
    ax.set_title(f"regfs demo: {r['total']} calls through the gateway, {r['failed']} failed, "
                 f"{r['outside']} outside the outage windows")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
