"""The node-group roles' controller-side steps, through ansible-playbook, against real etcd.

Every host in these inventories has ``ansible_connection: local`` and is only data: the steps under
test (master preflight, migration, topology) run once on the controller (``delegate_to: localhost``)
and talk to etcd processes started by the fixtures on loopback. The nspawn lab (molecule/default)
runs the same roles on real hosts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


PLAIN = {"calico_datastore_ca_cert": "", "calico_datastore_client_cert": "", "calico_datastore_client_key": ""}


def _inventory(tmp_path: Path, groups: dict[str, dict[str, str]], extra: dict | None = None) -> Path:
    """groups: {group: {host: bgp ip}}."""
    children = {g: {"hosts": {h: {"calico_bgp_ip": ip} for h, ip in hosts.items()}} for g, hosts in groups.items()}
    inv = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                            **(extra or {})},
                   "children": children}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return path


def _play(tmp_path: Path, entry: str, out: Path | None = None, register: str | None = None) -> Path:
    include = {"name": "kubescale.calico.master", "tasks_from": entry}
    tasks = [{"name": f"master {entry}", "ansible.builtin.include_role": include}]
    if out and register:
        tasks.append({"name": "save the result", "ansible.builtin.copy": {
            "content": "{{ " + register + " | to_json }}", "dest": str(out), "mode": "0600"},
            "delegate_to": "localhost", "run_once": True})
    play = [{"name": "under test", "hosts": "master", "gather_facts": False, "tasks": tasks}]
    path = tmp_path / f"{entry}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def _run(inventory: Path, playbook: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".lab" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_DEPRECATION_WARNINGS="False",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    return subprocess.run(["ansible-playbook", "-i", str(inventory), str(playbook)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


GOOD = {"master": {"m1": "10.0.0.1"}, "management": {"g1": "10.0.0.11", "g2": "10.0.0.12", "g3": "10.0.0.13"},
        "worker": {"w1": "10.0.1.1", "w2": "10.0.1.2"}}


@pytest.mark.parametrize("groups, message", [
    (GOOD, None),
    ({**GOOD, "proxy": {"g1": "10.0.0.11"}},
     "groups: g1 (management, proxy): a host may be in only one of master, management, proxy"),
    ({**GOOD, "worker": {"w1": "10.0.1.1", "w2": "10.0.0.12"}},
     "calico_bgp_ip: 10.0.0.12 (g2, w2): every node needs its own BGP IP"),
    ({k: v for k, v in GOOD.items() if k != "management"},
     "groups: the inventory group 'management' is missing or empty"),
], ids=["good", "host-in-two-groups", "duplicate-bgp-ip", "missing-group"])
def test_preflight_refuses_bad_inventories_with_a_clear_message(tmp_path, groups, message):
    res = _run(_inventory(tmp_path, groups, {"master_migrate": False}), _play(tmp_path, "preflight"))
    if message is None:
        assert res.returncode == 0, res.stdout[-3000:]
    else:
        assert res.returncode != 0
        assert message in res.stdout, res.stdout[-3000:]


def test_preflight_refuses_a_legacy_etcd_without_the_v2_api(tmp_path, etcd_cluster3):
    # etcd_cluster3 runs without --enable-v2
    inv = _inventory(tmp_path, GOOD, {"calico_legacy_etcd_endpoints": etcd_cluster3.endpoints[:1]})
    res = _run(inv, _play(tmp_path, "preflight"))
    assert res.returncode != 0
    assert "does not serve the etcd v2 API" in res.stdout and "--enable-v2=true" in res.stdout, res.stdout[-3000:]


def test_adding_a_worker_changes_only_its_node(tmp_path, etcd_single):
    settings = {**PLAIN, "calico_datastore_endpoints": etcd_single.endpoints, "calico_mesh_max_nodes": 3,
                "calico_rr_kind": "in_cluster"}
    out = tmp_path / "result.json"
    play = _play(tmp_path, "topology", out, "bgp_topology_result")
    first = _run(_inventory(tmp_path, GOOD, settings), play)
    assert first.returncode == 0, first.stdout[-3000:]
    applied = json.loads(out.read_text())
    assert any(a == "created Node w1" or a.startswith("created Node w1 ") for a in applied["actions"]), applied
    assert any("nodeToNodeMeshEnabled" in a or "mesh" in a for a in applied["actions"]), applied["actions"]

    again = _run(_inventory(tmp_path, GOOD, settings), play)
    assert again.returncode == 0, again.stdout[-3000:]
    assert json.loads(out.read_text())["actions"] == []

    grown = {**GOOD, "worker": {**GOOD["worker"], "w3": "10.0.1.3"}}
    scaled = _run(_inventory(tmp_path, grown, settings), play)
    assert scaled.returncode == 0, scaled.stdout[-3000:]
    result = json.loads(out.read_text())
    touched = result["created"] + result["updated"] + result["deleted"]
    assert touched and all(k.endswith("/nodes/w3") or "w3" in k for k in touched), touched
    assert result["reflectors"] == applied["reflectors"]


def _seed(endpoint: str, nodes: list[str]) -> None:
    # etcd_single is wiped per test through the v3 API only: clear the v2 tree of earlier tests too
    import urllib.error
    import urllib.request

    from datagen import calico_v1_dataset
    from seed_calico_v1 import lab_dataset

    from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client

    req = urllib.request.Request(f"{endpoint}/v2/keys/calico?recursive=true&dir=true", method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
    client = EtcdV2Client([endpoint])
    calico_v1_dataset.write(client, list(lab_dataset(nodes, 12, 2)), workers=2)


def _migration_vars(source, target, tmp_path: Path) -> dict:
    return {**PLAIN, "calico_legacy_etcd_endpoints": source.endpoints, "calico_datastore_endpoints": target.endpoints,
            "datastore_migration_settle_time": 0, "datastore_migration_snapshot_dir": str(tmp_path / "snapshots")}


def test_migration_role_migrates_once_and_a_rerun_writes_nothing(tmp_path, etcd_single, etcd_cluster3):
    nodes = ["m1", "g1", "g2", "g3", "w1", "w2"]
    _seed(etcd_single.endpoints[0], nodes)
    inv = _inventory(tmp_path, GOOD, _migration_vars(etcd_single, etcd_cluster3, tmp_path))
    play = _play(tmp_path, "migrate")
    first = _run(inv, play)
    assert first.returncode == 0, first.stdout[-4000:]
    target = etcd_cluster3.client()
    try:
        wep = target.count("/calico/resources/v3/projectcalico.org/workloadendpoints/")
        info = json.loads(target.get("/calico/resources/v3/projectcalico.org/clusterinformations/default").value)
    finally:
        target.close()
    assert wep == 12
    assert info["spec"]["datastoreReady"] is True
    assert list((tmp_path / "snapshots").glob("before-migration-*.db"))
    again = _run(inv, play)
    assert again.returncode == 0, again.stdout[-4000:]
    assert "changed=0" in again.stdout.split("PLAY RECAP")[1]


def test_a_failed_start_is_aborted_and_calico_2_resumes(tmp_path, etcd_single, etcd_cluster3):
    from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client
    from ansible_collections.kubescale.calico.plugins.module_utils.migration.phases import LOCK_KEY

    _seed(etcd_single.endpoints[0], ["m1", "g1", "w1"])
    inv = _inventory(tmp_path, GOOD, _migration_vars(etcd_single, etcd_cluster3, tmp_path))
    target = etcd_cluster3.client()
    try:
        # Another migration holds the lock: the dry run passes, start is refused, the role aborts.
        with target.lock(LOCK_KEY, ttl=120, owner="another migration"):
            res = _run(inv, _play(tmp_path, "migrate"))
    finally:
        target.close()
    assert res.returncode != 0
    assert "The migration failed and was aborted" in res.stdout, res.stdout[-4000:]
    assert "Abort (v1 Ready back to true" in res.stdout
    assert EtcdV2Client(etcd_single.endpoints).get("/calico/v1/Ready").value == "true"


def _specs(server) -> dict:
    client = server.client()
    try:
        return {kv.key: json.loads(kv.value)["spec"] for kv in client.range("/calico/resources/")}
    finally:
        client.close()


def test_large_apply_runs_in_the_background_with_progress_and_the_same_result(tmp_path, etcd_single):
    settings = {**PLAIN, "calico_datastore_endpoints": etcd_single.endpoints, "calico_mesh_max_nodes": 3,
                "calico_rr_kind": "in_cluster", "bgp_topology_report_file": str(tmp_path / "report" / "actions.txt")}
    out = tmp_path / "result.json"
    play = _play(tmp_path, "topology", out, "bgp_topology_result")
    fg = _run(_inventory(tmp_path, GOOD, settings), play)  # 6 nodes: under the threshold, in the foreground
    assert fg.returncode == 0, fg.stdout[-3000:]
    assert "topology: " not in fg.stdout
    foreground = json.loads(out.read_text())
    stored = _specs(etcd_single)

    etcd_single.wipe()
    bg = _run(_inventory(tmp_path, GOOD, {**settings, "bgp_topology_async_min_nodes": 6,
                                          "bgp_topology_poll_interval": 0.2}), play)
    assert bg.returncode == 0, bg.stdout[-3000:]
    lines = [line for line in bg.stdout.splitlines() if line.startswith("topology: ")]
    total = len(foreground["created"])
    assert lines and lines[-1].startswith("topology: ") and f"| {total}/{total} objects (100%)" in lines[-1], lines
    assert "FAILED - RETRYING" not in bg.stdout
    background = json.loads(out.read_text())
    for key in ("changed", "created", "updated", "deleted", "mode", "reflectors", "summary"):
        assert background[key] == foreground[key], key
    assert _specs(etcd_single) == stored
    progress = [json.loads(line) for line in (tmp_path / "report" / "apply-progress.jsonl").read_text().splitlines()]
    assert progress[0] == {**progress[0], "step": "planned", "total": total, "unit": "objects"}
    assert progress[-1]["step"] == "applied" and progress[-2]["done"] == total
