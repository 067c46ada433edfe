"""Day 2 of the planner: nodes it does not know, stable assignment from stored state, failure domains."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    LABEL_RR,
    LABEL_RR_CLIENT_OF,
    LABEL_RR_CLUSTER,
    TopologyError,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import (
    plan_topology,
    replan,
    stored_assignment,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import reachability, unreachable

CHURN = settings(
    max_examples=int(os.environ.get("TOPOLOGY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def inventory(workers: int, mgmt_racks=("r1", "r2", "r3"), worker_racks=4, zones=False):
    groups = {
        "master": ["master-1", "master-2", "master-3"],
        "management": ["mgmt-1", "mgmt-2", "mgmt-3"],
        "worker": [f"worker-{i:04d}" for i in range(1, workers + 1)],
    }
    hv = {}
    for i, host in enumerate(groups["master"] + groups["management"]):
        rack = mgmt_racks[i % len(mgmt_racks)] if mgmt_racks else None
        hv[host] = {"calico_bgp_ip": f"10.0.0.{i + 1}"} | ({"calico_rack": rack} if rack else {})
    for i in range(1, workers + 1):
        hv[f"worker-{i:04d}"] = _worker_vars(i, worker_racks, zones)
    return groups, hv


def _worker_vars(i: int, racks: int, zones: bool = False) -> dict:
    hv = {"calico_bgp_ip": f"10.1.{i // 256}.{i % 256}"}
    if racks:
        hv["calico_rack"] = f"w{i % racks + 1}"
    if zones:
        hv["calico_zone"] = f"z{i % 2 + 1}"
    return hv


def as_stored(plan: dict) -> list[dict]:
    """The Node objects the apply writes for ``plan`` (what a later run reads back)."""
    return copy.deepcopy(plan["resources"]["nodes"])


def peers_of(plan: dict) -> dict[str, tuple]:
    return {n["name"]: (n["route_reflector"], n["cluster_id"], tuple(n["peers"])) for n in plan["nodes"]}


# --------------------------------------------------------------------------------------------
# 1. nodes the inventory does not know


def test_default_peering_attaches_unlabelled_nodes_to_the_first_cluster():
    groups, hv = inventory(40)
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10, "rr_capacity": 20})
    assert plan["stats"]["clusters"] >= 2 and plan["default_cluster"] == "224.0.0.1"
    default = next(p for p in plan["resources"]["bgppeers"] if p["metadata"]["name"] == "kubescale-rr-default")
    assert default["spec"] == {
        "nodeSelector": f"!has({LABEL_RR}) && !has({LABEL_RR_CLIENT_OF})",
        "peerSelector": f"{LABEL_RR_CLUSTER} == '224.0.0.1'",
    }


def test_a_node_unknown_to_the_plan_reaches_and_is_reached_by_everyone():
    groups, hv = inventory(40)
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10, "rr_capacity": 20})
    objects = copy.deepcopy(plan["resources"])
    stranger = {"kind": "Node", "metadata": {"name": "autoscaled-1"}, "spec": {"bgp": {"ipv4Address": "10.9.0.1/24"}}}
    objects["nodes"].append(stranger)
    assert unreachable(objects) == {}
    kept = [p for p in objects["bgppeers"] if "default" not in p["metadata"]["name"]]
    without_default = {**objects, "bgppeers": kept}
    reach = reachability(without_default)
    assert reach["autoscaled-1"] == set()  # what the issue saw: no session at all


def test_external_reflectors_get_no_default_peering():
    groups, hv = inventory(40)
    groups["route_reflectors"] = ["bird-1", "bird-2"]
    hv["bird-1"] = {"calico_bgp_ip": "10.2.0.1", "calico_rack": "r1"}
    hv["bird-2"] = {"calico_bgp_ip": "10.2.0.2", "calico_rack": "r2"}
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10, "rr_kind": "external"})
    assert plan["default_cluster"] is None
    assert not [p for p in plan["resources"]["bgppeers"] if p["metadata"]["name"] == "kubescale-rr-default"]


# --------------------------------------------------------------------------------------------
# 3. failure domains


def test_workers_in_other_racks_serve_when_all_management_hosts_share_a_rack():
    groups, hv = inventory(60, mgmt_racks=("r1",))
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10})
    reflectors = plan["reflectors"]
    assert len({r["rack"] for r in reflectors}) == 2
    assert sorted(r["group"] for r in reflectors) == ["management", "worker"]  # the preferred group first
    assert plan["spread"]["ok"] is True and plan["warnings"] == []


def test_management_hosts_spread_over_racks_keep_workers_out():
    groups, hv = inventory(60)
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10})
    assert {r["group"] for r in plan["reflectors"]} == {"management"}
    groups["worker"].append("worker-0999")
    hv["worker-0999"] = _worker_vars(999, 4)
    after = plan_topology(groups, hv, {"mesh_max_nodes": 10})
    assert [(r["host"], r["cluster_id"]) for r in after["reflectors"]] == [
        (r["host"], r["cluster_id"]) for r in plan["reflectors"]
    ]


def test_all_in_one_rack_warns_and_require_spread_refuses():
    groups, hv = inventory(60, mgmt_racks=("r1",), worker_racks=0)
    for host in groups["worker"]:
        hv[host]["calico_rack"] = "r1"
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10})
    assert plan["spread"] == {"failure_domains_known": True, "clusters_in_one_domain": ["224.0.0.1"], "ok": False}
    assert any("reflector cluster 224.0.0.1 has all its reflectors in rack r1" in w for w in plan["warnings"])
    with pytest.raises(TopologyError, match=r"^calico_rr_require_spread: reflector cluster 224\.0\.0\.1 has all"):
        plan_topology(groups, hv, {"mesh_max_nodes": 10, "rr_require_spread": True})


def test_no_rack_or_zone_at_all_warns_and_require_spread_refuses():
    groups, hv = inventory(60, mgmt_racks=(), worker_racks=0)
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10})
    assert plan["spread"]["failure_domains_known"] is False
    assert any("failure domains are unknown" in w for w in plan["warnings"])
    assert {r["group"] for r in plan["reflectors"]} == {"management"}  # no reason to reach for workers
    with pytest.raises(TopologyError, match=r"calico_rr_require_spread: no reflector has calico_rack or calico_zone"):
        plan_topology(groups, hv, {"mesh_max_nodes": 10, "calico_rr_require_spread": "yes"})


def test_mesh_plans_say_nothing_about_spread():
    groups, hv = inventory(10, mgmt_racks=())
    plan = plan_topology(groups, hv, {"rr_require_spread": True})
    assert plan["mode"] == "mesh" and plan["spread"]["ok"] is True


def test_require_spread_must_be_a_boolean():
    groups, hv = inventory(10)
    with pytest.raises(TopologyError, match=r"calico_rr_require_spread: 'maybe' must be true or false"):
        plan_topology(groups, hv, {"rr_require_spread": "maybe"})


# --------------------------------------------------------------------------------------------
# 2. stable assignment from stored state


def test_replan_without_previous_gives_the_same_plan():
    groups, hv = inventory(50, zones=True)
    hv["worker-0003"]["calico_as_number"] = 64512
    hv["worker-0004"]["calico_node_name"] = "w4.example"
    hv["worker-0005"] = {"ansible_default_ipv4": {"address": "10.5.0.5", "prefix": 20}, "calico_rack": "w2"}
    hv["worker-0006"]["calico_router_peers"] = [{"ip": "10.250.0.1", "as_number": 65001}]
    sets = {"mesh_max_nodes": 10, "rr_capacity": 20, "router_peers": [{"ip": "10.250.0.9", "as_number": 65009}]}
    plan = plan_topology(groups, hv, sets)
    assert replan(plan, None) == plan


def test_replan_refuses_a_plan_without_inputs():
    groups, hv = inventory(50)
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10})
    del plan["inputs"]
    with pytest.raises(TopologyError, match=r"plan\.inputs: missing"):
        replan(plan, None)


def test_stored_assignment_reads_the_labels_back():
    groups, hv = inventory(50)
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10, "rr_capacity": 20})
    stored = stored_assignment(as_stored(plan), plan)
    assert {r["host"]: r["cluster_id"] for r in stored["reflectors"]} == {
        r["host"]: r["cluster_id"] for r in plan["reflectors"]
    }
    clients = {n["host"]: n["cluster_id"] for n in plan["nodes"] if not n["route_reflector"]}
    assert {n["host"]: n["cluster_id"] for n in stored["nodes"]} == clients
    stranger = {"metadata": {"name": "x", "labels": {LABEL_RR_CLIENT_OF: "224.0.0.1"}}}
    assert len(stored_assignment([*as_stored(plan), stranger], plan)["nodes"]) == len(clients)


def test_one_worker_more_moves_others_without_stored_state_and_none_with_it():
    """The issue's case in small: a worker in a new rack, several clusters."""
    groups, hv = inventory(120, worker_racks=7)
    sets = {"mesh_max_nodes": 10, "rr_capacity": 25}
    before = plan_topology(groups, hv, sets)
    groups["worker"].append("worker-0500")
    hv["worker-0500"] = {"calico_bgp_ip": "10.1.200.1", "calico_rack": "new-rack"}
    naive = plan_topology(groups, hv, sets)
    kept = plan_topology(groups, hv, sets, previous=stored_assignment(as_stored(before), before))
    old = peers_of(before)
    moved_naive = {n for n, p in peers_of(naive).items() if n in old and old[n] != p}
    moved_kept = {n for n, p in peers_of(kept).items() if n in old and old[n] != p}
    assert len(moved_naive) > 1  # the problem exists in this inventory
    assert moved_kept == set()


