"""Unit tests of the plan report (topology_report.py) and the bgp_topology_plan filter wrapper."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from ansible.errors import AnsibleFilterError
from test_topology import inventory

from ansible_collections.kubescale.calico.plugins.filter.bgp_topology_plan import FilterModule, bgp_topology_plan
from ansible_collections.kubescale.calico.plugins.module_utils.topology import report as topology_report
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def rr_plan():
    groups, hv = inventory(workers=400, racks=8, zones=2, rr=6)
    return plan_topology(groups, hv, {"rr_capacity": 150})


@pytest.fixture(scope="module")
def mesh_plan():
    return plan_topology(*inventory(workers=30))


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text for t in root.iter(f"{SVG_NS}text")]


def test_svg_is_well_formed_and_shows_reflectors_racks_and_sessions(rr_plan):
    svg = topology_report.svg(rr_plan)
    words = texts(svg)
    assert f"{rr_plan['stats']['mesh_sessions']:,}" in words
    assert f"{rr_plan['stats']['plan_sessions']:,}" in words
    for r in rr_plan["reflectors"]:
        assert any(w.startswith(f"{r['name']}  {r['ip']}") for w in words)
    for cid in {r["cluster_id"] for r in rr_plan["reflectors"]}:
        assert f"cluster {cid}" in words
    racks = {n["rack"] for n in rr_plan["nodes"]}
    assert racks <= set(words)


def test_svg_of_a_mesh_says_full_mesh(mesh_plan):
    words = texts(topology_report.svg(mesh_plan))
    assert "BGP topology: full node-to-node mesh" in words
    assert not any(w.startswith("cluster ") for w in words)


def test_markdown_has_the_numbers_and_tables(rr_plan):
    md = topology_report.markdown(rr_plan)
    assert "![reflectors, racks and sessions](topology.svg)" in md
    assert f"| BGP sessions, full mesh n(n-1)/2 | {rr_plan['stats']['mesh_sessions']:,} |" in md
    assert rr_plan["reason"] in md
    for r in rr_plan["reflectors"]:
        assert f"| {r['name']} | {r['ip']} | {r['cluster_id']} |" in md
    assert "`kubescale-rr-mesh`" in md


def test_summary_lines(rr_plan):
    lines = topology_report.summary(rr_plan)
    assert lines[0] == "mode: route_reflector (in-cluster reflectors)"
    cluster_lines = [line for line in lines if line.startswith("cluster ")]
    assert len(cluster_lines) == rr_plan["stats"]["clusters"]
    assert all(any(f"{r['name']} (" in line for line in cluster_lines) for r in rr_plan["reflectors"])
    assert "nodes not in the plan (autoscaled, not yet in the inventory) peer with cluster 224.0.0.1" in lines


def test_summaries_stay_short_at_5000_nodes(tmp_path):
    """The plan's and the apply's summaries are at most 30 lines, the full action list goes to the file."""
    groups, hv = inventory(workers=4990, racks=40, zones=3, rr=120)
    plan = plan_topology(groups, hv, {"rr_capacity": 100, "calico_rr_candidate_groups": ["management"]})
    assert plan["stats"]["clusters"] > 30 and plan["stats"]["nodes"] == 5118
    assert len(topology_report.summary(plan)) <= 30
    actions = [f"created Node worker-{i:04d}" for i in range(5000)]
    result = {
        "mode": "route_reflector", "mesh_before": True, "created": actions, "updated": [], "deleted": [],
        "unchanged": 0, "actions": actions, "plan_warnings": [f"w{i}" for i in range(40)],
        "assignment": {"source": "datastore", "reflectors": 100, "clients": 4900, "disagreed": 1},
        "steps": [{"step": "BGPPeers created or updated", "written": 52}, {"step": "BGPPeers pruned", "written": 0}],
        "unplanned_nodes": {"count": 25, "names": [f"auto-{i}" for i in range(10)]},
        "default_cluster": "224.0.0.1", "report_file": str(tmp_path / "apply.txt"),
    }
    lines = topology_report.apply_summary(result)
    assert len(lines) <= 30
    assert "nodes in the datastore but not in the plan: 25 (auto-0, auto-1, auto-2, auto-3, auto-4, auto-5, " \
        "auto-6, auto-7 and 17 more); they peer with cluster 224.0.0.1 (BGPPeer kubescale-rr-default)" in lines
    assert "... and 32 more warnings" in lines
    topology_report.write_apply_report(result["report_file"], result)
    text = (tmp_path / "apply.txt").read_text().splitlines()
    assert text[-5000:] == actions


def test_write_report_writes_once_and_honours_check_mode(rr_plan, tmp_path):
    dest = tmp_path / "report"
    checked = topology_report.write_report(rr_plan, str(dest), check_mode=True)
    assert checked["changed"] is True and len(checked["written"]) == 3
    assert not dest.exists()
    first = topology_report.write_report(rr_plan, str(dest))
    assert first["changed"] is True
    assert json.loads((dest / "plan.json").read_text()) == rr_plan
    assert (dest / "topology.svg").read_text().startswith("<svg")
    again = topology_report.write_report(rr_plan, str(dest))
    assert again["changed"] is False and again["written"] == []


def test_write_report_refuses_bad_input(rr_plan, tmp_path):
    with pytest.raises(topology_report.ReportError, match=r"plan: not a bgp_topology_plan result, missing mode"):
        topology_report.write_report({"nodes": []}, str(tmp_path))
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(topology_report.ReportError, match=r"dest: .* exists and is not a directory"):
        topology_report.write_report(rr_plan, str(target))


class FakeHostvars(dict):
    """Like Ansible's HostVars: an unknown host gives an Undefined-like object, not a KeyError."""

    def __getitem__(self, host):
        return super().get(host, "UNDEFINED")


def test_filter_plans_and_treats_unknown_hosts_as_missing():
    groups, hv = inventory(workers=5)
    plan = bgp_topology_plan(groups, FakeHostvars(hv), settings={"calico_mesh_max_nodes": 3}, rr_capacity=100)
    assert plan["mode"] == "route_reflector"
    assert plan["settings"]["rr_capacity"] == 100
    groups["worker"].append("ghost")
    with pytest.raises(AnsibleFilterError, match=r"bgp_topology_plan: hostvars\[ghost\]: host is in group worker"):
        bgp_topology_plan(groups, FakeHostvars(hv))
    assert FilterModule().filters()["bgp_topology_plan"] is bgp_topology_plan


def test_filter_none_settings_keep_defaults():
    groups, hv = inventory(workers=5)
    plan = bgp_topology_plan(groups, hv, settings={"mesh_max_nodes": None, "rr_kind": None})
    assert plan["settings"]["mesh_max_nodes"] == 200 and plan["reflector_kind"] == "in_cluster"
