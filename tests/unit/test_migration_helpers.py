"""Unit tests for the pure helpers of the migration orchestration."""

from __future__ import annotations

import json

from datagen import calico_v1_dataset as gen

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import serialize
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import new_object
from ansible_collections.kubescale.calico.plugins.module_utils.etcd import v2_copy
from ansible_collections.kubescale.calico.plugins.module_utils.migration import phases as migration
from ansible_collections.kubescale.calico.plugins.module_utils.migration import v1_convert, v1_model

R = "/calico/resources/v3/projectcalico.org/"


def test_kind_prefix_names_the_kind_of_resource_and_ipam_keys():
    assert migration._kind_prefix(R + "workloadendpoints/ns/n1-k8s-p-eth0") == R + "workloadendpoints"
    assert migration._kind_prefix("/calico/ipam/v2/host/node-1/ipv4/block/10.0.0.0-26") == "/calico/ipam/v2/host"
    assert migration._kind_prefix("/calico/ipam/v2/handle/k8s-pod-network.abc") == "/calico/ipam/v2/handle"


def test_sorted_within_kinds_keeps_the_kind_order_and_sorts_each_run():
    keys = [R + "felixconfigurations/default", R + "clusterinformations/default",
            R + "felixconfigurations/node.b", R + "felixconfigurations/node.a",
            R + "nodes/z", R + "nodes/a", R + "bgppeers/b", R + "bgppeers/a"]
    out = migration.sorted_within_kinds(keys, key=lambda k: k)
    assert out == [R + "felixconfigurations/default", R + "clusterinformations/default",
                   R + "felixconfigurations/node.a", R + "felixconfigurations/node.b",
                   R + "nodes/a", R + "nodes/z", R + "bgppeers/a", R + "bgppeers/b"]
    assert migration.sorted_within_kinds([], key=lambda k: k) == []


def test_dest_key_maps_prefixes():
    assert v2_copy._dest_key("/a/x/y", "/a", "/b") == "/b/x/y"
    assert v2_copy._dest_key("/a/x", "/a/", "/b/") == "/b/x"
    assert v2_copy._dest_key("/a/x", "/a", None) == "/a/x"


def test_progress_keeps_only_the_last_of_a_run_of_batches(tmp_path):
    path = tmp_path / "p.jsonl"
    seen = []
    progress = migration.Progress(path=str(path), callback=seen.append)
    progress("locked")
    progress("resources", done=1, total=3)
    progress("resources", done=3, total=3)
    progress("done")
    assert [e["step"] for e in progress.events] == ["locked", "resources", "done"]
    assert progress.events[1]["done"] == 3
    assert len(path.read_text().splitlines()) == 4 == len(seen)  # the file and callback see every step


def _without_identity(body: bytes) -> dict:
    obj = json.loads(body)
    assert obj["metadata"].pop("uid") and obj["metadata"].pop("creationTimestamp")
    return obj


def test_new_body_is_what_the_store_writes_on_create():
    data = v1_model.V1Data()
    for key, value in gen.generate(hosts=4, workloads=12, namespaces=2, policies=3, host_endpoints=2):
        data.add(key, value)
    conv = v1_convert.convert(data, validate=migration._validate_owned)
    assert len({kind for kind, _obj in conv.resources}) >= 8
    for _kind, obj in conv.resources:
        fast, slow = migration._new_body(obj), serialize(new_object(obj))
        assert list(_without_identity(fast)) == list(_without_identity(slow))  # same field order
        assert _without_identity(fast) == _without_identity(slow)
        assert json.dumps(_without_identity(fast)) == json.dumps(_without_identity(slow))


def test_new_body_strips_removal_markers_like_the_store():
    obj = {"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3",
           "metadata": {"name": "p", "labels": {"a": "1", "gone": None}},
           "spec": {"peerIP": "10.0.0.1", "asNumber": 64512, "node": None, "nested": {"x": None, "y": [1]}}}
    body = _without_identity(migration._new_body(obj))
    assert body == _without_identity(serialize(new_object(obj)))
    assert body["metadata"]["labels"] == {"a": "1"} and body["spec"] == {"peerIP": "10.0.0.1", "asNumber": 64512,
                                                                         "nested": {"y": [1]}}


def test_rate_leaves_the_settle_time_out():
    assert migration.rate(1000, 2.0) == 500.0 and migration.rate(5, 0) == 0.0
    progress = migration.Progress()
    progress.started -= 10.0  # ten seconds ago, five of them spent settling
    progress.idle = 5.0
    assert 5.0 <= progress.busy() < 6.0
