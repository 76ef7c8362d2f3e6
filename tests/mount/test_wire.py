"""The gossip port under attack from someone without the key, on loopback.

A keyed daemon is flooded with TCP connections that announce an 8 MiB frame
and send nothing more; its memory is read from /proc and it must keep serving
reads and a second daemon that joins it.
"""
import os
import resource
import socket
import struct
import subprocess

from conftest import REGFS, SANITIZED, gossip_address, memory_kb, read, wait_until, write

CONNECTIONS = int(os.environ.get("REGFS_WIRE_CONNECTIONS", "1000"))
# Under AddressSanitizer the daemon starts at about 75 MB: there the bound is
# on what the connections add to it.
LIMIT_KB = 64 * 1024


def keyring(tmp_path):
    path = tmp_path / "cluster.key"
    key = subprocess.run([REGFS, "keygen"], check=True, capture_output=True, text=True).stdout
    path.write_text(key)
    path.chmod(0o600)
    return str(path)


def test_unauthenticated_connections_hold_no_memory_and_the_daemon_serves(memory_measured, make_daemon, servers,
                                                                         tmp_path):
    key = keyring(tmp_path)
    a = make_daemon("--key-file", key)
    host, port = gossip_address(a).rsplit(":", 1)
    before = memory_kb(a.proc.pid)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, CONNECTIONS + 256)), hard))
    held = []
    try:
        # From 250 source addresses, as a botnet would come, and each
        # announcing the largest frame there is.
        for i in range(CONNECTIONS):
            s = socket.socket()
            s.settimeout(10)
            s.bind((f"127.0.1.{1 + i % 250}", 0))
            s.connect((host, int(port)))
            s.sendall(struct.pack(">I", 8 << 20))
            held.append(s)
        peak = memory_kb(a.proc.pid)

        # Every connection is judged: refused at a limit, or timed out.
        def judged():
            return (a.metric("regfs_net_streams_refused_total")
                    + a.metric("regfs_net_stream_timeouts_total") >= CONNECTIONS)
        limit = before["VmHWM"] + LIMIT_KB if SANITIZED else LIMIT_KB
        wait_until(lambda: judged() or memory_kb(a.proc.pid)["VmHWM"] >= limit, 30)
        after = memory_kb(a.proc.pid)
        print(f"{CONNECTIONS} connections: before {before}, right after {peak}, "
              f"when judged {after} (kB)")
        assert after["VmHWM"] < limit, after
        assert judged()
        assert a.metric("regfs_net_streams_open") <= 128

        # Still serving: a read here, and a second daemon that joins and replicates.
        srv = servers()
        write(a.path("web"), srv.endpoint + "\n")
        assert read(a.path("web")) == srv.endpoint + "\n"
        b = make_daemon("--key-file", key, "--node-name", "n2", "--join", gossip_address(a))
        assert wait_until(lambda: os.path.exists(b.path("web")), 10)
        assert read(b.path("web")) == srv.endpoint + "\n"
        assert wait_until(lambda: sum(m["state"] == "alive" for m in a.status()["members"]) == 2, 10)
    finally:
        for s in held:
            s.close()
