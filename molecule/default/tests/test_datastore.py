"""What the whole run left in the Calico datastore: the migrated Calico 2.6 data in v3, the mesh off
and the reflector peers; and calico-node pointed at the dedicated etcd (through the Kubernetes API
STAND-IN, tests/integration/fake_k8s_api.py, which keeps its objects in objects.json)."""

from __future__ import annotations

import json

from conftest import STATE, V3, get_json, keys, spec

testinfra_hosts = ["ansible://mgmt-1"]
LAB_NODES = ["master-1", "mgmt-1", "mgmt-2", "mgmt-3", "proxy-1", "worker-1", "worker-2"]


def test_migrated_objects_are_in_v3(host):
    # tests/lab/seed_calico_v1.py: 7 hosts (the lab's nodes), 40 workloads, 3 pools, 4 policies
    assert len(keys(host, f"{V3}/workloadendpoints/")) == 40
    assert len(keys(host, f"{V3}/ippools/")) == 3
    assert len(keys(host, f"{V3}/globalnetworkpolicies/")) == 4
    nodes = sorted(k.rsplit("/", 1)[1] for k in keys(host, f"{V3}/nodes/"))
    assert nodes == sorted(LAB_NODES)
    assert keys(host, "/calico/ipam/v2/assignment/ipv4/block/")


def test_the_migration_completed(host):
    info = get_json(host, f"{V3}/clusterinformations/default")
    assert info["spec"]["datastoreReady"] is True
    assert get_json(host, "/kubescale/calico-migration/state")["phase"] == "complete"


def test_mesh_is_off_and_every_node_peers_with_both_reflectors(host):
    bgp = get_json(host, f"{V3}/bgpconfigurations/default")
    assert bgp["spec"]["nodeToNodeMeshEnabled"] is False
    reflector_ips = sorted(h["ip"] for h in spec()["hosts"] if "route_reflectors" in h["groups"])
    peers = [get_json(host, k) for k in keys(host, f"{V3}/bgppeers/kubescale-rr-")]
    assert sorted(p["spec"]["peerIP"] for p in peers) == reflector_ips
    for p in peers:
        assert p["metadata"]["labels"]["kubescale.io/managed-by"] == "kubescale.calico"


def test_nodes_carry_their_lab_bgp_address(host):
    ips = {h["name"]: h["ip"] for h in spec()["hosts"]}
    for name in LAB_NODES:
        node = get_json(host, f"{V3}/nodes/{name}")
        assert node["spec"]["bgp"]["ipv4Address"].split("/")[0] == ips[name]


def test_the_proxy_has_its_router_peer(host):
    peer = get_json(host, f"{V3}/bgppeers/kubescale-router-node-proxy-1-10-213-0-254")
    assert peer["spec"]["node"] == "proxy-1" and peer["spec"]["asNumber"] == 65010


def test_calico_node_uses_the_dedicated_etcd():
    objects = json.loads((STATE / "k8s-standin" / "objects.json").read_text())
    config = objects["ConfigMap/kube-system/calico-config"]["data"]
    mgmt = sorted(h["ip"] for h in spec()["hosts"] if "management" in h["groups"])
    assert config["etcd_endpoints"] == ",".join(f"https://{ip}:2389" for ip in mgmt)
    assert config["etcd_cert"] == "/calico-secrets/etcd-cert"
    secret = objects["Secret/kube-system/calico-etcd-secrets"]["data"]
    assert set(secret) == {"etcd-ca", "etcd-cert", "etcd-key"}
    ds = objects["DaemonSet/kube-system/calico-node"]
    assert "kubescale.io/restartedAt" in ds["spec"]["template"]["metadata"]["annotations"]