@st.composite
def churn_cases(draw):
    workers = draw(st.integers(12, 70))
    capacity = draw(st.integers(6, 30))
    racks = draw(st.integers(0, 5))
    mgmt_racks = draw(st.sampled_from([("r1",), ("r1", "r2"), ("r1", "r2", "r3"), ()]))
    steps = draw(
        st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(1, 4), st.integers(0, 10**6)),
                 min_size=1, max_size=6)
    )
    return workers, capacity, racks, mgmt_racks, steps


@CHURN
@given(churn_cases())
def test_property_churn_of_k_workers_repeers_at_most_those_k(case):
    """Adding or removing k non-reflector nodes changes the peers of at most those k nodes; when the
    growth passes capacity (one more cluster), also the promoted reflectors and the reflector mesh."""
    workers, capacity, racks, mgmt_racks, steps = case
    groups, hv = inventory(workers, mgmt_racks=mgmt_racks, worker_racks=racks)
    sets = {"mesh_max_nodes": 5, "rr_capacity": capacity}
    plan = plan_topology(groups, hv, sets)
    next_index = workers + 1
    for action, k, seed in steps:
        reflector_hosts = {r["host"] for r in plan["reflectors"]}
        if action == "add":
            churned = set()
            for _unused in range(k):
                host = f"worker-{next_index:04d}"
                groups["worker"].append(host)
                hv[host] = _worker_vars(next_index + seed % 3, racks)
                hv[host]["calico_bgp_ip"] = f"10.3.{next_index // 256}.{next_index % 256}"
                churned.add(host)
                next_index += 1
        else:
            removable = sorted(h for h in groups["worker"] if h not in reflector_hosts)
            churned = {removable[(seed + i * 7919) % len(removable)] for i in range(min(k, len(removable) - 1))}
            groups["worker"] = [h for h in groups["worker"] if h not in churned]
        after = plan_topology(groups, hv, sets, previous=stored_assignment(as_stored(plan), plan))
        old, new = peers_of(plan), peers_of(after)
        changed = {n for n in old.keys() & new.keys() if old[n] != new[n]}
        old_rr = {r["host"]: r["cluster_id"] for r in plan["reflectors"]}
        new_rr = {r["host"]: r["cluster_id"] for r in after["reflectors"]}
        assert {h: c for h, c in new_rr.items() if h in old_rr} == old_rr  # no reflector moves
        if after["stats"]["clusters"] == plan["stats"]["clusters"]:
            assert new_rr == old_rr
            assert changed <= churned, changed - churned
        else:  # a cluster split: new clusters only, their reflectors promoted, no client moved
            assert after["stats"]["clusters"] > plan["stats"]["clusters"]
            promoted = set(new_rr) - set(old_rr)
            clients_changed = {n for n in changed if not new[n][0] and not old[n][0]}
            assert clients_changed <= churned
            assert changed <= churned | promoted | set(old_rr)
        plan = after


