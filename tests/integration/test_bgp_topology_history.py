"""Hitless transitions, proved on the etcd history: every revision an apply wrote is read back
(revision-pinned range reads) and fed to the session/reachability model (topology/sessions.py); no node
that reached every node may lose a route it had, at any revision.

Five transitions through the bgp_topology module (Ansible, real etcd): mesh -> reflectors, a cluster
split when growth passes capacity, a reflector replaced, a client removed, reflectors -> mesh. The
inventory has more than 128 nodes, so the Node writes span several transactions (intermediate
revisions). A control applies the old order (cluster IDs before peers) and the replay must catch it.
"""

from __future__ import annotations

import copy

import pytest
from playbook_run import run_module

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import KEY_ROOT, key_for
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology
from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import (
    objects_from_kvs,
    reachability,
    unreachable,
)

WORKERS = 150
RR_SETTINGS = {"mesh_max_nodes": 100, "rr_capacity": 60}


def inventory() -> tuple[dict, dict]:
    groups = {
        "master": ["master-1", "master-2", "master-3"],
        "management": ["mgmt-1", "mgmt-2", "mgmt-3"],
        "route_reflectors": [f"rr-{i:02d}" for i in range(1, 11)],
        "worker": [f"worker-{i:03d}" for i in range(1, WORKERS + 1)],
    }
    hostvars = {}
    for index, host in enumerate(h for hosts in groups.values() for h in hosts):
        hostvars[host] = {"calico_bgp_ip": f"10.7.{index // 200}.{index % 200 + 1}", "calico_rack": f"rack{index % 5}"}
    return groups, hostvars


def state_at(client, revision: int) -> dict:
    return objects_from_kvs(client.range(KEY_ROOT, revision=revision))


def replay(client, start: int, end: int) -> tuple[list[str], int]:
    """(problems, revisions replayed): a node fully reachable at r-1 that lacks, at r, a route it had."""
    problems = []
    before = reachability(state_at(client, start))
    for revision in range(start + 1, end + 1):
        now = reachability(state_at(client, revision))
        for node, had in before.items():
            if node not in now or had < set(before) - {node}:
                continue
            lost = (had & set(now)) - now[node]
            if lost:
                problems.append(f"revision {revision}: {node} lost {len(lost)} route(s), e.g. {sorted(lost)[:3]}")
        before = now
    return problems, end - start


def apply(etcd, plan: dict) -> dict:
    result = run_module("bgp_topology", {"endpoints": etcd.endpoints, "plan": plan})
    assert result.get("failed") is not True, result.get("msg")
    return result


def transition(etcd, client, plan: dict) -> tuple[dict, int]:
    start = client.revision()
    result = apply(etcd, plan)
    end = client.revision()
    problems, revisions = replay(client, start, end)
    assert problems == [], problems[:5]
    assert unreachable(state_at(client, end)) == {}
    return result, revisions


@pytest.fixture
def client(etcd_single):
    c = etcd_single.client()
    yield c
    c.close()


def test_five_transitions_keep_reachability_at_every_revision(etcd_single, client):
    groups, hv = inventory()
    mesh = plan_topology(groups, hv)
    assert mesh["mode"] == "mesh"
    apply(etcd_single, mesh)
    assert unreachable(state_at(client, client.revision())) == {}

    # 1. mesh -> reflectors (3 clusters)
    rr = plan_topology(groups, hv, RR_SETTINGS)
    assert rr["stats"]["clusters"] == 3
    result, revisions = transition(etcd_single, client, rr)
    assert revisions >= 5  # peers, labels in 2 transactions, promotions, mesh off
    assert [s["step"] for s in result["steps"] if s["written"]] == [
        "BGPPeers created or updated", "Nodes: labels and addresses", "Nodes: reflectors promoted (one transaction)",
        "BGPConfiguration: mesh off",
    ]

    # 2. growth past capacity: a fourth cluster, its reflectors promoted, new workers join it
    for i in range(WORKERS + 1, WORKERS + 41):
        groups["worker"].append(f"worker-{i:03d}")
        hv[f"worker-{i:03d}"] = {"calico_bgp_ip": f"10.8.0.{i - WORKERS}", "calico_rack": f"rack{i % 5}"}
    grown = plan_topology(groups, hv, RR_SETTINGS)
    result, _unused = transition(etcd_single, client, grown)
    assert len(result["reflectors"]) == 8
    assert result["reflectors_before"].items() <= result["reflectors"].items()  # no reflector moved

    # 3. a reflector replaced: rr host leaves the route_reflectors group (stays as a worker)
    victim = next(name for name, cid in result["reflectors"].items() if cid == "224.0.0.2")
    groups["route_reflectors"].remove(victim)
    groups["worker"].append(victim)
    replaced = plan_topology(groups, hv, RR_SETTINGS)
    result, _unused = transition(etcd_single, client, replaced)
    assert victim not in result["reflectors"] and len(result["reflectors"]) == 8
    written = [s["step"] for s in result["steps"] if s["written"]]
    assert written.index("Nodes: reflectors promoted (one transaction)") < written.index(
        "Nodes: reflectors demoted (one transaction)"
    )

    # 4. a client removed: nothing to write for the others; then its Node is deleted (node deletion)
    gone = "worker-017"
    groups["worker"].remove(gone)
    del hv[gone]
    start = client.revision()
    shrunk = apply(etcd_single, plan_topology(groups, hv, RR_SETTINGS))
    assert shrunk["changed"] is False
    assert shrunk["unplanned_nodes"] == {"count": 1, "names": [gone]}
    assert client.delete(key_for("Node", gone))
    problems, _unused = replay(client, start, client.revision())
    assert problems == []

    # 5. reflectors -> mesh
    result, _unused = transition(etcd_single, client, plan_topology(groups, hv, {"mesh_max_nodes": 1000}))
    assert [s["step"] for s in result["steps"] if s["written"]][:3] == [
        "BGPConfiguration: mesh on", "Nodes: reflectors demoted (one transaction)", "Nodes: labels and addresses",
    ]


def test_the_replay_catches_an_unsafe_order(etcd_single, client):
    """Control: cluster IDs written before the peers exist (the order the issue found) loses routes."""
    groups, hv = inventory()
    apply(etcd_single, plan_topology(groups, hv))
    rr = plan_topology(groups, hv, RR_SETTINGS)
    store = CalicoStore(client)
    start = client.revision()
    store.apply(copy.deepcopy(rr["resources"]["nodes"]), merge=True)
    store.apply(copy.deepcopy(rr["resources"]["bgppeers"]), merge=False)
    store.apply(copy.deepcopy(rr["resources"]["bgpconfigurations"]), merge=True)
    problems, _unused = replay(client, start, client.revision())
    assert problems and "lost" in problems[0]
