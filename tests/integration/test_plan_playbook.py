"""playbooks/plan.yml on an inventory whose hosts do not exist: it plans and reports without contacting them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_inventory(path: Path, duplicate: bool = False) -> None:
    hosts = {}
    for i in range(1, 31):
        group = "master" if i == 1 else "management" if i <= 4 else "proxy" if i <= 6 else "worker"
        ip = f"10.77.0.{i}" if not (duplicate and i == 30) else "10.77.0.29"
        # ansible_host points nowhere reachable: a contacted host would fail the play
        hosts.setdefault(group, {})[f"node-{i:02d}"] = {
            "calico_bgp_ip": ip,
            "calico_rack": f"r{i % 3}",
            "ansible_host": "192.0.2.1",
            "ansible_connection": "ssh",
        }
    inventory = {
        "all": {"children": {g: {"hosts": h} for g, h in hosts.items()}, "vars": {"calico_mesh_max_nodes": 20}}
    }
    path.write_text(yaml.safe_dump(inventory))


def run_plan(tmp_path: Path, inventory: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False")
    return subprocess.run(
        [
            shutil.which("ansible-playbook") or "ansible-playbook",
            "-i",
            str(inventory),
            str(REPO / "playbooks" / "plan.yml"),
            "-e",
            f"calico_topology_report_dir={tmp_path / 'r'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_plan_yml_plans_and_reports_without_contacting_hosts(tmp_path):
    write_inventory(tmp_path / "hosts.yml")
    proc = run_plan(tmp_path, tmp_path / "hosts.yml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "mode: route_reflector (in-cluster reflectors)" in proc.stdout
    assert "30 nodes > calico_mesh_max_nodes 20" in proc.stdout
    assert "node-" in proc.stdout and "UNREACHABLE" not in proc.stdout
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert {r["name"] for r in plan["reflectors"]} <= {"node-02", "node-03", "node-04"}
    assert (tmp_path / "r" / "topology.svg").read_text().startswith("<svg")
    assert "| Calico nodes | 30 |" in (tmp_path / "r" / "topology.md").read_text()


def test_plan_yml_refuses_a_bad_inventory_with_the_field_named(tmp_path):
    write_inventory(tmp_path / "hosts.yml", duplicate=True)
    proc = run_plan(tmp_path, tmp_path / "hosts.yml")
    assert proc.returncode != 0
    assert "hostvars[node-30].calico_bgp_ip: 10.77.0.29 is also the BGP IP of node-29" in proc.stdout + proc.stderr
    assert not (tmp_path / "r").exists()
