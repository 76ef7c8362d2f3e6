"""Five daemons in five network namespaces, read and written through their mounts."""
import errno
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import PORT, REGFS, Host, wait_until


def visible(h, service, endpoint):
    try:
        return endpoint in h.read(".all", service).split()
    except OSError:
        return False


def gone(h, service, endpoint):
    try:
        return endpoint not in h.read(".all", service).split()
    except OSError as e:
        return e.errno in (errno.ENOENT, errno.EHOSTDOWN)


def all_alive(hosts, names):
    return all(all(h.members().get(n) == "alive" for n in names) for h in hosts)


def test_registration_spreads_to_every_node(cluster):
    hosts = cluster(5)
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    endpoint = "10.77.0.11:8080"
    started = time.monotonic()
    hosts[0].write("web", f"{endpoint} check=none\n")
    for h in hosts:
        assert wait_until(lambda: visible(h, "web", endpoint), 5), h.name
    assert time.monotonic() - started < 5
    # Removal spreads too, and only the owner may remove.
    with pytest.raises(PermissionError):
        os.unlink(hosts[2].path("web"))
    os.unlink(hosts[0].path("web"))
    for h in hosts:
        assert wait_until(lambda: gone(h, "web", endpoint), 5), h.name


def test_health_is_checked_across_the_network(cluster):
    hosts = cluster(3)
    server = subprocess.Popen(["nsenter", f"--net=/run/netns/{hosts[0].name}", "python3", "-m",
                               "http.server", "8080", "--bind", hosts[0].ip],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        hosts[0].write("web", f"{hosts[0].ip}:8080 check=http:/\n")
        assert wait_until(lambda: _read_ok(hosts[2], "web") == f"{hosts[0].ip}:8080\n", 10)
        server.kill()
        server.wait()
        assert wait_until(lambda: _errno(hosts[2], "web") == errno.EHOSTDOWN, 10)
    finally:
        server.kill()


def _read_ok(h, service):
    try:
        return h.read(service)
    except OSError:
        return None


def _errno(h, service):
    try:
        h.read(service)
        return 0
    except OSError as e:
        return e.errno


def test_kill_9_removes_a_nodes_instances_and_restart_brings_them_back(cluster):
    hosts = cluster(5)
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    victim = hosts[4]
    victim.write("api", f"{victim.ip}:9000 check=none\n")
    for h in hosts[:4]:
        assert wait_until(lambda: visible(h, "api", f"{victim.ip}:9000"), 5)
    victim.stop(signal.SIGKILL)
    started = time.monotonic()
    for h in hosts[:4]:
        assert wait_until(lambda: gone(h, "api", f"{victim.ip}:9000"), 15), h.name
    detected = time.monotonic() - started
    assert all(h.members()["rf5"] == "dead" for h in hosts[:4])
    victim.start(os.path.join(os.path.dirname(victim.dir), "key"), [f"{hosts[0].ip}:{PORT}"])
    for h in hosts[:4]:
        assert wait_until(lambda: visible(h, "api", f"{victim.ip}:9000"), 10), h.name
    print(f"killed node's instances gone everywhere after {detected:.2f} s")


def test_partition_heals_and_nothing_removed_comes_back(cluster):
    hosts = cluster(5)
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    a, b = hosts[:3], hosts[3:]
    hosts[0].write("keep", f"{hosts[0].ip}:1 check=none\n")
    hosts[4].write("gone", f"{hosts[4].ip}:2 check=none\n")
    for h in hosts:
        assert wait_until(lambda: visible(h, "gone", f"{hosts[4].ip}:2"), 5)
    for h in a:
        h.isolate(b)
    for h in b:
        h.isolate(a)
    # Changes on both sides while apart.
    os.unlink(hosts[4].path("gone"))
    hosts[1].write("left-side", f"{hosts[1].ip}:3 check=none\n")
    hosts[3].write("right-side", f"{hosts[3].ip}:4 check=none\n")
    assert wait_until(lambda: gone(hosts[3], "gone", f"{hosts[4].ip}:2"), 5)
    time.sleep(2)
    for h in hosts:
        h.heal()
    healed = time.monotonic()
    assert wait_until(lambda: all_alive(hosts, names), 60)
    for h in hosts:
        assert wait_until(lambda: visible(h, "left-side", f"{hosts[1].ip}:3"), 60), h.name
        assert wait_until(lambda: visible(h, "right-side", f"{hosts[3].ip}:4"), 60), h.name
        assert wait_until(lambda: visible(h, "keep", f"{hosts[0].ip}:1"), 60), h.name
        assert wait_until(lambda: gone(h, "gone", f"{hosts[4].ip}:2"), 60), h.name
    print(f"converged {time.monotonic() - healed:.1f} s after the partition healed")


def test_packet_loss_causes_no_false_deaths(cluster):
    hosts = cluster(5)
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    for h in hosts:
        h.lossy(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for h in hosts:
            states = h.members()
            assert all(states[n] in ("alive", "suspect") for n in names), (h.name, states)
        time.sleep(0.5)
    for h in hosts:
        h.heal()


def test_a_node_with_the_wrong_key_can_neither_join_nor_inject(cluster):
    hosts = list(cluster(3))
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    stranger = Host(6, cluster.base)
    stranger.up()
    cluster.hosts.append(stranger)
    bad_key = os.path.join(cluster.base, "bad-key")
    with open(bad_key, "w") as f:
        f.write(subprocess.run([REGFS, "keygen"], capture_output=True, text=True, check=True).stdout)
    stranger.start(bad_key, [f"{hosts[0].ip}:{PORT}"])
    stranger.write("evil", f"{stranger.ip}:6666 check=none\n")
    time.sleep(3)
    for h in hosts:
        assert "rf6" not in h.members()
        assert _errno(h, "evil") == errno.ENOENT
    assert set(stranger.members()) == {"rf6"}
    assert hosts[0].metric("regfs_net_auth_failures_total") > 0


def test_join_through_a_shared_directory(cluster):
    """file:DIR: each daemon keeps a file with its gossip address there."""
    shared = os.path.join(cluster.base, "shared")
    hosts = [Host(i, cluster.base) for i in (7, 8, 9)]
    for h in hosts:
        h.up()
        cluster.hosts.append(h)
    for h in hosts:
        h.start(cluster.key, [f"file:{shared}"])
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 20)
    assert sorted(os.listdir(shared)) == names
    hosts[0].write("via-file", f"{hosts[0].ip}:1 check=none\n")
    for h in hosts:
        assert wait_until(lambda: visible(h, "via-file", f"{hosts[0].ip}:1"), 5), h.name
    # A daemon that leaves removes its file.
    hosts[2].stop(signal.SIGTERM)
    assert wait_until(lambda: sorted(os.listdir(shared)) == names[:2], 5)


def test_join_through_dns(cluster):
    """dns:NAME: every address the name resolves to is a seed. A dnsmasq on the
    bridge address answers for the name with two of the cluster's hosts."""
    hosts = list(cluster(2))
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    dns = subprocess.Popen(
        ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
         "--bind-interfaces", f"--listen-address={hosts[0].ip.rsplit('.', 1)[0]}.1",
         "--port=53", f"--host-record=seeds.regfs.test,{hosts[0].ip}",
         f"--host-record=seeds.regfs.test,{hosts[1].ip}", "--user=root", "--pid-file="],
        stderr=subprocess.PIPE)
    newcomer = Host(9, cluster.base)
    etc = f"/etc/netns/{newcomer.name}"
    try:
        newcomer.up()
        cluster.hosts.append(newcomer)
        os.makedirs(etc, exist_ok=True)
        with open(f"{etc}/resolv.conf", "w") as f:
            f.write(f"nameserver {hosts[0].ip.rsplit('.', 1)[0]}.1\n")
        newcomer.start(cluster.key, ["dns:seeds.regfs.test"], own_mounts=True)
        everyone = hosts + [newcomer]
        assert wait_until(lambda: all_alive(everyone, names + [newcomer.name]), 15)
        newcomer.write("via-dns", f"{newcomer.ip}:1 check=none\n")
        for h in hosts:
            assert wait_until(lambda: visible(h, "via-dns", f"{newcomer.ip}:1"), 5), h.name
    finally:
        dns.terminate()
        dns.wait()
        shutil.rmtree(etc, ignore_errors=True)


