"""calico_node_remove against a real etcd, through Ansible: exactly what Calico's node deletion removes goes.

The datastore is seeded with the collection's own writers (a reflector plan through ``bgp_topology``,
endpoints, peers and per-node configurations through ``calico_resource``) plus IPAM blocks, handles and
block affinities put as reference/calico-datastore.md §1.4 shows them. The whole ``/calico/`` key set
is compared before and after.
"""

from __future__ import annotations

import json

import pytest
from playbook_run import run_module, run_modules

from ansible_collections.kubescale.calico.plugins.module_utils.calico import ipam
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import key_for
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology

GROUPS = {"route_reflectors": ["rr-1", "rr-2", "rr-3"], "worker": ["w1", "w2", "w3"]}
HOSTVARS = {
    "rr-1": {"calico_bgp_ip": "10.0.0.1", "calico_rack": "r1"},
    "rr-2": {"calico_bgp_ip": "10.0.0.2", "calico_rack": "r2"},
    "rr-3": {"calico_bgp_ip": "10.0.0.3", "calico_rack": "r2"},
    "w1": {"calico_bgp_ip": "10.0.1.1", "calico_rack": "r1"},
    "w2": {"calico_bgp_ip": "10.0.1.2", "calico_rack": "r2"},
    "w3": {"calico_bgp_ip": "10.0.1.3", "calico_rack": "r2"},
}
SETTINGS = {"bgp_mode": "route_reflector", "rr_per_client": 3}
W1_IPS = ["10.65.0.1", "10.65.0.2", "10.65.0.70", "10.65.0.10"]  # wep-a, wep-b (two), IPIP tunnel


def wep(node: str, pod: str, ips: list[str]) -> dict:
    return {"kind": "WorkloadEndpoint", "metadata": {"namespace": "default"},
            "spec": {"node": node, "orchestrator": "k8s", "pod": pod, "endpoint": "eth0",
                     "ipNetworks": [f"{ip}/32" for ip in ips]}}


def block(cidr: str, node: str | None, owners: dict[str, str]) -> dict:
    """An AllocationBlock of a /26 with ``owners`` {ip: handle}."""
    base = int.from_bytes(bytes(int(x) for x in cidr.split("/")[0].split(".")), "big")
    handles = sorted(set(owners.values()))
    allocations = [None] * 64
    for ip, handle in owners.items():
        ordinal = int.from_bytes(bytes(int(x) for x in ip.split(".")), "big") - base
        allocations[ordinal] = handles.index(handle)
    return {"cidr": cidr, "affinity": f"host:{node}" if node else None, "strictAffinity": False,
            "allocations": allocations, "unallocated": [i for i in range(64) if allocations[i] is None],
            "attributes": [{"handle_id": h, "secondary": None} for h in handles], "deleted": False}


IPAM = {
    ipam.block_key("10.65.0.0/26"): block("10.65.0.0/26", "w1", {
        "10.65.0.1": "k8s-pod-network.a", "10.65.0.2": "k8s-pod-network.b", "10.65.0.10": "ipip-tunnel-addr-w1",
        "10.65.0.5": "k8s-pod-network.c"}),
    ipam.block_key("10.65.0.64/26"): block("10.65.0.64/26", "w2", {
        "10.65.0.65": "k8s-pod-network.d", "10.65.0.70": "k8s-pod-network.b"}),
    ipam.block_key("10.65.1.0/26"): block("10.65.1.0/26", "w1", {}),
    ipam.handle_key("k8s-pod-network.a"): {"block": {"10.65.0.0/26": 1}},
    ipam.handle_key("k8s-pod-network.b"): {"block": {"10.65.0.0/26": 1, "10.65.0.64/26": 1}},
    ipam.handle_key("k8s-pod-network.c"): {"block": {"10.65.0.0/26": 1}},
    ipam.handle_key("k8s-pod-network.d"): {"block": {"10.65.0.64/26": 1}},
    ipam.handle_key("ipip-tunnel-addr-w1"): {"block": {"10.65.0.0/26": 1}},
    ipam.affinity_key("w1", "10.65.0.0/26"): {"state": "confirmed"},
    ipam.affinity_key("w1", "10.65.1.0/26"): {"state": "confirmed"},
    ipam.affinity_key("w2", "10.65.0.64/26"): {"state": "confirmed"},
    ipam.affinity_key("w10", "10.65.2.0/26"): {"state": "confirmed"},  # w10 is not w1
}
W1_GONE = {
    key_for("Node", "w1"),
    key_for("WorkloadEndpoint", "w1-k8s-pod--a-eth0", "default"),
    key_for("WorkloadEndpoint", "w1-k8s-pod--b-eth0", "default"),
    key_for("BGPPeer", "w1-tor"),
    key_for("FelixConfiguration", "node.w1"),
    key_for("BGPConfiguration", "node.w1"),
    ipam.handle_key("k8s-pod-network.a"),
    ipam.handle_key("k8s-pod-network.b"),
    ipam.handle_key("ipip-tunnel-addr-w1"),
    ipam.block_key("10.65.1.0/26"),  # empty once its affinity is released
    ipam.affinity_key("w1", "10.65.0.0/26"),
    ipam.affinity_key("w1", "10.65.1.0/26"),
}
W1_UPDATED = {ipam.block_key("10.65.0.0/26"), ipam.block_key("10.65.0.64/26")}


