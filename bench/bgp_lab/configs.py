"""Plans, the lab's etcd, and what the lab writes into it besides the plan.

* :func:`make_plan` builds an inventory of N Calico nodes with addresses inside the lab's own
  segment and asks the collection's planner for the plan (mesh, or in-cluster reflectors chosen
  among the nodes, as many clusters as the reflector capacity needs).
* :class:`LabEtcd` is one etcd member on loopback, stopped by PID.
* :func:`apply` writes a plan with the collection's topology apply (the code the ``bgp_topology``
  module runs); :func:`seed_ipam` writes what calico-node's IPAM would: the IP pool and one /26 block
  affinity per node. :func:`add_node` writes a Node the inventory does not know.

BIRD configs are not made here: every daemon's config is rendered from etcd by the collection's
``bird_render`` (see scenario.py).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.calico.ipam import affinity_key
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient
from ansible_collections.kubescale.calico.plugins.module_utils.topology.apply import apply_plan
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology

NODE_NET = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544 benchmarking range, lab-internal only
BLOCK_NET = ipaddress.IPv4Network("10.64.0.0/10")  # the lab's IP pool: one /26 block per node
POOL = {
    "kind": "IPPool",
    "apiVersion": "projectcalico.org/v3",
    "metadata": {"name": "lab-pool"},
    "spec": {"cidr": str(BLOCK_NET), "blockSize": 26, "ipipMode": "Never", "natOutgoing": False},
}


def host_ip(index: int) -> str:
    return str(NODE_NET.network_address + 10 + index)


def block_for(ip: str) -> str:
    """The /26 of the node with address ``ip`` (the n-th address of the lab gets the n-th block)."""
    index = int(ipaddress.IPv4Address(ip)) - int(NODE_NET.network_address) - 10
    return str(ipaddress.IPv4Network((int(BLOCK_NET.network_address) + 64 * index, 26)))


def make_plan(n: int, mode: str, reflectors: int = 2, rr_capacity: int = 1000,
              candidates: list[int] | None = None) -> dict:
    """Plan for ``n`` worker nodes; ``mode`` is "mesh" or "route_reflector" (in-cluster reflectors:
    the first ``reflectors`` nodes are the candidates, or the nodes numbered ``candidates``; per
    cluster as many as the planner needs)."""
    workers = [f"node-{i:04d}" for i in range(n)]
    chosen = [workers[i] for i in candidates] if candidates is not None else workers[:reflectors]
    hostvars = {
        h: {"calico_bgp_ip": host_ip(i), "calico_rack": f"rack{i % 4}", "calico_zone": "lab"}
        for i, h in enumerate(workers)
    }
    groups = {"worker": workers, "route_reflectors": chosen if mode == "route_reflector" else []}
    settings = {
        "bgp_mode": mode,
        "rr_kind": "in_cluster",
        "rr_capacity": rr_capacity,
        "mesh_max_nodes": max(n, 1) if mode == "mesh" else 1,
    }
    return plan_topology(groups, hostvars, settings)


@dataclass
class LabEtcd:
    """One etcd member on free loopback ports; :meth:`stop` ends it by PID."""

    workdir: Path
    binary: str = field(default_factory=lambda: shutil.which("etcd") or "/usr/bin/etcd")
    proc: subprocess.Popen | None = None
    endpoint: str = ""

    @staticmethod
    def _port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def start(self, timeout: float = 30.0) -> LabEtcd:
        self.workdir.mkdir(parents=True, exist_ok=True)
        client_port, peer_port = self._port(), self._port()
        self.endpoint = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        log = open(self.workdir / "etcd.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--name",
                "lab",
                "--data-dir",
                str(self.workdir / "etcd-data"),
                "--listen-client-urls",
                self.endpoint,
                "--advertise-client-urls",
                self.endpoint,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"lab={peer}",
                "--quota-backend-bytes",
                str(2 * 1024**3),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client() as client:
                    client.revision()
                return self
            except Exception:  # not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"etcd did not start: see {self.workdir / 'etcd.log'}") from None
                time.sleep(0.2)

    def client(self) -> EtcdClient:
        return EtcdClient([self.endpoint], timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None


def apply(client: EtcdClient, plan: dict, phase: str = "all") -> dict:
    """The plan into etcd through the collection's topology apply (what ``bgp_topology`` runs)."""
    return apply_plan(CalicoStore(client), plan, phase=phase)


def seed_ipam(client: EtcdClient, plan: dict) -> None:
    """The lab's IP pool and one block affinity per planned node (what calico-node's IPAM writes)."""
    CalicoStore(client).apply([dict(POOL)])
    for nd in plan["nodes"]:
        client.put(affinity_key(nd["name"], block_for(nd["ip"])), json.dumps({"state": "confirmed"}))


def add_node(client: EtcdClient, name: str, ip: str, labels: dict | None = None) -> None:
    """A Node the inventory does not know (as calico-node registers it), with its block affinity."""
    node = {
        "kind": "Node",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"bgp": {"ipv4Address": f"{ip}/32"}},
    }
    CalicoStore(client).apply([node])
    client.put(affinity_key(name, block_for(ip)), json.dumps({"state": "confirmed"}))