def test_63_character_node_names(cluster):
    # The DNS label limit, which container host names and pod names often
    # reach: each frame's header carries the sender's name, and an entry as
    # large as gossip takes must still fit one datagram with it.
    hosts = []
    for i in range(1, 4):
        h = Host(i, cluster.base)
        h.up()
        cluster.hosts.append(h)
        hosts.append(h)
    seed = f"{hosts[0].ip}:{PORT}"
    names = [(h.name + "-" + "x" * 63)[:63] for h in hosts]
    for h, name in zip(hosts, names):
        h.start(cluster.key, [seed], "--node-name", name)
    assert wait_until(lambda: all_alive(hosts, names), 15)
    # 79 instances: an entry of 1266 bytes, which the rumor budget of a short
    # name took for gossip and a datagram with this header cannot carry.
    lines = "".join(f"10.77.0.11:{10000 + i} check=none\n" for i in range(79))
    hosts[0].write("big", lines)
    for h in hosts:
        assert wait_until(lambda: visible(h, "big", "10.77.0.11:10078"), 5), h.name
        assert h.metric("regfs_cluster_bad_frames_total") == 0, h.name


def test_a_partition_longer_than_death_heals_fast_and_resurrects_nothing(cluster):
    """{1,2} and {3,4,5} cut apart for 10 s with the daemon's defaults: each
    side declares the other dead; node 1 removes `to-remove` and registers
    `near-side`, node 4 registers `far-side`. After the heal every node is
    read every 50 ms for 30 s: no read of `to-remove` may succeed, and every
    node must see both sides' registrations within 10 s."""
    hosts = cluster(5)
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    a, b = hosts[:2], hosts[2:]
    hosts[0].write("to-remove", f"{hosts[0].ip}:1 check=none\n")
    for h in hosts:
        assert wait_until(lambda: visible(h, "to-remove", f"{hosts[0].ip}:1"), 5), h.name
    for h in a:
        h.isolate(b)
    for h in b:
        h.isolate(a)
    cut = time.monotonic()

    def declared_dead(h, others):
        states = h.members()
        return all(states.get(o.name) == "dead" for o in others)

    for h in a:
        assert wait_until(lambda: declared_dead(h, b), 20), h.name
    for h in b:
        assert wait_until(lambda: declared_dead(h, a), 20), h.name
    os.unlink(hosts[0].path("to-remove"))
    hosts[0].write("near-side", f"{hosts[0].ip}:2 check=none\n")
    hosts[3].write("far-side", f"{hosts[3].ip}:3 check=none\n")
    # The partition itself lasts 10 s (a fault's length, not a wait).
    while time.monotonic() - cut < 10:
        time.sleep(0.1)
    # Timed from the start of the heal: taking the rules away from five
    # namespaces takes a while, and traffic flows from the first one on.
    healed = time.monotonic()
    for h in hosts:
        h.heal()
    resurrected = []
    merged = {}
    while time.monotonic() - healed < 30:
        now = time.monotonic() - healed
        for h in hosts:
            try:
                resurrected.append((h.name, round(now, 2), h.read("to-remove").strip()))
            except OSError as e:
                assert e.errno == errno.ENOENT, (h.name, e)
            if h.name not in merged and visible(h, "near-side", f"{hosts[0].ip}:2") \
                    and visible(h, "far-side", f"{hosts[3].ip}:3"):
                merged[h.name] = now
        time.sleep(0.05)
    print(f"merged after the heal: {sorted(merged.items())}; "
          f"worst {max(merged.values()) if merged else None:.2f} s")
    assert resurrected == [], f"removed registration served again: {resurrected[:10]}"
    assert set(merged) == set(names), f"never merged: {set(names) - set(merged)}"
    assert max(merged.values()) <= 10, merged


