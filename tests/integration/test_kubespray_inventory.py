"""A Kubespray-layout inventory (kube_control_plane, kube_node, etcd, calico_rr) through the playbooks.

playbooks/inventory_groups.yml adds the mapped hosts to the collection's groups; plan.yml, migrate.yml
and site.yml import it first. The example inventory's hosts do not exist: nothing is contacted.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from playbook_run import REPO, run_playbook

KUBESPRAY = REPO / "inventories" / "kubespray-example"

_PROBE = """\
- name: Mapping
  ansible.builtin.import_playbook: {groups_playbook}

- name: What the collection's plays see
  hosts: master:management:proxy:worker:route_reflectors
  gather_facts: false
  tasks:
    - name: Groups
      ansible.builtin.copy:
        content: "{{{{ {{'master': groups['master'] | default([]), 'management': groups['management'] | default([]),
                   'proxy': groups['proxy'] | default([]), 'worker': groups['worker'] | default([]),
                   'route_reflectors': groups['route_reflectors'] | default([]),
                   'play_hosts': ansible_play_hosts_all}} | to_json }}}}"
        dest: {dest}
        mode: "0600"
      delegate_to: localhost
      run_once: true
"""


def _probe(tmp_path: Path, inventory: Path, **extra) -> tuple[object, dict | None]:
    playbook = tmp_path / "probe.yml"
    dest = tmp_path / "groups.json"
    playbook.write_text(_PROBE.format(groups_playbook=REPO / "playbooks" / "inventory_groups.yml", dest=dest))
    proc = run_playbook(playbook, inventory=inventory, extra_vars=extra or None)
    return proc, json.loads(dest.read_text()) if dest.exists() else None


def test_plan_yml_plans_the_kubespray_example_with_calico_rr_as_reflectors(tmp_path):
    proc = run_playbook(REPO / "playbooks" / "plan.yml", inventory=KUBESPRAY,
                        extra_vars={"calico_topology_report_dir": str(tmp_path / "r")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert plan["mode"] == "route_reflector"
    reflectors = sorted(r["host"] for r in plan["reflectors"])
    assert reflectors == ["rr-1", "rr-2"]
    assert {r["cluster_id"] for r in plan["reflectors"]} == {"224.0.0.1"}  # calico_rr_cluster_id_base
    assert "228 nodes > calico_mesh_max_nodes 200" in proc.stdout


def test_mapped_groups_are_what_the_collection_plays_target(tmp_path):
    proc, seen = _probe(tmp_path, KUBESPRAY)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    inventory = yaml.safe_load((KUBESPRAY / "hosts.yml").read_text())["all"]["children"]
    assert seen["master"] == ["cp-1", "cp-2", "cp-3"]
    assert seen["management"] == ["etcd-1", "etcd-2", "etcd-3"]
    assert seen["route_reflectors"] == ["rr-1", "rr-2"] and seen["proxy"] == []
    assert seen["worker"] == list(inventory["kube_node"]["hosts"])  # control-plane nodes run workloads too
    assert len(seen["play_hosts"]) == 228


def test_default_mapping_adds_nothing_to_a_kubescale_inventory(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {
        "master": {"hosts": {"m1": {}}}, "worker": {"hosts": {"w1": {}, "w2": {}}},
        "kube_node": {"hosts": {"k1": {}}}}}}))
    proc, seen = _probe(tmp_path, inv)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert seen["master"] == ["m1"] and seen["worker"] == ["w1", "w2"] and seen["route_reflectors"] == []


def test_a_list_of_groups_maps_onto_one_and_a_bad_mapping_is_one_clear_error(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {
        "master": {"hosts": {"m1": {}}}, "kube_node": {"hosts": {"k1": {}}}, "gpu_node": {"hosts": {"g1": {}}}}}}))
    proc, seen = _probe(tmp_path, inv, calico_group_worker=["kube_node", "gpu_node"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sorted(seen["worker"]) == ["g1", "k1"]

    (tmp_path / "groups.json").unlink()
    proc, seen = _probe(tmp_path, inv, calico_group_worker={"kube_node": 1})
    assert proc.returncode != 0 and seen is None
    assert "calico_group_worker: must be a group name or a list of group names" in proc.stdout
