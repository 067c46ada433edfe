"""bgp_topology against a real etcd: the example-1000 plan lands as planned, in the safe order, once.

Uses the lead's ``etcd_single`` fixture (a real etcd 3.4 on loopback, wiped per test, stopped by PID).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from playbook_run import run_module, run_playbook

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import key_for
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.topology.apply import (
    TopologyApplyError,
    apply_plan,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    LABEL_RR,
    LABEL_RR_CLIENT_OF,
    LABEL_RR_CLUSTER,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    plan_topology,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import (
    objects_from_kvs,
    sessions,
    unreachable,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventories" / "example-1000" / "hosts.yml"
NODES = "/calico/resources/v3/projectcalico.org/nodes/"
PEERS = "/calico/resources/v3/projectcalico.org/bgppeers/"


def load_inventory(path: Path) -> tuple[dict, dict]:
    """groups and hostvars as Ansible sees them for the generated YAML inventory (no group vars used)."""
    data = yaml.safe_load(path.read_text())
    groups, hostvars = {}, {}
    for group, body in data["all"]["children"].items():
        groups[group] = list(body["hosts"])
        for host, hv in body["hosts"].items():
            if hv:
                hostvars.setdefault(host, {}).update(hv)
    return groups, hostvars


@pytest.fixture(scope="module")
def example():
    groups, hostvars = load_inventory(EXAMPLE)
    return groups, hostvars


@pytest.fixture
def store(etcd_single):
    client = etcd_single.client()
    yield CalicoStore(client)
    client.close()


def stored(client, prefix: str) -> dict[str, dict]:
    return {kv.key: json.loads(kv.value) for kv in client.range(prefix)}


def mod_revisions(client, prefix: str) -> dict[str, int]:
    return {kv.key: kv.mod_revision for kv in client.range(prefix, keys_only=True)}


def config(client) -> tuple[dict, int]:
    kv = client.get(key_for("BGPConfiguration", "default"))
    return json.loads(kv.value), kv.mod_revision


def test_example_1000_plan_lands_in_etcd(store, example):
    groups, hostvars = example
    plan = plan_topology(groups, hostvars)
    assert plan["mode"] == "route_reflector"
    result = apply_plan(store, plan)
    client = store.client
    assert result["changed"] is True
    assert len(result["created"]) == 1000 + len(plan["resources"]["bgppeers"]) + 1

    cfg, _unused = config(client)
    assert cfg["spec"]["nodeToNodeMeshEnabled"] is False
    assert cfg["spec"]["asNumber"] == 64512
    assert cfg["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert cfg["metadata"]["uid"] and cfg["metadata"]["creationTimestamp"]

    nodes = stored(client, NODES)
    assert len(nodes) == 1000
    reflectors = {r["name"]: r for r in plan["reflectors"]}
    for name, r in reflectors.items():
        node = nodes[NODES + name]
        assert node["spec"]["bgp"]["routeReflectorClusterID"] == r["cluster_id"]
        assert node["spec"]["bgp"]["ipv4Address"] == f"{r['ip']}/32"
        assert node["metadata"]["labels"][LABEL_RR] == "true"
        assert node["metadata"]["labels"][LABEL_RR_CLUSTER] == r["cluster_id"]
    clients = [n for key, n in nodes.items() if key[len(NODES) :] not in reflectors]
    assert len(clients) == 998
    assert all("routeReflectorClusterID" not in n["spec"]["bgp"] for n in clients)
    assert all(n["metadata"]["labels"][LABEL_RR_CLIENT_OF] == "224.0.0.1" for n in clients)
    assert (
        nodes[NODES + "worker-0001"]["spec"]["bgp"]["ipv4Address"] == hostvars["worker-0001"]["calico_bgp_ip"] + "/32"
    )

    peers = stored(client, PEERS)
    assert peers[PEERS + "kubescale-rr-mesh"]["spec"] == {
        "nodeSelector": f"has({LABEL_RR})",
        "peerSelector": f"has({LABEL_RR})",
    }
    assert peers[PEERS + "kubescale-rr-clients-224-0-0-1"]["spec"] == {
        "nodeSelector": f"{LABEL_RR_CLIENT_OF} == '224.0.0.1'",
        "peerSelector": f"{LABEL_RR_CLUSTER} == '224.0.0.1'",
    }
    assert all(p["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE for p in peers.values())


def test_rerun_changes_nothing(store, example):
    plan = plan_topology(*example)
    apply_plan(store, plan)
    revision = store.client.revision()
    again = apply_plan(store, plan)
    assert again["changed"] is False
    assert again["actions"] == [] and again["created"] == [] and again["updated"] == [] and again["deleted"] == []
    assert again["unchanged"] == 1000 + len(plan["resources"]["bgppeers"]) + 1
    assert store.client.revision() == revision


def test_check_mode_reports_everything_and_writes_nothing(etcd_single, example):
    plan = plan_topology(*example)
    client = etcd_single.client()
    try:
        revision = client.revision()
        result = apply_plan(CalicoStore(client, check_mode=True, want_diff=True), plan)
        assert result["changed"] is True
        assert len(result["actions"]) == 1000 + len(plan["resources"]["bgppeers"]) + 1
        assert result["actions"][-1] == "created BGPConfiguration default"
        assert len(result["diff"]["after"]) == len(result["actions"])
        assert client.revision() == revision
        assert client.count("/calico/") == 0
    finally:
        client.close()


def test_diff_mode_shows_each_changed_object(store, example):
    groups, hostvars = example
    plan = plan_topology(groups, hostvars)
    apply_plan(store, plan)
    hostvars = {h: dict(v) for h, v in hostvars.items()}
    hostvars["worker-0500"]["calico_bgp_ip"] = "10.99.0.5"
    changed = plan_topology(groups, hostvars)
    result = apply_plan(CalicoStore(store.client, want_diff=True), changed)
    key = NODES + "worker-0500"
    assert list(result["diff"]["after"]) == [key]
    assert (
        result["diff"]["before"][key]["spec"]["bgp"]["ipv4Address"]
        == example[1]["worker-0500"]["calico_bgp_ip"] + "/32"
    )
    assert result["diff"]["after"][key]["spec"]["bgp"]["ipv4Address"] == "10.99.0.5/32"
    assert result["actions"] == ["updated Node worker-0500 (spec.bgp.ipv4Address)"]


def small_inventory(workers: int) -> tuple[dict, dict]:
    groups = {
        "master": ["master-1"],
        "management": ["mgmt-1", "mgmt-2", "mgmt-3"],
        "proxy": ["proxy-1"],
        "worker": [f"worker-{i}" for i in range(1, workers + 1)],
    }
    hostvars = {}
    for i, host in enumerate(h for hosts in groups.values() for h in hosts):
        hostvars[host] = {"calico_bgp_ip": f"10.1.0.{i + 1}", "calico_rack": f"rack{i % 3 + 1}"}
    return groups, hostvars


def test_mesh_to_rr_to_mesh_in_safe_order(store):
    client = store.client
    groups, hostvars = small_inventory(20)
    mesh = plan_topology(groups, hostvars)
    rr = plan_topology(groups, hostvars, {"mesh_max_nodes": 10})
    assert (mesh["mode"], rr["mode"]) == ("mesh", "route_reflector")

    apply_plan(store, mesh)
    assert config(client)[0]["spec"]["nodeToNodeMeshEnabled"] is True
    assert client.count(PEERS) == 0

    # towards reflectors: peers, then client labels, then every reflector at one revision, then the mesh off
    result = apply_plan(store, rr)
    cfg, cfg_rev = config(client)
    assert cfg["spec"]["nodeToNodeMeshEnabled"] is False
    node_revs = mod_revisions(client, NODES)
    peer_revs = mod_revisions(client, PEERS)
    rr_nodes = [NODES + r["name"] for r in rr["reflectors"]]
    client_nodes = [k for k in node_revs if k not in rr_nodes]
    assert len({node_revs[k] for k in rr_nodes}) == 1  # one transaction
    assert max(peer_revs.values()) < min(node_revs[k] for k in client_nodes)
    assert max(node_revs[k] for k in client_nodes) < node_revs[rr_nodes[0]] < cfg_rev
    assert [s["step"] for s in result["steps"] if s["written"]] == [
        "BGPPeers created or updated", "Nodes: labels and addresses", "Nodes: reflectors promoted (one transaction)",
        "BGPConfiguration: mesh off",
    ]
    assert result["actions"][-1] == "updated BGPConfiguration default (spec.nodeToNodeMeshEnabled)"

    # back to the mesh: mesh on, then every reflector loses its cluster ID at one revision, then labels,
    # then the reflector peers go
    result = apply_plan(store, mesh)
    cfg, cfg_rev = config(client)
    assert cfg["spec"]["nodeToNodeMeshEnabled"] is True
    node_revs = mod_revisions(client, NODES)
    assert cfg_rev < node_revs[rr_nodes[0]] < min(node_revs[k] for k in client_nodes)
    assert len({node_revs[k] for k in rr_nodes}) == 1
    last_node_rev = max(node_revs.values())
    assert len(list(client.range(PEERS, revision=last_node_rev))) == len(rr["resources"]["bgppeers"])
    assert client.count(PEERS) == 0
    nodes = stored(client, NODES)
    assert all("routeReflectorClusterID" not in n["spec"]["bgp"] for n in nodes.values())
    assert not any(
        k.startswith("kubescale.io/rr") or k == LABEL_RR for n in nodes.values() for k in n["metadata"]["labels"]
    )
    assert result["actions"][0] == "updated BGPConfiguration default (spec.nodeToNodeMeshEnabled)"
    assert result["actions"][-1].startswith("deleted BGPPeer kubescale-rr-")
    assert apply_plan(store, mesh)["changed"] is False


def test_prepare_stops_before_mesh_off_and_finish_completes(store):
    groups, hostvars = small_inventory(20)
    apply_plan(store, plan_topology(groups, hostvars))
    rr = plan_topology(groups, hostvars, {"mesh_max_nodes": 10})
    prepared = apply_plan(store, rr, phase="prepare")
    assert prepared["changed"] is True
    assert config(store.client)[0]["spec"]["nodeToNodeMeshEnabled"] is True
    assert store.client.count(PEERS) == len(rr["resources"]["bgppeers"])
    finished = apply_plan(store, rr, phase="finish")
    assert finished["actions"] == ["updated BGPConfiguration default (spec.nodeToNodeMeshEnabled)"]


def test_node_merge_keeps_what_it_does_not_own(store):
    groups, hostvars = small_inventory(20)
    body = {
        "kind": "Node",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "worker-3", "labels": {"team": "blue", "kubescale.io/rr-cluster": "224.0.0.9"}},
        "spec": {
            "bgp": {"ipv4Address": f"{hostvars['worker-3']['calico_bgp_ip']}/24", "ipv4IPIPTunnelAddr": "192.168.7.1"},
            "orchRefs": [{"orchestrator": "k8s", "nodeName": "worker-3"}],
        },
    }
    store.apply([body], merge=False)
    apply_plan(store, plan_topology(groups, hostvars, {"mesh_max_nodes": 10}))
    node = store.get("Node", "worker-3")
    assert node["spec"]["orchRefs"] == [{"orchestrator": "k8s", "nodeName": "worker-3"}]
    assert node["spec"]["bgp"]["ipv4IPIPTunnelAddr"] == "192.168.7.1"
    assert node["spec"]["bgp"]["ipv4Address"].endswith("/24")  # same IP: calico-node's prefix kept
    labels = node["metadata"]["labels"]
    assert labels["team"] == "blue"
    assert "kubescale.io/rr-cluster" not in labels  # owned label, not a reflector in the plan
    assert labels[LABEL_RR_CLIENT_OF] == "224.0.0.1"


def test_prunes_only_its_own_peers(store):
    groups, hostvars = small_inventory(20)
    foreign = {
        "kind": "BGPPeer",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "tor-by-hand"},
        "spec": {"peerIP": "10.250.0.1", "asNumber": 65001},
    }
    stale = {
        "kind": "BGPPeer",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "kubescale-rr-clients-224-0-0-7", "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
        "spec": {"nodeSelector": "a == 'b'", "peerSelector": "c == 'd'"},
    }
    store.apply([foreign, stale], merge=False)
    result = apply_plan(store, plan_topology(groups, hostvars, {"mesh_max_nodes": 10}))
    names = {p["metadata"]["name"] for p in store.list("BGPPeer")}
    assert "tor-by-hand" in names
    assert "kubescale-rr-clients-224-0-0-7" not in names
    assert "deleted BGPPeer kubescale-rr-clients-224-0-0-7" in result["actions"]
    assert apply_plan(store, plan_topology(groups, hostvars, {"mesh_max_nodes": 10}), prune=False)["changed"] is False


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("resources"), r"plan\.resources: is required"),
        (lambda p: p.update(mode="ring"), r"plan\.mode: 'ring' is not one of mesh, route_reflector"),
        (
            lambda p: p["resources"]["bgppeers"][0]["metadata"]["labels"].clear(),
            r"plan\.resources\.bgppeers\[0\]\.metadata\.labels: must carry kubescale\.io/managed-by",
        ),
        (
            lambda p: p["resources"]["nodes"][3]["spec"]["bgp"].update(routeReflectorClusterID="rack-1"),
            r"routeReflectorClusterID: 'rack-1' is not a cluster ID",
        ),
    ],
)
def test_bad_plan_refused_before_any_write(store, mutate, message):
    groups, hostvars = small_inventory(20)
    plan = plan_topology(groups, hostvars, {"mesh_max_nodes": 10})
    mutate(plan)
    revision = store.client.revision()
    with pytest.raises(TopologyApplyError, match=message):
        apply_plan(store, plan)
    assert store.client.revision() == revision


PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: plan and apply
      kubescale.calico.bgp_topology:
        endpoints: {endpoints}
        plan: "{{{{ groups | kubescale.calico.bgp_topology_plan(hostvars, mesh_max_nodes=10) }}}}"
      register: applied
    - name: keep the result
      ansible.builtin.copy:
        content: "{{{{ applied | to_json }}}}"
        dest: "{result}"
"""