def _keygen():
    return subprocess.run([REGFS, "keygen"], capture_output=True, text=True, check=True).stdout


def test_keys_rotate_live_with_no_false_death_and_no_lost_registration(cluster):
    """The procedure of docs/SECURITY.md on five running daemons, one SIGHUP at a
    time: the new key second everywhere, then first everywhere, then the old one
    dropped. Throughout, every node reads every node's registration and holds
    every member alive, and no frame fails authentication. A node that takes a
    key the others do not know (the wrong order) is caught by the same counters."""
    hosts = cluster(5)
    names = [h.name for h in hosts]
    assert wait_until(lambda: all_alive(hosts, names), 15)
    for h in hosts:
        h.write(f"svc-{h.name}", f"{h.ip}:80 check=none\n")
    for h in hosts:
        assert wait_until(lambda: all(visible(h, f"svc-{n}", f"10.77.0.{10 + i}:80")
                                      for i, n in enumerate(names, 1)), 10), h.name

    failures = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for h in hosts:
                for i, n in enumerate(names, 1):
                    if not visible(h, f"svc-{n}", f"10.77.0.{10 + i}:80"):
                        failures.append((h.name, f"svc-{n}"))
                states = h.members()
                failures.extend((h.name, m, s) for m, s in states.items() if s != "alive")
            stop.wait(0.05)

    auth_before = sum(h.metric("regfs_net_auth_failures_total") for h in hosts)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with open(cluster.key) as f:
            old = f.read().strip()
        new = _keygen().strip()
        for step, ring in enumerate(([old, new], [new, old], [new]), 1):
            with open(cluster.key, "w") as f:
                f.write("\n".join(ring) + "\n")
            for h in hosts:
                h.proc.send_signal(signal.SIGHUP)
                assert wait_until(
                    lambda: h.metric("regfs_net_keyring_reloads_total") == step, 5), h.name
                assert h.metric("regfs_net_keys") == len(ring)
                # Traffic sealed and opened under the new ring before the next host.
                sent = h.metric("regfs_net_packets_out_total")
                assert wait_until(lambda: h.metric("regfs_net_packets_out_total") > sent + 5, 5)
        # A key file that does not load changes nothing.
        with open(cluster.key, "w") as f:
            f.write("not a key\n")
        hosts[0].proc.send_signal(signal.SIGHUP)
        log = os.path.join(hosts[0].dir, "regfsd.log")
        assert wait_until(lambda: "the keyring is unchanged" in open(log).read(), 5)
        assert hosts[0].metric("regfs_net_keyring_reloads_total") == 3
        assert hosts[0].metric("regfs_net_keys") == 1
        sent = hosts[0].metric("regfs_net_packets_out_total")
        assert wait_until(lambda: hosts[0].metric("regfs_net_packets_out_total") > sent + 20, 5)
    finally:
        stop.set()
        watcher.join()
    auth_after = sum(h.metric("regfs_net_auth_failures_total") for h in hosts)
    assert failures == [], failures[:20]
    assert auth_after == auth_before, (auth_before, auth_after)

    # The wrong order: one node seals with a key nobody else holds yet. The
    # others refuse its frames, which the counters show at once.
    with open(cluster.key, "w") as f:
        f.write(_keygen())
    hosts[4].proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: hosts[4].metric("regfs_net_keyring_reloads_total") == 4, 5)
    assert wait_until(lambda: sum(h.metric("regfs_net_auth_failures_total")
                                  for h in hosts[:4]) > auth_after, 10)


