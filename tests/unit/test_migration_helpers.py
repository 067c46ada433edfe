"""Unit tests for the pure helpers of the migration orchestration."""

from __future__ import annotations

from ansible_collections.kubescale.calico.plugins.module_utils.etcd import v2_copy
from ansible_collections.kubescale.calico.plugins.module_utils.migration import phases as migration

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
