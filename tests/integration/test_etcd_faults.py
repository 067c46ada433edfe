"""etcd faults answered through the modules: a frozen member, dead endpoints, a full quota (NOSPACE).

A frozen (SIGSTOPped) member still accepts TCP connections but never answers; the modules must go
past it at connect instead of paying its timeout. How long that takes is measured by
bench/etcd_faults.py (ratios against the timeout), not asserted here.
"""

from __future__ import annotations

import os
import re

import pytest
from etcd_fixtures import free_port, make_server
from playbook_run import run_modules

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, EtcdError

PEER = {"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3", "metadata": {"name": "peer-fault"},
        "spec": {"peerIP": "10.0.0.1", "asNumber": 64512}}
NOSPACE = (r"the etcd database is full \(NOSPACE alarm: --quota-backend-bytes reached; reads still work\): "
           r"compact old revisions \(etcdctl compact REV\), defragment each member \(etcdctl defrag\), "
           r"disarm the alarm \(etcdctl alarm disarm\), or raise --quota-backend-bytes")


def test_modules_go_past_a_frozen_first_member(etcd_cluster3, tmp_path):
    server = etcd_cluster3
    conn = {"endpoints": server.endpoints, "timeout": 30}
    with server.frozen(0) as frozen:
        server.wait_for_leader_without(0)
        before = server.revision()
        write, read, snap = run_modules([
            ("calico_resource", {**conn, "definition": PEER}),
            ("calico_resource_info", {**conn, "kind": "BGPPeer"}),
            ("etcd_snapshot", {**conn, "path": str(tmp_path / "snap.db")}),
        ])
    assert not write.get("failed"), write.get("msg")
    assert write["changed"] and write["created"] == ["/calico/resources/v3/projectcalico.org/bgppeers/peer-fault"]
    assert not read.get("failed") and [o["metadata"]["name"] for o in read["resources"]] == ["peer-fault"]
    assert not snap.get("failed"), snap.get("msg")
    assert snap["endpoint"] in server.endpoints[1:] and snap["endpoint"] != frozen.client_url
    assert server.revision() == before + 1


def test_a_list_of_dead_endpoints_fails_once_naming_each(etcd_single):
    dead = [f"http://127.0.0.1:{free_port()}" for _unused in range(3)]
    before = etcd_single.revision()
    (result,) = run_modules([("calico_resource", {"endpoints": dead, "definition": PEER, "timeout": 5})])
    assert result["failed"]
    msg = result["msg"]
    assert "\n" not in msg and msg.startswith("no etcd endpoint answered: ")
    assert all(msg.count(f"{e}: connection refused or unreachable") == 1 for e in dead), msg
    assert etcd_single.revision() == before


def test_a_frozen_member_among_dead_ones_is_reported_as_timed_out(etcd_cluster3):
    server = etcd_cluster3
    dead = f"http://127.0.0.1:{free_port()}"
    with server.frozen(2) as frozen:
        (result,) = run_modules([("calico_resource_info", {"endpoints": [dead, frozen.client_url], "kind": "BGPPeer",
                                                           "timeout": 2})])
    assert result["failed"]
    assert re.fullmatch(rf"no etcd endpoint answered: {dead}: connection refused or unreachable; "
                        rf"{frozen.client_url}: timed out after 2s", result["msg"]), result["msg"]


@pytest.fixture
def etcd_tiny_quota(tmp_path):
    server = make_server(tmp_path, "quota", quota_backend_bytes=256 * 1024)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _fill(server) -> str:
    """Write until etcd raises its NOSPACE alarm; return the client's error."""
    client = EtcdClient(server.endpoints, timeout=10)
    for index in range(200):
        try:
            client.put(f"/filler/{index}", os.urandom(16 * 1024))
        except EtcdError as exc:
            return str(exc)
    raise AssertionError("a 256 KiB quota took 200 x 16 KiB")


def test_a_full_quota_is_reported_as_such_with_what_to_do(etcd_tiny_quota):
    server = etcd_tiny_quota
    error = _fill(server)
    assert re.fullmatch(rf"etcd {server.endpoints[0]}: {NOSPACE}", error), error
    assert "NOSPACE" in server.etcdctl("alarm", "list")
    before = server.revision()
    write, read = run_modules([("calico_resource", {"endpoints": server.endpoints, "definition": PEER}),
                               ("calico_resource_info", {"endpoints": server.endpoints, "kind": "BGPPeer"})])
    assert write["failed"] and re.fullmatch(rf"etcd {server.endpoints[0]}: {NOSPACE}", write["msg"]), write["msg"]
    assert "response too large" not in write["msg"]
    assert not read.get("failed") and read["resources"] == []  # reads still work, as the message says
    assert server.revision() == before