def _mark(hosts, pcap, token):
    """Sends `token` towards every host until the capture file holds it from
    each: the capture engine hands packets over in blocks, so a mark that is
    in the file says everything before it on that interface is too."""
    marker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def marked():
        for h in hosts:
            marker.sendto(f"{token} {h.name}".encode(), (h.ip, PORT))
        if not os.path.exists(pcap):
            return False
        with open(pcap, "rb") as f:
            data = f.read()
        return all(f"{token} {h.name}".encode() in data for h in hosts)
    try:
        return wait_until(marked, 20)
    finally:
        marker.close()


def _capture(hosts, pcap):
    """tshark's capture engine (dumpcap, which writes the file) on every host's
    side of its veth (a bridge's own device does not see what it forwards
    between ports), gossip port only; started when a mark is in the file."""
    cmd = ["dumpcap", "-q", "-f", f"port {PORT}", "-w", pcap]
    for h in hosts:
        cmd += ["-i", f"v{h.name}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _mark(hosts, pcap, "capture started") and proc.poll() is None
    return proc


def _story_on_the_wire(hosts, key, secrets, pcap):
    """Starts `hosts` with distinctive node names under a capture, registers
    distinctive services and endpoints, removes one; returns the capture's bytes."""
    nodes, services, endpoints = secrets
    cap = _capture(hosts, pcap)
    try:
        seed = f"{hosts[0].ip}:{PORT}"
        for h, node in zip(hosts, nodes):
            h.start(key, [seed], "--node-name", node)
        assert wait_until(lambda: all(set(nodes) <= {m["name"] for m in h.status()["members"]
                                                     if m["state"] == "alive"} for h in hosts), 15)
        for h, service, endpoint in zip(hosts, services, endpoints):
            h.write(service, f"{endpoint}:5432 check=none\n")
        for h in hosts:
            for service, endpoint in zip(services, endpoints):
                assert wait_until(lambda: visible(h, service, f"{endpoint}:5432"), 10), h.name
        os.unlink(hosts[0].path(services[0]))
        for h in hosts:
            assert wait_until(lambda: gone(h, services[0], f"{endpoints[0]}:5432"), 10), h.name
    finally:
        ended = _mark(hosts, pcap, "capture ends")
        cap.send_signal(signal.SIGTERM)
        cap.wait(20)
        for h in hosts:
            h.stop()
    assert ended, "the capture did not take its end mark"
    frames = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.number"],
                            capture_output=True, text=True, check=True).stdout.split()
    with open(pcap, "rb") as f:
        return len(frames), f.read()


