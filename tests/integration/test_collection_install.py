"""The built collection installs into an empty path and works by FQCN from a playbook elsewhere.

This is how existing automation consumes the collection: `ansible-galaxy collection build`, then
`ansible-galaxy collection install` of the tarball, then a playbook outside the repository. The
playbook writes BGPConfiguration, BGPPeer, Node and IPPool objects into a real etcd; the test
reads them back with etcdctl (not our code) and checks keys and JSON against the Calico reference.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from playbook_run import run_playbook

REPO = Path(__file__).resolve().parents[2]

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/kubescale.calico.etcd:
      endpoints: {endpoints}
  tasks:
    - kubescale.calico.bgp_configuration:
        node_to_node_mesh: false
        as_number: 64512
    - kubescale.calico.bgp_peer:
        name: rr-peer-1
        peer_ip: 10.0.0.1
        as_number: 64512
    - kubescale.calico.calico_node:
        name: node1
        ipv4_address: 10.0.0.5/24
        route_reflector_cluster_id: 224.0.0.1
        labels: {{i-am-a-route-reflector: "true"}}
    - kubescale.calico.ippool:
        name: default-ipv4-ippool
        cidr: 10.244.0.0/16
        ipip_mode: CrossSubnet
        nat_outgoing: true
"""


def _clean_env(**extra: str) -> dict:
    """The environment of a user outside this repository: no ANSIBLE_* settings nor PYTHONPATH of the test run
    (the checkout on PYTHONPATH would count as an installed collection)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               **extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("galaxy")
    subprocess.run(["ansible-galaxy", "collection", "build", str(REPO), "--output-path", str(work), "--force"],
                   check=True, capture_output=True, text=True, cwd=work, env=_clean_env())
    tarball = next(work.glob("kubescale-calico-*.tar.gz"))
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/calico_resource.py" in names and "MANIFEST.json" in names
    assert not any(n.startswith(("tests/output", ".lab", "bench/")) for n in names)
    collections = work / "collections"
    subprocess.run(["ansible-galaxy", "collection", "install", "--offline", "-p", str(collections), str(tarball)],
                   check=True, capture_output=True, text=True, cwd=work,
                   env=_clean_env(ANSIBLE_COLLECTIONS_PATH=str(collections)))
    assert (collections / "ansible_collections/kubescale/calico/plugins/modules/bgp_peer.py").is_file()
    return collections


def _play(installed: Path, playbook: Path) -> subprocess.CompletedProcess:
    return run_playbook(playbook, cwd=playbook.parent, env=_clean_env(ANSIBLE_COLLECTIONS_PATH=str(installed)),
                        timeout=180, own_env=True)


def _recap(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith("localhost"))
    return {k: int(v) for k, v in (part.split("=") for part in line.split(":", 1)[1].split())}


def test_installed_collection_writes_reference_objects_and_reruns_clean(installed, etcd_single, tmp_path):
    outside = tmp_path / "automation"
    outside.mkdir()
    playbook = outside / "calico.yml"
    playbook.write_text(PLAYBOOK.format(endpoints=json.dumps(etcd_single.endpoints)))

    first = _play(installed, playbook)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _recap(first.stdout)["changed"] == 4

    root = "/calico/resources/v3/projectcalico.org/"
    dump = json.loads(etcd_single.etcdctl("get", "--prefix", "/calico/", "-w", "json"))
    stored = {}
    for kv in dump["kvs"]:
        stored[base64.b64decode(kv["key"]).decode()] = json.loads(base64.b64decode(kv["value"]))
    assert sorted(stored) == [root + "bgpconfigurations/default", root + "bgppeers/rr-peer-1",
                              root + "ippools/default-ipv4-ippool", root + "nodes/node1"]
    for key, obj in stored.items():
        assert obj["apiVersion"] == "projectcalico.org/v3"
        assert obj["metadata"]["uid"] and obj["metadata"]["creationTimestamp"].endswith("Z")
        assert "resourceVersion" not in obj["metadata"]
        assert key.endswith("/" + obj["metadata"]["name"])
    assert stored[root + "bgpconfigurations/default"]["kind"] == "BGPConfiguration"
    assert stored[root + "bgpconfigurations/default"]["spec"] == {"nodeToNodeMeshEnabled": False, "asNumber": 64512}
    assert stored[root + "bgppeers/rr-peer-1"]["spec"] == {"peerIP": "10.0.0.1", "asNumber": 64512}
    node = stored[root + "nodes/node1"]
    assert node["spec"]["bgp"] == {"ipv4Address": "10.0.0.5/24", "routeReflectorClusterID": "224.0.0.1"}
    assert node["metadata"]["labels"] == {"i-am-a-route-reflector": "true"}
    assert stored[root + "ippools/default-ipv4-ippool"]["spec"] == {
        "cidr": "10.244.0.0/16", "blockSize": 26, "ipipMode": "CrossSubnet", "vxlanMode": "Never",
        "natOutgoing": True, "nodeSelector": "all()"}

    revision = etcd_single.revision()
    second = _play(installed, playbook)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _recap(second.stdout)["changed"] == 0
    assert etcd_single.revision() == revision