def test_example_1000_multi_cluster_plus_and_minus_one_worker():
    """The issue's measurement on the generated 1,000-node inventory, forced to several clusters."""
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "inventories/example-1000/hosts.yml").read_text())
    groups, hv = {}, {}
    for group, body in data["all"]["children"].items():
        groups[group] = list(body["hosts"])
        for host, host_vars in body["hosts"].items():
            hv.setdefault(host, {}).update(host_vars or {})
    sets = {"rr_capacity": 250}
    before = plan_topology(groups, hv, sets)
    assert before["stats"]["clusters"] == 4
    stored = stored_assignment(as_stored(before), before)
    groups["worker"] = [*groups["worker"], "worker-new"]
    hv["worker-new"] = {"calico_bgp_ip": "10.79.0.1", "calico_rack": "rack-new"}
    old = peers_of(before)

    def moved(plan: dict) -> set[str]:
        return {n for n, p in peers_of(plan).items() if n in old and old[n] != p}

    naive = moved(plan_topology(groups, hv, sets))
    kept = moved(plan_topology(groups, hv, sets, previous=stored))
    print(f"example-1000, 4 clusters, +1 worker in a new rack: {len(naive)} nodes re-peered without stored state")
    assert len(naive) > 50 and kept == set()
    groups["worker"] = [h for h in groups["worker"] if h not in ("worker-new", "worker-0500")]
    minus = plan_topology(groups, hv, sets, previous=stored)
    assert moved(minus) == set()
