"""bird_render.read_datastore against a real etcd: what the topology apply wrote, read back in pages."""

from __future__ import annotations

import json

from ansible_collections.kubescale.calico.plugins.module_utils.calico.ipam import affinity_key
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.topology.apply import apply_plan
from ansible_collections.kubescale.calico.plugins.module_utils.topology.bird_render import read_datastore, render
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology


def test_read_datastore_sees_the_applied_plan_and_the_block_affinities(etcd_single):
    workers = [f"w{i}" for i in range(5)]
    hv = {h: {"calico_bgp_ip": f"10.0.0.{i + 1}", "calico_rack": f"r{i % 2}"} for i, h in enumerate(workers)}
    plan = plan_topology(
        {"worker": workers, "route_reflectors": workers[:2]},
        hv,
        {"bgp_mode": "route_reflector", "rr_kind": "in_cluster", "mesh_max_nodes": 1},
    )
    with etcd_single.client() as client:
        apply_plan(CalicoStore(client), plan)
        client.put(affinity_key("w3", "10.64.0.64/26"), json.dumps({"state": "confirmed"}))
        client.put(affinity_key("w3", "fd00::/122"), "{}")  # IPv6: not rendered
        objects = read_datastore(client, page_size=2)  # several pages
    assert sorted(n["metadata"]["name"] for n in objects["nodes"]) == workers
    assert objects["blocks"] == {"w3": ["10.64.0.64/26"]}
    text = render(objects, "w3")
    assert "route 10.64.0.64/26 blackhole;" in text
    assert "neighbor 10.0.0.1 as 64512;" in text and "neighbor 10.0.0.2 as 64512;" in text
    assert "rr client" in render(objects, "w1")
