"""Unit tests of the BGP topology planner (plugins/module_utils/topology.py): cases and properties."""

from __future__ import annotations

import json
import os
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    LABEL_RACK,
    LABEL_RR,
    LABEL_RR_CLIENT_OF,
    LABEL_RR_CLUSTER,
    TopologyError,
    normalise_settings,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    plan_topology,
)


def inventory(workers=20, racks=4, masters=3, management=3, proxies=2, rr=0, zones=0):
    """Seed-shaped inventory: groups and hostvars with BGP IPs 10.x, racks and optional zones."""
    groups = {
        "master": [f"master-{i}" for i in range(1, masters + 1)],
        "management": [f"mgmt-{i}" for i in range(1, management + 1)],
        "proxy": [f"proxy-{i}" for i in range(1, proxies + 1)],
        "worker": [f"worker-{i:04d}" for i in range(1, workers + 1)],
        "route_reflectors": [f"rr-{i}" for i in range(1, rr + 1)],
    }
    hostvars = {}
    index = 0
    for hosts in groups.values():
        for host in hosts:
            index += 1
            hv = {"calico_bgp_ip": f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"}
            if racks:
                hv["calico_rack"] = f"rack{index % racks + 1:02d}"
            if zones:
                hv["calico_zone"] = f"zone{index % zones + 1}"
            hostvars[host] = hv
    return groups, hostvars


def node(plan, name):
    return next(n for n in plan["nodes"] if n["name"] == name)


def resource(plan, kind, name):
    return next(r for r in plan["resources"][kind] if r["metadata"]["name"] == name)


# --------------------------------------------------------------------------------------------
# mode and reason


def test_small_inventory_is_a_full_mesh():
    groups, hv = inventory(workers=12)
    plan = plan_topology(groups, hv)
    assert plan["mode"] == "mesh"
    assert "20 nodes <= calico_mesh_max_nodes 200" in plan["reason"]
    assert plan["stats"]["mesh_sessions"] == plan["stats"]["plan_sessions"] == 190
    assert plan["stats"]["max_sessions_on_node"] == 19
    assert plan["reflectors"] == []
    assert all(n["peers"] == [] and n["cluster_id"] is None and not n["route_reflector"] for n in plan["nodes"])
    config = resource(plan, "bgpconfigurations", "default")
    assert config["spec"] == {"nodeToNodeMeshEnabled": True, "asNumber": 64512}
    assert plan["resources"]["bgppeers"] == []


def test_large_inventory_gets_route_reflectors_from_management_first():
    groups, hv = inventory(workers=300, racks=10)
    plan = plan_topology(groups, hv)
    assert plan["mode"] == "route_reflector"
    assert "308 nodes > calico_mesh_max_nodes 200" in plan["reason"]
    names = [r["name"] for r in plan["reflectors"]]
    assert len(names) == 2 and all(n.startswith("mgmt-") for n in names)
    assert {r["cluster_id"] for r in plan["reflectors"]} == {"224.0.0.1"}
    assert len({r["rack"] for r in plan["reflectors"]}) == 2
    assert plan["stats"]["mesh_sessions"] == 308 * 307 // 2
    assert plan["stats"]["plan_sessions"] == 306 * 2 + 1
    assert plan["stats"]["sessions_per_reflector"] == {n: 307 for n in names}
    assert plan["stats"]["max_sessions_on_node"] == 307
    assert resource(plan, "bgpconfigurations", "default")["spec"]["nodeToNodeMeshEnabled"] is False


def test_mesh_threshold_is_inclusive():
    groups, hv = inventory(workers=2)
    assert plan_topology(groups, hv, {"calico_mesh_max_nodes": 10})["mode"] == "mesh"
    assert plan_topology(groups, hv, {"calico_mesh_max_nodes": 9})["mode"] == "route_reflector"


def test_forced_mesh_warns_and_forced_rr_warns():
    groups, hv = inventory(workers=300)
    plan = plan_topology(groups, hv, {"calico_bgp_mode": "mesh"})
    assert plan["mode"] == "mesh"
    assert any("forces a full mesh of 308 nodes" in w for w in plan["warnings"])
    small_groups, small_hv = inventory(workers=5)
    plan = plan_topology(small_groups, small_hv, {"bgp_mode": "route_reflector"})
    assert plan["mode"] == "route_reflector"
    assert any("overrides the size rule" in w for w in plan["warnings"])


def test_reflector_resources_in_cluster():
    groups, hv = inventory(workers=300)
    plan = plan_topology(groups, hv)
    rr = plan["reflectors"][0]
    rr_node = resource(plan, "nodes", rr["name"])
    assert rr_node["spec"]["bgp"]["routeReflectorClusterID"] == "224.0.0.1"
    assert rr_node["metadata"]["labels"][LABEL_RR] == "true"
    assert rr_node["metadata"]["labels"][LABEL_RR_CLUSTER] == "224.0.0.1"
    client = resource(plan, "nodes", "worker-0001")
    assert "routeReflectorClusterID" not in client["spec"]["bgp"]
    assert client["metadata"]["labels"][LABEL_RR_CLIENT_OF] == "224.0.0.1"
    assert client["spec"]["bgp"]["ipv4Address"] == f"{hv['worker-0001']['calico_bgp_ip']}/32"
    mesh = resource(plan, "bgppeers", "kubescale-rr-mesh")
    assert mesh["spec"] == {"nodeSelector": f"has({LABEL_RR})", "peerSelector": f"has({LABEL_RR})"}
    clients = resource(plan, "bgppeers", "kubescale-rr-clients-224-0-0-1")
    assert clients["spec"] == {
        "nodeSelector": f"{LABEL_RR_CLIENT_OF} == '224.0.0.1'",
        "peerSelector": f"{LABEL_RR_CLUSTER} == '224.0.0.1'",
    }
    assert node(plan, "worker-0001")["peers"] == sorted(r["name"] for r in plan["reflectors"])
    assert node(plan, rr["name"])["peers"] == [r["name"] for r in plan["reflectors"] if r["name"] != rr["name"]]


def test_every_resource_is_a_labelled_calico_v3_object():
    groups, hv = inventory(workers=300)
    plan = plan_topology(groups, hv, {"router_peers": [{"ip": "10.255.0.1", "as_number": 65000}]})
    for kind, items in plan["resources"].items():
        for item in items:
            assert item["apiVersion"] == "projectcalico.org/v3"
            assert (
                item["kind"] == {"bgpconfigurations": "BGPConfiguration", "nodes": "Node", "bgppeers": "BGPPeer"}[kind]
            )
            assert item["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
            assert set(item) == {"kind", "apiVersion", "metadata", "spec"}


def test_plan_is_json_serialisable_and_round_trips():
    groups, hv = inventory(workers=300)
    plan = plan_topology(groups, hv)
    assert json.loads(json.dumps(plan)) == plan


def test_nodes_sorted_by_name_with_required_keys():
    groups, hv = inventory(workers=30)
    plan = plan_topology(groups, hv)
    names = [n["name"] for n in plan["nodes"]]
    assert names == sorted(names)
    required = {"name", "ip", "group", "rack", "zone", "as_number", "route_reflector", "cluster_id", "peers"}
    assert all(required <= set(n) for n in plan["nodes"])
    assert {"nodes", "mesh_sessions", "plan_sessions", "sessions_per_reflector", "max_sessions_on_node"} <= set(
        plan["stats"]
    )


def test_several_clusters_when_capacity_demands():
    groups, hv = inventory(workers=92, rr=6)
    plan = plan_topology(groups, hv, {"mesh_max_nodes": 10, "rr_capacity": 40})
    # 106 nodes: K=2 leaves 102 clients > 80, K=3 leaves 100 clients <= 120
    assert plan["stats"]["clusters"] == 3
    assert [r["cluster_id"] for r in plan["reflectors"]] == ["224.0.0.1"] * 2 + ["224.0.0.2"] * 2 + ["224.0.0.3"] * 2
    assert all(r["name"].startswith("rr-") for r in plan["reflectors"])
    assert all(r["clients"] <= 40 for r in plan["reflectors"])
    assert sum(r["clients"] for r in plan["reflectors"]) == 2 * 100
    assert (
        len([p for p in plan["resources"]["bgppeers"] if p["metadata"]["name"].startswith("kubescale-rr-clients-")])
        == 3
    )


def test_cluster_id_base_setting():
    groups, hv = inventory(workers=300)
    plan = plan_topology(groups, hv, {"rr_cluster_id_base": "10.255.255.1"})
    assert {r["cluster_id"] for r in plan["reflectors"]} == {"10.255.255.1"}


def test_rr_per_client_three():
    groups, hv = inventory(workers=300, racks=6)
    plan = plan_topology(groups, hv, {"rr_per_client": 3})
    assert len(plan["reflectors"]) == 3
    assert len({r["rack"] for r in plan["reflectors"]}) == 3
    assert all(len(n["peers"]) == 3 for n in plan["nodes"] if not n["route_reflector"])


def test_reflectors_spread_over_zones_first():
    groups, hv = inventory(workers=300, racks=6, zones=3)
    plan = plan_topology(groups, hv, {"rr_per_client": 3})
    assert len({r["zone"] for r in plan["reflectors"]}) == 3
    labels = resource(plan, "nodes", "worker-0001")["metadata"]["labels"]
    assert labels["kubescale.io/zone"].startswith("zone")


def test_candidate_groups_setting_and_master_worker_combination():
    groups, hv = inventory(workers=300)
    groups["worker"] = groups["worker"] + groups["master"]  # masters also run workloads
    plan = plan_topology(groups, hv, {"rr_candidate_groups": ["master"]})
    assert all(r["name"].startswith("master-") for r in plan["reflectors"])
    assert node(plan, "master-1")["group"] == "master"
    assert plan["stats"]["nodes"] == 308


def test_route_reflectors_group_overrides_candidate_groups():
    groups, hv = inventory(workers=300, rr=3)
    plan = plan_topology(groups, hv)
    assert all(r["name"].startswith("rr-") for r in plan["reflectors"])
    assert node(plan, "rr-1")["group"] == "route_reflectors"
    assert resource(plan, "nodes", "rr-1")["metadata"]["labels"]["kubescale.io/group"] == "route-reflectors"


def test_route_reflectors_group_unused_in_mesh_warns():
    groups, hv = inventory(workers=5, rr=2)
    plan = plan_topology(groups, hv)
    assert plan["mode"] == "mesh"
    assert any("route_reflectors] is not used" in w for w in plan["warnings"])


def test_external_reflectors_peer_by_ip():
    groups, hv = inventory(workers=300, rr=2)
    plan = plan_topology(groups, hv, {"rr_kind": "external"})
    assert plan["reflector_kind"] == "external"
    assert {r["name"] for r in plan["reflectors"]} == {"rr-1", "rr-2"}
    assert not any(n["name"].startswith("rr-") for n in plan["nodes"])
    assert not any(n["route_reflector"] for n in plan["nodes"])
    assert plan["stats"]["nodes"] == 308
    assert all(r["clients"] == 308 for r in plan["reflectors"])
    peers = plan["resources"]["bgppeers"]
    assert len(peers) == 2
    ips = {hv["rr-1"]["calico_bgp_ip"], hv["rr-2"]["calico_bgp_ip"]}
    assert {p["spec"]["peerIP"] for p in peers} == ips
    assert all(p["spec"]["nodeSelector"] == f"{LABEL_RR_CLIENT_OF} == '224.0.0.1'" for p in peers)
    assert all(p["spec"]["asNumber"] == 64512 for p in peers)
    assert all("routeReflectorClusterID" not in n["spec"]["bgp"] for n in plan["resources"]["nodes"])
    assert node(plan, "worker-0001")["peers"] == ["rr-1", "rr-2"]
    assert plan["stats"]["plan_sessions"] == 308 * 2 + 1


def test_external_spare_reflector_hosts_warn():
    groups, hv = inventory(workers=300, rr=3)
    plan = plan_topology(groups, hv, {"rr_kind": "external"})
    assert len(plan["reflectors"]) == 2
    assert any("not needed by the plan" in w for w in plan["warnings"])


# --------------------------------------------------------------------------------------------
# inputs


def test_bgp_ip_falls_back_to_default_ipv4_fact_then_ansible_host():
    groups = {"worker": ["a", "b", "c"]}
    hv = {
        "a": {"calico_bgp_ip": "10.0.0.1", "ansible_default_ipv4": {"address": "10.9.9.9", "prefix": "24"}},
        "b": {"ansible_default_ipv4": {"address": "10.0.0.2", "prefix": "24"}, "ansible_host": "10.8.8.8"},
        "c": {"ansible_host": "10.0.0.3"},
    }
    plan = plan_topology(groups, hv)
    assert [n["ip"] for n in plan["nodes"]] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    addresses = [n["spec"]["bgp"]["ipv4Address"] for n in plan["resources"]["nodes"]]
    assert addresses == ["10.0.0.1/32", "10.0.0.2/24", "10.0.0.3/32"]


def test_hostname_ansible_host_is_not_an_address():
    with pytest.raises(TopologyError, match=r"hostvars\[a\]\.calico_bgp_ip: no BGP IPv4 address"):
        plan_topology({"worker": ["a"]}, {"a": {"ansible_host": "a.example.org"}})


def test_calico_node_name_overrides_inventory_name():
    plan = plan_topology(
        {"worker": ["Host_A"]}, {"Host_A": {"calico_bgp_ip": "10.0.0.1", "calico_node_name": "host-a"}}
    )
    assert plan["nodes"][0]["name"] == "host-a" and plan["nodes"][0]["host"] == "Host_A"


def test_settings_accept_plain_and_prefixed_names():
    assert normalise_settings({"calico_rr_capacity": 5})["rr_capacity"] == 5
    assert normalise_settings({"rr_capacity": "7"})["rr_capacity"] == 7
    assert normalise_settings(None, calico_as_number="1.10")["as_number"] == 65546


def test_per_host_as_number_in_mesh():
    groups, hv = inventory(workers=3)
    hv["worker-0001"]["calico_as_number"] = 65001
    hv["worker-0002"]["calico_as_number"] = 64512
    plan = plan_topology(groups, hv)
    assert resource(plan, "nodes", "worker-0001")["spec"]["bgp"]["asNumber"] == 65001
    assert "asNumber" not in resource(plan, "nodes", "worker-0002")["spec"]["bgp"]
    assert node(plan, "worker-0002")["as_number"] == 64512


def test_router_peers_global_rack_and_node_scopes():
    groups, hv = inventory(workers=20, racks=4)
    tor = {"ip": "10.250.0.1", "as_number": 65001}
    for _host, v in hv.items():
        if v["calico_rack"] == "rack02":
            v["calico_router_peers"] = [tor]
    hv["worker-0001"]["calico_router_peers"] = [
        *hv["worker-0001"].get("calico_router_peers", []),
        {"ip": "10.250.9.9", "as": "65009"},
    ]
    everywhere = {"ip": "10.250.0.254", "as_number": 65000}
    for v in hv.values():
        v.setdefault("calico_router_peers", [])
        v["calico_router_peers"] = v["calico_router_peers"] + [everywhere]
    plan = plan_topology(groups, hv, {"router_peers": [{"ip": "10.250.0.253", "as_number": 65000}]})
    scopes = {(p["ip"], p["scope"]) for p in plan["router_peers"]}
    assert scopes == {
        ("10.250.0.253", "global"),
        ("10.250.0.254", "global"),
        ("10.250.0.1", "rack"),
        ("10.250.9.9", "node"),
    }
    rack_peer = resource(plan, "bgppeers", "kubescale-router-rack-rack02-10-250-0-1")
    assert rack_peer["spec"] == {"nodeSelector": f"{LABEL_RACK} == 'rack02'", "peerIP": "10.250.0.1", "asNumber": 65001}
    node_peer = resource(plan, "bgppeers", "kubescale-router-node-worker-0001-10-250-9-9")
    assert node_peer["spec"] == {"node": "worker-0001", "peerIP": "10.250.9.9", "asNumber": 65009}
    rack02 = sum(1 for v in hv.values() if v["calico_rack"] == "rack02")
    assert plan["stats"]["router_sessions"] == 28 * 2 + rack02 + 1


def test_previous_plan_keeps_reflectors():
    groups, hv = inventory(workers=300, rr=4)
    first = plan_topology(groups, hv)
    kept = {r["host"]: r["cluster_id"] for r in first["reflectors"]}
    other = [h for h in groups["route_reflectors"] if h not in kept]
    # a previous assignment naming other hosts wins over the hash order
    forced = plan_topology(groups, hv, previous={other[0]: "224.0.0.1", other[1]: "224.0.0.1"})
    assert {r["host"] for r in forced["reflectors"]} == set(other)
    assert plan_topology(groups, hv, previous=first) == first


# --------------------------------------------------------------------------------------------
# bad input: each refused with its message


BAD_SETTINGS = [
    ({"calico_as_number": 0}, r"calico_as_number: AS number 0 is reserved"),
    ({"calico_as_number": 4294967296}, r"calico_as_number: 4294967296 is outside the AS number range"),
    ({"calico_as_number": "70000.1"}, r"calico_as_number: asdot '70000.1' needs both parts in 0–65535"),
    ({"calico_as_number": "abc"}, r"calico_as_number: 'abc' is not an AS number"),
    ({"calico_as_number": True}, r"calico_as_number: True is not an AS number"),
    ({"calico_rr_per_client": 1}, r"calico_rr_per_client: 1 must be an integer >= 2"),
    ({"calico_rr_capacity": 0}, r"calico_rr_capacity: 0 must be an integer >= 1"),
    ({"calico_mesh_max_nodes": "many"}, r"calico_mesh_max_nodes: 'many' must be an integer >= 0"),
    ({"calico_bgp_mode": "ring"}, r"calico_bgp_mode: 'ring' must be one of auto, mesh, route_reflector"),
    ({"calico_rr_kind": "bird"}, r"calico_rr_kind: 'bird' must be one of in_cluster, external"),
    ({"calico_rr_cluster_id_base": "224.0.0"}, r"calico_rr_cluster_id_base: '224.0.0' is not a cluster ID"),
    ({"calico_rr_cluster_id_base": "rack-1"}, r"calico_rr_cluster_id_base: 'rack-1' is not a cluster ID"),
    ({"calico_rr_candidate_groups": "management"}, r"calico_rr_candidate_groups: 'management' must be a list"),
    (
        {"calico_router_peers": [{"ip": "10.0.0.300", "as_number": 1}]},
        r"calico_router_peers\[0\]\.ip: '10.0.0.300' is not",
    ),
    ({"calico_router_peers": [{"ip": "10.0.0.1"}]}, r"calico_router_peers\[0\]: ip and as_number are required"),
    ({"calico_router_peers": {"ip": "10.0.0.1"}}, r"calico_router_peers: must be a list"),
    ({"calico_mesh_size": 3}, r"calico_mesh_size: unknown setting"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_SETTINGS, ids=[m for _unused, m in BAD_SETTINGS])
def test_bad_settings_are_refused(bad, message):
    groups, hv = inventory(workers=3)
    with pytest.raises(TopologyError, match=message):
        plan_topology(groups, hv, bad)


def test_duplicate_bgp_ip_is_refused():
    groups, hv = inventory(workers=3)
    hv["worker-0003"]["calico_bgp_ip"] = hv["worker-0001"]["calico_bgp_ip"]
    with pytest.raises(
        TopologyError, match=r"hostvars\[worker-0003\]\.calico_bgp_ip: 10\.0\.0\.\d+ is also the BGP IP of worker-0001"
    ):
        plan_topology(groups, hv)


def test_duplicate_ip_between_node_and_external_reflector_is_refused():
    groups, hv = inventory(workers=3, rr=2)
    hv["rr-2"]["calico_bgp_ip"] = hv["worker-0002"]["calico_bgp_ip"]
    with pytest.raises(TopologyError, match=r"worker-0002\]\.calico_bgp_ip: .* is also the BGP IP of rr-2"):
        plan_topology(groups, hv, {"rr_kind": "external"})


def test_host_in_two_node_groups_is_refused():
    groups, hv = inventory(workers=3)
    groups["proxy"].append("master-1")
    with pytest.raises(TopologyError, match=r"host master-1 is in node groups master and proxy"):
        plan_topology(groups, hv)


def test_external_reflector_that_is_also_a_node_is_refused():
    groups, hv = inventory(workers=300, rr=2)
    groups["route_reflectors"].append("worker-0001")
    with pytest.raises(TopologyError, match=r"groups\[route_reflectors\]: worker-0001 also in a node group"):
        plan_topology(groups, hv, {"rr_kind": "external"})


def test_fewer_candidates_than_needed_is_refused():
    groups, hv = inventory(workers=3000)
    with pytest.raises(
        TopologyError, match=r"need 4 reflector cluster\(s\) x 2 reflectors = 8 reflectors .* only 6 candidate"
    ):
        plan_topology(groups, hv, {"rr_candidate_groups": ["management", "master"]})


def test_forced_rr_without_candidates_is_refused():
    groups, hv = inventory(workers=10, management=0, masters=0)
    with pytest.raises(TopologyError, match=r"route reflector mode needs reflector candidates, none found"):
        plan_topology(groups, hv, {"bgp_mode": "route_reflector", "rr_candidate_groups": ["management", "master"]})


def test_external_without_reflector_hosts_is_refused():
    groups, hv = inventory(workers=300)
    with pytest.raises(
        TopologyError, match=r"groups\[route_reflectors\]: route reflector mode needs reflector candidates"
    ):
        plan_topology(groups, hv, {"rr_kind": "external"})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("calico_rack", "Rack_1", r"hostvars\[worker-0001\]\.calico_rack: 'Rack_1' is not a DNS-1123 label"),
        ("calico_rack", "r" * 64, r"calico_rack: 'r+' is not a DNS-1123 label"),
        ("calico_zone", "-zone", r"hostvars\[worker-0001\]\.calico_zone: '-zone' is not a DNS-1123 label"),
        ("calico_as_number", 0, r"hostvars\[worker-0001\]\.calico_as_number: AS number 0 is reserved"),
        ("calico_as_number", "65536.0", r"hostvars\[worker-0001\]\.calico_as_number: asdot '65536.0' needs both parts"),
        ("calico_bgp_ip", "10.0.0.256", r"hostvars\[worker-0001\]\.calico_bgp_ip: '10.0.0.256' is not an IPv4"),
        ("calico_bgp_ip", "fd00::1", r"hostvars\[worker-0001\]\.calico_bgp_ip: 'fd00::1' is not an IPv4"),
        (
            "calico_node_name",
            "Worker_1",
            r"hostvars\[worker-0001\]\.calico_node_name: 'Worker_1' is not a DNS-1123 subdomain",
        ),
        ("calico_router_peers", [{"ip": "10.0.0.1", "as_number": -1}], r"calico_router_peers\[0\]\.as_number: -1"),
    ],
)
def test_bad_hostvars_are_refused(field, value, message):
    groups, hv = inventory(workers=3)
    hv["worker-0001"][field] = value
    with pytest.raises(TopologyError, match=message):
        plan_topology(groups, hv)


def test_per_host_as_differing_in_rr_mode_is_refused():
    groups, hv = inventory(workers=300)
    hv["worker-0007"]["calico_as_number"] = 65001
    with pytest.raises(
        TopologyError, match=r"worker-0007\]\.calico_as_number: 65001 differs from calico_as_number 64512"
    ):
        plan_topology(groups, hv)


def test_invalid_previous_cluster_id_is_refused():
    groups, hv = inventory(workers=300)
    with pytest.raises(TopologyError, match=r"previous\[mgmt-1\]: 'rack-1' is not a cluster ID"):
        plan_topology(groups, hv, previous={"mgmt-1": "rack-1"})


def test_empty_inventory_and_missing_hostvars_are_refused():
    with pytest.raises(TopologyError, match=r"groups: no hosts in the node groups"):
        plan_topology({"worker": []}, {})
    with pytest.raises(TopologyError, match=r"hostvars\[ghost\]: host is in group worker but has no hostvars"):
        plan_topology({"worker": ["ghost"]}, {})


def test_per_client_too_many_for_tiny_rr_inventory_is_refused():
    groups = {"worker": ["a", "b"], "management": ["a", "b"]}
    hv = {"a": {"calico_bgp_ip": "10.0.0.1"}, "b": {"calico_bgp_ip": "10.0.0.2"}}
    with pytest.raises(TopologyError, match=r"calico_rr_per_client: 2 reflectors leave no clients among 2 nodes"):
        plan_topology(groups, hv, {"bgp_mode": "route_reflector"})


# --------------------------------------------------------------------------------------------
# properties


@st.composite
def rr_inventories(draw):
    """In-cluster reflector inventories with small capacities so several clusters occur."""
    per = draw(st.integers(2, 3))
    capacity = draw(st.integers(3, 40))
    workers = draw(st.integers(1, 150))
    racks = draw(st.integers(1, 6))
    zones = draw(st.sampled_from([0, 0, 2, 3]))
    n_total = workers + 8
    k = 1
    while n_total + 0 - k * per > k * capacity:  # reflectors from the route_reflectors group are nodes too
        k += 1
    candidates = k * per + draw(st.integers(0, 4))
    # recompute with the candidates counted as nodes
    n_total += candidates
    k = 1
    while n_total - k * per > k * capacity:
        k += 1
    assume(k * per <= candidates)
    groups, hv = inventory(workers=workers, racks=racks, rr=candidates, zones=zones)
    rr_racks = draw(st.lists(st.integers(1, racks), min_size=candidates, max_size=candidates))
    for host, rack in zip(groups["route_reflectors"], rr_racks, strict=True):
        hv[host]["calico_rack"] = f"rack{rack:02d}"
    sets = {"mesh_max_nodes": 5, "rr_capacity": capacity, "rr_per_client": per}
    return groups, hv, sets


FAST = settings(
    max_examples=int(os.environ.get("TOPOLOGY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _domains_feasible(plan, hv, groups):
    per = plan["settings"]["rr_per_client"]
    k = plan["stats"]["clusters"]
    counts = {}
    for host in groups["route_reflectors"]:
        dom = (hv[host].get("calico_zone"), hv[host].get("calico_rack"))
        counts[dom] = counts.get(dom, 0) + 1
    return sum(min(c, k * (per - 1)) for c in counts.values()) >= k * per


@FAST
@given(rr_inventories())
def test_property_clients_have_enough_reflectors_in_two_domains(case):
    groups, hv, sets = case
    plan = plan_topology(groups, hv, sets)
    per = sets["rr_per_client"]
    by_name = {r["name"]: r for r in plan["reflectors"]}
    feasible = _domains_feasible(plan, hv, groups)
    for n in plan["nodes"]:
        if n["route_reflector"]:
            continue
        assert len(n["peers"]) >= per >= 2
        if feasible:
            assert len({(by_name[p]["zone"], by_name[p]["rack"]) for p in n["peers"]}) >= 2


@FAST
@given(rr_inventories())
def test_property_no_reflector_over_capacity(case):
    groups, hv, sets = case
    plan = plan_topology(groups, hv, sets)
    assert all(r["clients"] <= sets["rr_capacity"] for r in plan["reflectors"])
    served = {}
    for n in plan["nodes"]:
        for p in n["peers"] if not n["route_reflector"] else []:
            served[p] = served.get(p, 0) + 1
    assert {r["name"]: served.get(r["name"], 0) for r in plan["reflectors"]} == {
        r["name"]: r["clients"] for r in plan["reflectors"]
    }


@FAST
@given(rr_inventories(), st.randoms(use_true_random=False))
def test_property_same_inventory_same_plan(case, rnd: random.Random):
    groups, hv, sets = case
    plan = plan_topology(groups, hv, sets)
    shuffled_groups = {g: rnd.sample(hosts, len(hosts)) for g, hosts in reversed(list(groups.items()))}
    shuffled_hv = dict(rnd.sample(list(hv.items()), len(hv)))
    assert plan_topology(shuffled_groups, shuffled_hv, sets) == plan
    assert json.dumps(plan, sort_keys=True) == json.dumps(plan_topology(groups, hv, sets), sort_keys=True)


def _reflector_ids(plan):
    return {r["host"]: r["cluster_id"] for r in plan["reflectors"]}


@FAST
@given(rr_inventories(), st.integers(1, 30))
def test_property_adding_a_worker_never_moves_reflectors(case, rack):
    groups, hv, sets = case
    before = plan_topology(groups, hv, sets)
    groups["worker"].append("worker-new")
    hv["worker-new"] = {"calico_bgp_ip": "10.200.0.1", "calico_rack": f"rack{rack:02d}"}
    try:
        after = plan_topology(groups, hv, sets, previous=before)
    except TopologyError as exc:  # the one more cluster needs more candidates than there are
        assert "candidate" in str(exc)
        return
    old, new = _reflector_ids(before), _reflector_ids(after)
    assert all(new.get(h) == cid for h, cid in old.items())
    if after["stats"]["clusters"] == before["stats"]["clusters"]:
        assert new == old
        # without a previous plan too: candidates are not workers, so nothing moves
        assert _reflector_ids(plan_topology(groups, hv, sets)) == old
        unchanged = [n for n in before["nodes"] if not n["route_reflector"]]
        after_nodes = {n["name"]: n for n in after["nodes"]}
        assert all(after_nodes[n["name"]]["peers"] == n["peers"] for n in unchanged)


@FAST
@given(rr_inventories(), st.data())
def test_property_removing_a_reflector_moves_only_its_clients(case, data):
    groups, hv, sets = case
    before = plan_topology(groups, hv, sets)
    victim = data.draw(st.sampled_from(sorted(_reflector_ids(before))))
    cluster = _reflector_ids(before)[victim]
    groups["route_reflectors"].remove(victim)
    del hv[victim]
    try:
        after = plan_topology(groups, hv, sets, previous=before)
    except TopologyError as exc:
        assert "candidate" in str(exc)
        return
    if after["stats"]["clusters"] != before["stats"]["clusters"]:
        # no spare candidate to replace the victim: the planner falls back to fewer clusters
        per = sets["rr_per_client"]
        assert len(groups["route_reflectors"]) < before["stats"]["clusters"] * per
        return
    old, new = _reflector_ids(before), _reflector_ids(after)
    replacements = set(new) - set(old)
    assert {h: c for h, c in new.items() if h not in replacements} == {h: c for h, c in old.items() if h != victim}
    assert all(new[h] == cluster for h in replacements)
    after_nodes = {n["host"]: n for n in after["nodes"]}
    for n in before["nodes"]:
        if n["route_reflector"] or n["host"] in replacements or n["cluster_id"] == cluster:
            continue
        assert after_nodes[n["host"]]["peers"] == n["peers"]
        assert after_nodes[n["host"]]["cluster_id"] == n["cluster_id"]
