"""Node removal past one transaction (more than 128 writes) and under a concurrent writer, on real etcd.

The module path is tested through Ansible in test_node_remove.py; here the same code runs in-process so
that a writer can be slipped in between the read and the first transaction.
"""

from __future__ import annotations

import json

from ansible_collections.kubescale.calico.plugins.module_utils.calico import ipam
from ansible_collections.kubescale.calico.plugins.module_utils.calico.node_removal import make_request, remove_nodes
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import key_for
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore

NODES = [f"n{i:03d}" for i in range(60)]


def block_of(index: int, owners: dict[int, str]) -> dict:
    handles = sorted(set(owners.values()))
    allocations = [None] * 64
    for ordinal, handle in owners.items():
        allocations[ordinal] = handles.index(handle)
    return {"cidr": f"10.70.{index}.0/26", "affinity": f"host:{NODES[index]}", "strictAffinity": False,
            "allocations": allocations, "unallocated": [i for i in range(64) if allocations[i] is None],
            "attributes": [{"handle_id": h, "secondary": None} for h in handles], "deleted": False}


def seed(client) -> None:
    resources = []
    for index, name in enumerate(NODES):
        resources.append({"kind": "Node", "metadata": {"name": name},
                          "spec": {"bgp": {"ipv4Address": f"10.0.{index}.1/32",
                                           "ipv4IPIPTunnelAddr": f"10.70.{index}.1"}}})
        for pod in (2, 3):
            resources.append({"kind": "WorkloadEndpoint", "metadata": {"namespace": "ns"},
                              "spec": {"node": name, "orchestrator": "k8s", "pod": f"p{pod}", "endpoint": "eth0",
                                       "ipNetworks": [f"10.70.{index}.{pod}/32"]}})
        owners = {1: f"ipip-tunnel-addr-{name}", 2: f"k8s-pod-network.{name}-2", 3: f"k8s-pod-network.{name}-3"}
        client.put(ipam.block_key(f"10.70.{index}.0/26"), json.dumps(block_of(index, owners)))
        for handle in owners.values():
            client.put(ipam.handle_key(handle), json.dumps({"block": {f"10.70.{index}.0/26": 1}}))
        client.put(ipam.affinity_key(name, f"10.70.{index}.0/26"), json.dumps({"state": "confirmed"}))
    CalicoStore(client).apply(resources)


def keys_of(client) -> set[str]:
    return {kv.key for kv in client.range("/calico/", keys_only=True)}


def node_keys(index: int) -> set[str]:
    name, cidr = NODES[index], f"10.70.{index}.0/26"
    return {key_for("Node", name), key_for("WorkloadEndpoint", f"{name}-k8s-p2-eth0", "ns"),
            key_for("WorkloadEndpoint", f"{name}-k8s-p3-eth0", "ns"), ipam.block_key(cidr),
            ipam.affinity_key(name, cidr), ipam.handle_key(f"ipip-tunnel-addr-{name}"),
            ipam.handle_key(f"k8s-pod-network.{name}-2"), ipam.handle_key(f"k8s-pod-network.{name}-3")}


def test_fifty_nodes_go_in_ordered_batches(etcd_single):
    client = etcd_single.client()
    seed(client)
    assert keys_of(client) == set().union(*(node_keys(i) for i in range(60)))
    result = remove_nodes(client, make_request(NODES[:50], None, False, False))
    assert len(result["deleted"]) == 50 * 8 > 128  # four transactions
    assert keys_of(client) == set().union(*(node_keys(i) for i in range(50, 60)))
    assert result["summary"]["released_ips"] == 150 and result["retries"] == 0
    order = [key.split("/")[5 if key.startswith("/calico/resources") else 4] for key in result["deleted"]]
    # Calico's order over all the nodes: IPAM releases, endpoints, affinities, then the Nodes last
    assert order.index("workloadendpoints") > max(i for i, k in enumerate(order) if k == "handle")
    assert max(i for i, k in enumerate(order) if k == "workloadendpoints") < order.index("host")
    assert min(i for i, k in enumerate(order) if k == "nodes") > max(i for i, k in enumerate(order) if k != "nodes")
    client.close()


class RacingClient:
    """Passes every call through; before the first transaction, another writer allocates an IP."""

    def __init__(self, client, key: str, change) -> None:
        self._client, self._key, self._change, self.raced = client, key, change, False

    def __getattr__(self, name):
        return getattr(self._client, name)

    def apply(self, ops, max_ops=128):
        if not self.raced:
            self.raced = True
            value = json.loads(self._client.get(self._key).value)
            self._client.put(self._key, json.dumps(self._change(value)))
        return self._client.apply(ops, max_ops)


def test_a_lost_race_is_read_again_and_the_new_allocation_kept(etcd_single):
    client = etcd_single.client()
    seed(client)
    key = ipam.block_key("10.70.0.0/26")

    def allocate_for_someone_else(block: dict) -> dict:
        block["attributes"].append({"handle_id": "k8s-pod-network.other", "secondary": None})
        block["allocations"][9] = len(block["attributes"]) - 1
        block["unallocated"].remove(9)
        return block

    racing = RacingClient(client, key, allocate_for_someone_else)
    result = remove_nodes(racing, make_request(["n000"], None, False, False))
    assert racing.raced and result["retries"] == 1
    block = json.loads(client.get(key).value)
    assert ipam.allocated_ips(block) == ["10.70.0.9"] and block["affinity"] is None  # kept, not deleted
    assert keys_of(client) & node_keys(0) == {key}
    assert key in result["updated"] and key not in result["deleted"]
    client.close()
