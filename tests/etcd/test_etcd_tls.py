"""regfsd on the etcd store over TLS (etcds://) against a real etcd member
that serves its client port with a certificate and asks clients for theirs
(--client-cert-auth). A throwaway CA, server and client certificates are
made here with openssl; another CA signs a certificate for the same host.
"""
import errno
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import ETCD, REGFSD, free_ports, read, wait_until, write

TTL = "3s"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki(d):
    """ca.{crt,key}, server.* (127.0.0.1 and localhost only), client.*; other-ca.* and
    rogue.* (a server certificate for the same host from another CA)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                "-subj", f"/CN=regfs test {ca}", cwd=d)
    for name, ca, san, eku in (
            ("server", "ca", "IP:127.0.0.1,DNS:localhost", "serverAuth,clientAuth"),
            ("client", "ca", "DNS:regfs-client", "clientAuth"),
            ("rogue", "other-ca", "IP:127.0.0.1,DNS:localhost", "serverAuth,clientAuth")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
                cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nextendedKeyUsage={eku}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
                cwd=d)


class TlsEtcd:
    """One etcd member: TLS with client certificates on 127.0.0.1 and 127.0.0.2
    (the certificate names only 127.0.0.1), and a second member process
    serving the rogue certificate."""

    def __init__(self, d):
        self.d = d
        client, peer, client2, rogue, rogue_peer = free_ports(5)
        self.url = f"etcds://127.0.0.1:{client}"
        self.wrong_host_url = f"etcds://127.0.0.2:{client2}"
        self.rogue_url = f"etcds://127.0.0.1:{rogue}"
        self.procs = [
            self._start("tls", client, peer, "server", f"https://127.0.0.2:{client2}"),
            self._start("rogue", rogue, rogue_peer, "rogue", None),
        ]

    def _start(self, name, client, peer, cert, extra):
        listen = f"https://127.0.0.1:{client}" + (f",{extra}" if extra else "")
        cmd = [ETCD, "--name", name, "--data-dir", os.path.join(self.d, name),
               "--listen-client-urls", listen, "--advertise-client-urls", f"https://127.0.0.1:{client}",
               "--listen-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-cluster", f"{name}=http://127.0.0.1:{peer}",
               "--cert-file", self.f(f"{cert}.crt"), "--key-file", self.f(f"{cert}.key"),
               "--client-cert-auth", "--trusted-ca-file", self.f("ca.crt"),
               "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn"]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(self.d, f"{name}.log"), "ab"))

    def f(self, name):
        return os.path.join(self.d, name)

    def creds(self, ca="ca", client="client"):
        out = ["--store-ca", self.f(f"{ca}.crt")]
        if client:
            out += ["--store-cert", self.f(f"{client}.crt"), "--store-key", self.f(f"{client}.key")]
        return out

    def answers(self, url):
        r = subprocess.run(["curl", "-sf", "--max-time", "1", "--cacert", self.f("ca.crt"),
                            "--cert", self.f("client.crt"), "--key", self.f("client.key"),
                            "-X", "POST", "-d", '{"key":"Lw=="}',
                            url.replace("etcds://", "https://") + "/v3/kv/range"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait(10)


@pytest.fixture(scope="module")
def tls_etcd():
    d = tempfile.mkdtemp(prefix="regfs-etcd-tls-")
    make_pki(d)
    e = TlsEtcd(d)
    try:
        assert wait_until(lambda: e.answers(e.url), 30, 0.1), read(e.f("tls.log"))[-2000:]
        yield e
    finally:
        e.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_registrations_propagate_between_two_daemons_over_tls(tls_etcd, make_daemon):
    a = make_daemon("a", tls_etcd.url, "--store-ttl", TTL, *tls_etcd.creds())
    b = make_daemon("b", tls_etcd.url, "--store-ttl", TTL, *tls_etcd.creds())
    write(a.path("web"), "10.20.0.1:80 check=none\n")
    assert wait_until(lambda: b.endpoints("web") == ["10.20.0.1:80"], 5), b.read_log()
    write(b.path("api"), "10.20.0.2:80 check=none\n")
    assert wait_until(lambda: a.endpoints("api") == ["10.20.0.2:80"], 5), a.read_log()
    assert a.status()["store"]["reachable"] is True
    os.unlink(a.path("web"))
    assert wait_until(lambda: b.endpoints("web") is None, 5)
    # The watch (one long TLS stream) and the keepalives carry on.
    write(a.path("web"), "10.20.0.3:80 check=none\n")
    assert wait_until(lambda: b.endpoints("web") == ["10.20.0.3:80"], 5)


@pytest.mark.parametrize("case", ["no client certificate", "another CA's server", "wrong host"])
def test_a_member_that_fails_tls_is_refused(tls_etcd, make_daemon, case):
    url, creds, expected = {
        # etcd refuses the connection with a TLS alert.
        "no client certificate": (tls_etcd.url, tls_etcd.creds(client=None),
                                  "the member refused this daemon's client certificate, or its lack"),
        # The daemon refuses the member: its certificate does not chain to --store-ca.
        "another CA's server": (tls_etcd.rogue_url, tls_etcd.creds(),
                                "the member's certificate: unable to get local issuer certificate"),
        # Signed by the right CA, but not for the host the daemon was given.
        "wrong host": (tls_etcd.wrong_host_url, tls_etcd.creds(),
                       "the member's certificate is not for 127.0.0.2"),
    }[case]
    good = make_daemon("good", tls_etcd.url, "--store-ttl", TTL, *tls_etcd.creds())
    d = make_daemon("refused", url, "--store-ttl", TTL, "--store-timeout", "500ms", *creds)
    assert wait_until(lambda: expected in d.read_log(), 10), d.read_log()
    assert d.status()["store"]["reachable"] is False
    with pytest.raises(OSError) as e:
        write(d.path("x"), "10.21.0.1:80 check=none\n")
    assert e.value.errno == errno.ETIMEDOUT
    write(good.path("y"), "10.21.0.2:80 check=none\n")
    assert d.endpoints("y") is None
    assert good.endpoints("x") is None


@pytest.mark.parametrize("case", ["missing CA", "CA not PEM", "key of another certificate",
                                  "certificate without key", "files with etcd://"])
def test_bad_tls_files_fail_at_start_and_change_nothing(tls_etcd, case):
    f = tls_etcd.f
    url, args, expected = {
        "missing CA": ("etcds://127.0.0.1:1", ["--store-ca", f("nope.crt")],
                       f"--store-ca: {f('nope.crt')}: No such file or directory"),
        "CA not PEM": ("etcds://127.0.0.1:1", ["--store-ca", f("server.ext")],
                       f"--store-ca: {f('server.ext')}: no PEM CA certificate"),
        "key of another certificate": (
            "etcds://127.0.0.1:1",
            ["--store-cert", f("client.crt"), "--store-key", f("server.key")],
            f"--store-key: {f('server.key')}: not the key of {f('client.crt')}"),
        "certificate without key": ("etcds://127.0.0.1:1", ["--store-cert", f("client.crt")],
                                    "--store-cert and --store-key go together"),
        "files with etcd://": ("etcd://127.0.0.1:1", ["--store-ca", f("ca.crt")],
                               "need --store etcds://"),
    }[case]
    base = tempfile.mkdtemp(prefix="regfs-etcd-tls-bad-")
    try:
        mnt, state = os.path.join(base, "mnt"), os.path.join(base, "state")
        os.mkdir(mnt)
        r = subprocess.run([REGFSD, "--mount", mnt, "--state-dir", state, "--node-name", "bad",
                            "--store", url, *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, r.stderr
        assert expected in r.stderr
        assert not os.path.exists(state)
        assert not os.path.ismount(mnt) and os.listdir(mnt) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)