def test_module_through_ansible_playbook_with_the_filter(etcd_single, tmp_path):
    groups, hostvars = small_inventory(20)
    inventory = {"all": {"children": {g: {"hosts": {h: hostvars[h] for h in hosts}} for g, hosts in groups.items()}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result_file = tmp_path / "result.json"
    (tmp_path / "play.yml").write_text(PLAY.format(endpoints=json.dumps(etcd_single.endpoints), result=result_file))

    def play(*extra: str) -> dict:
        proc = run_playbook(tmp_path / "play.yml", *extra, inventory=tmp_path / "hosts.yml")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        return json.loads(result_file.read_text()) if result_file.exists() else {"stdout": proc.stdout}

    checked = play("--check", "--diff")
    assert "kubescale-rr-mesh" in checked["stdout"]  # diff shown; check mode wrote nothing
    client = etcd_single.client()
    try:
        assert client.count("/calico/") == 0
        first = play()
        assert first["changed"] is True and first["mode"] == "route_reflector"
        assert config(client)[0]["spec"]["nodeToNodeMeshEnabled"] is False
        second = play()
        assert second["changed"] is False
    finally:
        client.close()


def test_external_reflectors_give_nodes_peers_to_their_ips(store):
    groups, hostvars = small_inventory(20)
    groups["route_reflectors"] = ["bird-1", "bird-2"]
    hostvars["bird-1"] = {"calico_bgp_ip": "10.1.1.1", "calico_rack": "rack1"}
    hostvars["bird-2"] = {"calico_bgp_ip": "10.1.1.2", "calico_rack": "rack2"}
    plan = plan_topology(groups, hostvars, {"mesh_max_nodes": 10, "rr_kind": "external"})
    apply_plan(store, plan)
    client = store.client
    assert config(client)[0]["spec"]["nodeToNodeMeshEnabled"] is False
    peers = {p["metadata"]["name"]: p["spec"] for p in stored(client, PEERS).values()}
    assert peers == {
        "kubescale-rr-224-0-0-1-10-1-1-1": {
            "nodeSelector": f"{LABEL_RR_CLIENT_OF} == '224.0.0.1'",
            "peerIP": "10.1.1.1",
            "asNumber": 64512,
        },
        "kubescale-rr-224-0-0-1-10-1-1-2": {
            "nodeSelector": f"{LABEL_RR_CLIENT_OF} == '224.0.0.1'",
            "peerIP": "10.1.1.2",
            "asNumber": 64512,
        },
    }
    nodes = stored(client, NODES)
    assert len(nodes) == 25  # the BIRD hosts are not Calico nodes
    assert all("routeReflectorClusterID" not in n["spec"]["bgp"] for n in nodes.values())
    assert all(n["metadata"]["labels"][LABEL_RR_CLIENT_OF] == "224.0.0.1" for n in nodes.values())


# --------------------------------------------------------------------------------------------
# day 2 (issue 11): through the module, as Ansible runs it


def multi_cluster_inventory(workers: int = 90) -> tuple[dict, dict]:
    groups = {
        "master": ["master-1", "master-2", "master-3"],
        "management": ["mgmt-1", "mgmt-2", "mgmt-3"],
        "route_reflectors": [f"rr-{i}" for i in range(1, 9)],
        "worker": [f"worker-{i:03d}" for i in range(1, workers + 1)],
    }
    hostvars = {}
    for index, host in enumerate(h for hosts in groups.values() for h in hosts):
        hostvars[host] = {"calico_bgp_ip": f"10.3.{index // 200}.{index % 200 + 1}", "calico_rack": f"rack{index % 7}"}
    return groups, hostvars


MULTI = {"mesh_max_nodes": 10, "rr_capacity": 30}


def module(etcd, plan: dict, **extra) -> dict:
    result = run_module("bgp_topology", {"endpoints": etcd.endpoints, "plan": plan, **extra})
    assert result.get("failed") is not True, result.get("msg")
    return result


def model_state(client) -> dict:
    return objects_from_kvs(client.range("/calico/resources/v3/projectcalico.org/"))


def test_a_node_joined_outside_the_inventory_is_reached(etcd_single, tmp_path):
    groups, hostvars = multi_cluster_inventory()
    plan = plan_topology(groups, hostvars, MULTI)
    assert plan["stats"]["clusters"] >= 3
    module(etcd_single, plan)
    client = etcd_single.client()
    try:
        # calico-node registers itself on a host the inventory does not list
        joined = {
            "kind": "Node",
            "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": "autoscaled-1", "labels": {"kubernetes.io/hostname": "autoscaled-1"}},
            "spec": {"bgp": {"ipv4Address": "10.3.9.9/24"}},
        }
        CalicoStore(client).apply([joined], merge=False)
        state = model_state(client)
        assert unreachable(state) == {}
        first = {r["name"] for r in plan["reflectors"] if r["cluster_id"] == "224.0.0.1"}
        assert {a for a, b, _role in sessions(state) if b == "autoscaled-1"} == first

        revision = client.revision()
        report = tmp_path / "actions.txt"
        again = module(etcd_single, plan, report_file=str(report))
        assert again["changed"] is False and client.revision() == revision
        assert again["unplanned_nodes"] == {"count": 1, "names": ["autoscaled-1"]}
        assert (
            "nodes in the datastore but not in the plan: 1 (autoscaled-1); they peer with cluster 224.0.0.1 "
            "(BGPPeer kubescale-rr-default)" in again["summary"]
        )
        assert report.read_text().splitlines()[-1] == "(none)"
    finally:
        client.close()


def test_one_node_more_or_less_on_a_multi_cluster_plan_repeers_only_that_node(etcd_single):
    groups, hostvars = multi_cluster_inventory()
    before = plan_topology(groups, hostvars, MULTI)
    module(etcd_single, before)
    client = etcd_single.client()
    try:
        old_sessions = sessions(model_state(client))

        groups["worker"].append("worker-new")
        hostvars["worker-new"] = {"calico_bgp_ip": "10.3.8.1", "calico_rack": "rack-new"}
        naive = plan_topology(groups, hostvars, MULTI)  # made without `previous`, as the role does
        moved = [n["name"] for n in naive["nodes"] if n["name"] != "worker-new"
                 and n["cluster_id"] != next(m["cluster_id"] for m in before["nodes"] if m["name"] == n["name"])]
        assert len(moved) > 1  # the plan alone would re-peer other nodes: the datastore must win

        plus = module(etcd_single, naive)
        assert plus["assignment"]["source"] == "datastore" and plus["assignment"]["disagreed"] == len(moved)
        assert plus["created"] == [NODES + "worker-new"] and plus["updated"] == [] and plus["deleted"] == []
        new_sessions = sessions(model_state(client))
        assert {s for s in old_sessions ^ new_sessions if "worker-new" not in s[:2]} == set()
        assert any("worker-new" in s[:2] for s in new_sessions)

        groups["worker"].remove("worker-045")
        del hostvars["worker-045"]
        revision = client.revision()
        minus = module(etcd_single, plan_topology(groups, hostvars, MULTI))
        assert minus["changed"] is False and client.revision() == revision  # nobody else re-peered
        assert minus["unplanned_nodes"]["names"] == ["worker-045"]
    finally:
        client.close()


SPREAD_PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: plan and apply
      kubescale.calico.bgp_topology:
        endpoints: {endpoints}
        plan: "{{{{ groups | kubescale.calico.bgp_topology_plan(hostvars, mesh_max_nodes=10,
                                                              rr_require_spread=require) }}}}"
      register: applied
    - name: say what was done
      ansible.builtin.debug:
        msg: "{{{{ applied.summary }}}}"
