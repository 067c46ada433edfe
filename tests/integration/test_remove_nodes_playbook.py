"""playbooks/drift.yml and playbooks/remove-nodes.yml through ansible-playbook against a real etcd.

The datastore holds an older plan (a third reflector rr-old and a worker w9 that have since left the
inventory), a Node nobody manages (joined by autoscaling) and a BGPPeer nobody manages. drift.yml
lists them, read-only; remove-nodes.yml in "unlisted" mode removes exactly the managed ones.
"""

from __future__ import annotations

import json

import pytest
import yaml
from playbook_run import REPO, run_modules, run_playbook

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import key_for
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology

HOSTVARS = {
    "rr-1": {"calico_bgp_ip": "10.0.0.1", "calico_rack": "r1"},
    "rr-2": {"calico_bgp_ip": "10.0.0.2", "calico_rack": "r2"},
    "rr-old": {"calico_bgp_ip": "10.0.0.3", "calico_rack": "r2"},
    "w1": {"calico_bgp_ip": "10.0.1.1"},
    "w2": {"calico_bgp_ip": "10.0.1.2"},
    "w9": {"calico_bgp_ip": "10.0.1.9"},
}
OLD_GROUPS = {"route_reflectors": ["rr-1", "rr-2", "rr-old"], "worker": ["w1", "w2", "w9"]}
NOW_GROUPS = {"route_reflectors": ["rr-1", "rr-2"], "worker": ["w1", "w2"]}


@pytest.fixture
def lab(etcd_single, tmp_path):
    conn = etcd_single.conn_params
    old = plan_topology(OLD_GROUPS, HOSTVARS, {"bgp_mode": "route_reflector", "rr_per_client": 3})
    extra = [
        {"kind": "Node", "metadata": {"name": "auto-1"}, "spec": {"bgp": {"ipv4Address": "10.0.1.50/32"}}},
        {"kind": "BGPPeer", "metadata": {"name": "my-tor"}, "spec": {"peerIP": "10.0.1.254", "asNumber": 64999}},
    ]
    results = run_modules([("bgp_topology", {**conn, "plan": old}), ("calico_resource", {**conn, "definition": extra})])
    assert all(r.get("failed") is not True for r in results), [r.get("msg") for r in results]
    inventory = {"all": {
        "vars": {"calico_bgp_mode": "route_reflector"},
        "children": {g: {"hosts": {h: HOSTVARS[h] for h in hosts}} for g, hosts in NOW_GROUPS.items()}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    extra_vars = {"calico_datastore_endpoints": etcd_single.endpoints, "calico_datastore_ca_cert": "",
                  "calico_datastore_client_cert": "", "calico_datastore_client_key": ""}
    client = etcd_single.client()

    def play(name: str, *args: str, **more):
        return run_playbook(REPO / "playbooks" / name, *args, inventory=tmp_path / "hosts.yml",
                            extra_vars={**extra_vars, **more})

    yield client, play
    client.close()


def table_of(stdout: str) -> list[str]:
    """The lines of the last debug message (a list of strings) in ansible-playbook's output."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip() == '"msg": [')
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "]")
    return [line.strip().rstrip(",").strip('"') for line in lines[start + 1:end]]


def test_drift_then_remove_the_nodes_that_left(lab):
    client, play = lab
    revision = client.revision()

    drift = play("drift.yml", "--check")
    assert drift.returncode == 0, drift.stdout[-3000:] + drift.stderr[-2000:]
    rows = table_of(drift.stdout)
    assert rows[0].split() == ["drift", "count", "first"]
    assert rows[1].split() == ["Nodes", "not", "in", "the", "inventory", "3", "auto-1,", "rr-old,", "w9"]
    assert rows[2].split() == ["reflectors", "not", "in", "the", "plan", "1", "rr-old", "(224.0.0.1)"]
    assert rows[3].split() == ["BGPPeers", "nobody", "manages", "1", "my-tor"]
    assert client.revision() == revision

    checked = play("remove-nodes.yml", "--check", calico_remove_unlisted=True)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert "nodes: 2 removed (check mode: would be)" in checked.stdout
    assert client.revision() == revision

    removed = play("remove-nodes.yml", calico_remove_unlisted=True)
    assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-2000:]
    assert "nodes: 2 removed, not found: none" in removed.stdout
    assert "\\\"Node\\\": 2" in removed.stdout, table_of(removed.stdout)
    names = {json.loads(kv.value)["metadata"]["name"] for kv in client.range(key_for("Node", "x")[:-1])}
    assert names == {"rr-1", "rr-2", "w1", "w2", "auto-1"}  # the unmanaged node stays
    revision = client.revision()
    again = play("remove-nodes.yml", calico_remove_unlisted=True)
    assert again.returncode == 0 and "changed=0" in again.stdout and "nodes: 0 removed" in again.stdout
    assert client.revision() == revision

    after = play("drift.yml")
    assert after.returncode == 0, after.stdout[-3000:]
    rows = table_of(after.stdout)
    assert rows[1].split()[-2:] == ["1", "auto-1"] and rows[2].split()[-2:] == ["0", "-"]


def test_remove_nodes_asks_which_nodes(lab):
    client, play = lab
    revision = client.revision()
    proc = play("remove-nodes.yml")
    assert proc.returncode != 0
    assert "give either calico_remove_nodes" in proc.stdout
    both = play("remove-nodes.yml", calico_remove_unlisted=True, calico_remove_nodes=["w9"])
    assert both.returncode != 0 and "not both" in both.stdout
    assert client.revision() == revision