def snapshot(client) -> dict[str, dict]:
    return {kv.key: json.loads(kv.value) for kv in client.range("/calico/")}


@pytest.fixture
def seeded(etcd_single):
    conn = etcd_single.conn_params
    plan = plan_topology(GROUPS, HOSTVARS, SETTINGS)
    assert sorted(r["name"] for r in plan["reflectors"]) == ["rr-1", "rr-2", "rr-3"]
    resources = [
        wep("w1", "pod-a", ["10.65.0.1"]), wep("w1", "pod-b", ["10.65.0.2", "10.65.0.70"]),
        wep("w2", "pod-c", ["10.65.0.5"]), wep("w2", "pod-d", ["10.65.0.65"]),
        {"kind": "Node", "metadata": {"name": "w1"}, "spec": {"bgp": {"ipv4IPIPTunnelAddr": "10.65.0.10"}}},
        {"kind": "BGPPeer", "metadata": {"name": "w1-tor"},
         "spec": {"node": "w1", "peerIP": "10.0.1.254", "asNumber": 64512}},
        {"kind": "BGPPeer", "metadata": {"name": "w2-tor"},
         "spec": {"node": "w2", "peerIP": "10.0.1.254", "asNumber": 64512}},
        {"kind": "FelixConfiguration", "metadata": {"name": "node.w1"}, "spec": {"logSeverityScreen": "Debug"}},
        {"kind": "BGPConfiguration", "metadata": {"name": "node.w1"}, "spec": {"logSeverityScreen": "Debug"}},
        {"kind": "FelixConfiguration", "metadata": {"name": "node.w2"}, "spec": {"logSeverityScreen": "Debug"}},
    ]
    results = run_modules([("bgp_topology", {**conn, "plan": plan}),
                           ("calico_resource", {**conn, "definition": resources})])
    assert all(r.get("failed") is not True for r in results), [r.get("msg") for r in results]
    client = etcd_single.client()
    for key, value in IPAM.items():
        client.put(key, json.dumps(value))
    yield etcd_single, client
    client.close()