"""


@pytest.mark.parametrize("require", [False, True])
def test_all_in_one_rack_warns_and_require_spread_refuses_before_any_write(etcd_single, tmp_path, require):
    groups, hostvars = small_inventory(20)
    for hv in hostvars.values():
        hv["calico_rack"] = "rack1"
    inventory = {"all": {"children": {g: {"hosts": {h: hostvars[h] for h in hosts}} for g, hosts in groups.items()}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(SPREAD_PLAY.format(endpoints=json.dumps(etcd_single.endpoints)))
    client = etcd_single.client()
    try:
        revision = client.revision()
        proc = run_playbook(tmp_path / "play.yml", inventory=tmp_path / "hosts.yml", extra_vars={"require": require})
        out = proc.stdout + proc.stderr
        if require:
            assert proc.returncode != 0
            assert "calico_rr_require_spread: reflector cluster 224.0.0.1 has all its reflectors in rack rack1" in out
            assert client.revision() == revision
        else:
            assert proc.returncode == 0, out[-3000:]
            assert "warning: reflector cluster 224.0.0.1 has all its reflectors in rack rack1" in out
            assert client.revision() > revision
    finally:
        client.close()


ROLE_PLAY = """\
- hosts: localhost
  gather_facts: false
  roles:
    - role: kubescale.calico.bgp_topology
      vars:
        bgp_topology_endpoints: {endpoints}
        bgp_topology_ca_cert: ""
        bgp_topology_client_cert: ""
        bgp_topology_client_key: ""
        bgp_topology_report_file: {report}
        calico_mesh_max_nodes: 10
