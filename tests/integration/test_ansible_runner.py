"""The playbooks run through ``ansible-runner run`` on a private data directory, the way AWX runs them.

The result is read from the job events (``artifacts/<ident>/job_events/*.json``), not from the screen.
Layout: docs/ansible-runner.md. The collection comes from ``env/envvars`` (ANSIBLE_COLLECTIONS_PATH),
as an execution environment provides it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from playbook_run import COLLECTIONS, REPO

RUNNER = shutil.which("ansible-runner")
pytestmark = pytest.mark.skipif(RUNNER is None, reason="pip install ansible-runner")

_ETCD_PLAY = """\
- name: Mesh off, then read it back (a project playbook of a user's own)
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/kubescale.calico.etcd:
      endpoints: "{{ calico_etcd_endpoints }}"
  tasks:
    - name: Turn the node-to-node mesh off
      kubescale.calico.bgp_configuration:
        node_to_node_mesh: false
        as_number: 64513

    - name: Read the BGP configuration
      kubescale.calico.calico_resource_info:
        kind: BGPConfiguration
        name: default
"""


def private_data_dir(base: Path, inventory: dict, extravars: dict | None = None) -> Path:
    """project/ (the repository's playbooks), inventory/hosts.yml, env/envvars, env/extravars."""
    shutil.copytree(REPO / "playbooks", base / "project")
    (base / "project" / "mesh_off.yml").write_text(_ETCD_PLAY)
    (base / "inventory").mkdir()
    (base / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (base / "env").mkdir()
    (base / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False"}))
    (base / "env" / "extravars").write_text(yaml.safe_dump(extravars or {}))
    return base


def runner_run(pdd: Path, playbook: str, ident: str) -> tuple[int, list[dict]]:
    """``ansible-runner run``; its return code and the job events in order."""
    proc = subprocess.run([RUNNER, "run", str(pdd), "-p", playbook, "--ident", ident], capture_output=True,
                          text=True, timeout=600, check=False)
    events_dir = pdd / "artifacts" / ident / "job_events"
    assert events_dir.is_dir(), proc.stdout[-2000:] + proc.stderr[-2000:]
    events = [json.loads(p.read_text()) for p in events_dir.glob("*.json")]
    events.sort(key=lambda e: e["counter"])
    rc = int((pdd / "artifacts" / ident / "rc").read_text())
    return rc, events


def task_results(events: list[dict], task: str) -> list[dict]:
    return [e["event_data"]["res"] for e in events
            if e["event"] == "runner_on_ok" and e["event_data"].get("task") == task]


def _inventory() -> dict:
    hosts = {f"node-{i:02d}": {"calico_bgp_ip": f"10.88.0.{i}", "ansible_host": "192.0.2.1"} for i in range(1, 31)}
    groups = {"master": dict(list(hosts.items())[:1]), "management": dict(list(hosts.items())[1:4]),
              "worker": dict(list(hosts.items())[4:])}
    return {"all": {"children": {g: {"hosts": h} for g, h in groups.items()}}}


def test_plan_yml_through_ansible_runner_reports_in_the_job_events(tmp_path):
    pdd = private_data_dir(tmp_path / "pdd", _inventory(),
                           {"calico_mesh_max_nodes": 20, "calico_topology_report_dir": str(tmp_path / "report")})
    rc, events = runner_run(pdd, "plan.yml", "plan")
    assert rc == 0, [e.get("stdout") for e in events][-20:]
    (shown,) = task_results(events, "Show the plan")
    summary = shown["msg"]
    assert summary[0] == "mode: route_reflector (in-cluster reflectors)"
    assert "30 nodes > calico_mesh_max_nodes 20" in summary[1]
    assert events[-1]["event"] == "playbook_on_stats" and events[-1]["event_data"]["failures"] == {}
    assert (tmp_path / "report" / "plan.json").is_file()


def test_etcd_backed_playbook_through_ansible_runner(tmp_path, etcd_single):
    pdd = private_data_dir(tmp_path / "pdd", {"all": {"hosts": {}}},
                           {"calico_etcd_endpoints": etcd_single.endpoints})
    rc, events = runner_run(pdd, "mesh_off.yml", "mesh")
    assert rc == 0, [e.get("stdout") for e in events][-20:]
    (written,) = task_results(events, "Turn the node-to-node mesh off")
    assert written["changed"] is True
    (read,) = task_results(events, "Read the BGP configuration")
    assert read["count"] == 1
    assert read["resources"][0]["spec"]["nodeToNodeMeshEnabled"] is False
    assert read["resources"][0]["spec"]["asNumber"] == 64513
    # independently of the collection: the object is in the test etcd
    stored = etcd_single.etcdctl("get", "/calico/resources/v3/projectcalico.org/bgpconfigurations/default",
                                 "--print-value-only")
    assert json.loads(stored)["spec"]["nodeToNodeMeshEnabled"] is False


def test_a_failed_task_is_a_failed_event_and_a_non_zero_rc(tmp_path, etcd_single):
    """Bad input through the runner: the failure is in the events and nothing is written to etcd."""
    pdd = private_data_dir(tmp_path / "pdd", {"all": {"hosts": {}}},
                           {"calico_etcd_endpoints": etcd_single.endpoints})
    play = (pdd / "project" / "mesh_off.yml").read_text().replace("as_number: 64513", "as_number: 4294967296")
    (pdd / "project" / "mesh_off.yml").write_text(play)
    rc, events = runner_run(pdd, "mesh_off.yml", "bad")
    assert rc != 0
    (failed,) = [e["event_data"]["res"] for e in events if e["event"] == "runner_on_failed"]
    assert "asNumber: 4294967296 is outside the AS number range" in failed["msg"] and "\n" not in failed["msg"].strip()
    assert etcd_single.etcdctl("get", "/calico/", "--prefix", "--keys-only").strip() == ""