def test_the_wire_shows_no_service_endpoint_or_node_name_in_clear_text(cluster):
    """A capture of the test network while keyed daemons join, register and remove
    holds none of the names, endpoints or node names it carried; the same story
    without a key (--insecure) shows every one, so the search does find them."""
    hosts = []
    for i in (31, 32, 33):
        h = Host(i, cluster.base)
        h.up()
        cluster.hosts.append(h)
        hosts.append(h)
    secrets = ([f"node-quartz-{i}" for i in range(3)],
               [f"ledger-payments-{i}" for i in range(3)],
               [f"db-{i}.vault-internal.example" for i in range(3)])
    words = [w for group in secrets for w in group]

    frames, sealed = _story_on_the_wire(hosts, cluster.key, secrets,
                                        os.path.join(cluster.base, "sealed.pcap"))
    print(f"sealed capture: {frames} frames, {len(sealed)} bytes")
    assert frames >= 30  # the story's traffic is in it
    assert [w for w in words if w.encode() in sealed] == []

    for h in hosts:
        shutil.rmtree(h.state)  # the same story from the start
    frames, clear = _story_on_the_wire(hosts, None, secrets, os.path.join(cluster.base, "clear.pcap"))
    print(f"clear capture: {frames} frames, {len(clear)} bytes")
    missing = [w for w in words if w.encode() not in clear]
    assert missing == [], missing