"""


def test_the_role_prints_a_summary_and_files_every_action(etcd_single, tmp_path):
    groups, hostvars = multi_cluster_inventory()
    inventory = {"all": {"children": {g: {"hosts": {h: hostvars[h] for h in hosts}} for g, hosts in groups.items()}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    report = tmp_path / "out" / "actions.txt"
    (tmp_path / "play.yml").write_text(ROLE_PLAY.format(endpoints=json.dumps(etcd_single.endpoints), report=report))
    proc = run_playbook(tmp_path / "play.yml", inventory=tmp_path / "hosts.yml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    shown = proc.stdout[proc.stdout.index("Say what was done") :]
    assert "order of writes:" in shown and f"every action: {report}" in shown
    assert "created Node worker-050" not in shown  # 104 Nodes created, none listed on the screen
    actions = report.read_text().split("## actions\n\n", 1)[1].splitlines()
    assert len(actions) == 104 + 3 + 1  # Nodes; rr-mesh, rr-default, one cluster's peer; the BGPConfiguration
    assert "created Node worker-050" in actions


def test_unwritable_report_file_is_refused_before_any_write(etcd_single, tmp_path):
    groups, hostvars = small_inventory(20)
    plan = plan_topology(groups, hostvars, {"mesh_max_nodes": 10})
    client = etcd_single.client()
    try:
        revision = client.revision()
        result = run_module("bgp_topology", {"endpoints": etcd_single.endpoints, "plan": plan,
                                             "report_file": str(tmp_path)})
        assert result["failed"] is True
        assert result["msg"] == f"report_file: {tmp_path} is a directory; give a file path"
        assert client.revision() == revision
    finally:
        client.close()