def test_removal_deletes_exactly_what_calico_deletes(seeded):
    server, client = seeded
    conn = server.conn_params
    before, revision = snapshot(client), client.revision()

    checked = run_module("calico_node_remove", {**conn, "state": "absent", "nodes": ["w1"]}, check=True, diff=True)
    assert checked["changed"] is True, checked.get("msg")
    assert client.revision() == revision  # check mode writes nothing
    assert set(checked["diff"]["before"]) == W1_GONE | W1_UPDATED  # and its diff shows every key that changes

    result = run_module("calico_node_remove", {**conn, "state": "absent", "nodes": ["w1"]}, diff=True)
    assert result["changed"] is True, result.get("msg")
    after = snapshot(client)
    assert set(before) - set(after) == W1_GONE
    assert set(after) - set(before) == set()
    assert {k for k in after if after[k] != before[k]} == W1_UPDATED
    assert set(result["deleted"]) == W1_GONE and set(result["updated"]) == W1_UPDATED
    # check mode told the truth
    for field in ("deleted", "updated", "summary", "released_ips", "nodes"):
        assert checked[field] == result[field], field
    assert result["summary"]["deleted"] == {
        "BGPConfiguration": 1, "BGPPeer": 1, "BlockAffinity": 2, "FelixConfiguration": 1, "IPAMBlock": 1,
        "IPAMHandle": 3, "Node": 1, "WorkloadEndpoint": 2}
    assert result["summary"]["released_ips"] == 4 and sorted(result["released_ips"]) == sorted(W1_IPS)
    assert result["actions"] == [
        "removed Node w1: released 4 IPs; deleted 2 WorkloadEndpoints, 1 IPAMBlock, 2 BlockAffinities, 1 BGPPeer, "
        "1 FelixConfiguration, 1 BGPConfiguration"]
    assert result["diff"]["after"][key_for("Node", "w1")] is None

    # the blocks no longer allocate w1's addresses; other nodes keep theirs
    own = after[ipam.block_key("10.65.0.0/26")]
    assert ipam.allocated_ips(own) == ["10.65.0.5"] and own["affinity"] is None
    assert own["attributes"] == [{"handle_id": "k8s-pod-network.c", "secondary": None}]
    borrowed = after[ipam.block_key("10.65.0.64/26")]
    assert ipam.allocated_ips(borrowed) == ["10.65.0.65"] and borrowed["affinity"] == "host:w2"
    for value in (v for k, v in after.items() if k.startswith(ipam.BLOCK_PREFIX)):
        assert not set(ipam.allocated_ips(value)) & set(W1_IPS)
    assert after[ipam.handle_key("k8s-pod-network.c")] == {"block": {"10.65.0.0/26": 1}}

    # a rerun finds nothing: reported, not an error, no change
    again = run_module("calico_node_remove", {**conn, "state": "absent", "nodes": ["w1", "never-existed"]})
    assert again["changed"] is False and again.get("failed") is not True, again.get("msg")
    assert again["not_found"] == ["w1", "never-existed"] and again["deleted"] == []
    assert snapshot(client) == after


def test_refusals_write_nothing(seeded):
    server, client = seeded
    conn = {**server.conn_params, "state": "absent"}
    revision = client.revision()
    results = run_modules([
        ("calico_node_remove", {**conn, "nodes": ["rr-1", "rr-2", "rr-3"]}),
        ("calico_node_remove", {**conn, "nodes": ["rr-1"], "require_spread": True}),
        ("calico_node_remove", {**conn, "keep": ["w1"]}),
        ("calico_node_remove", {**conn, "keep": [], "remove_unlisted": True}),
        ("calico_node_remove", {**conn, "nodes": ["Bad_Name"]}),
        ("calico_node_remove", {**server.conn_params, "nodes": ["w1"]}),
    ])
    msgs = [r.get("msg", "") for r in results]
    assert all(r.get("failed") for r in results), msgs
    assert "would leave route reflector cluster 224.0.0.1 without a reflector while 3 node(s)" in msgs[0]
    assert "require_spread: removing rr-1 would remove every reflector of cluster 224.0.0.1 in failure domain " \
           "rack=r1" in msgs[1]
    assert "needs remove_unlisted: true" in msgs[2]
    assert "keep: is empty" in msgs[3]
    assert msgs[4].startswith("nodes[0]:")
    assert "state" in msgs[5]
    assert client.revision() == revision


def test_a_reflector_goes_once_its_clients_moved_and_spread_allows(seeded):
    server, client = seeded
    conn = {**server.conn_params, "state": "absent"}
    # rr-3 shares rack r2 with rr-2: the cluster keeps both racks, so require_spread allows it
    result = run_module("calico_node_remove", {**conn, "nodes": ["rr-3"], "require_spread": True})
    assert result["changed"] is True and result["nodes"] == ["rr-3"], result.get("msg")
    assert client.get(key_for("Node", "rr-3")) is None
