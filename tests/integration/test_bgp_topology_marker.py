"""The applied-topology marker (topology/marker.py): a reapply proven a no-op by one small read stays true.

Every change made behind its back in etcd (an edit, a deletion, a Node that joins, a peer or the
BGPConfiguration touched) must still be found and fixed; check mode and diff mode stay truthful;
the answer from the marker is the answer a full run gives. Uses the ``etcd_single`` fixture.
"""

from __future__ import annotations

import json

import pytest
from playbook_run import run_modules
from test_bgp_topology import MULTI, multi_cluster_inventory

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import key_for
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, EtcdError
from ansible_collections.kubescale.calico.plugins.module_utils.topology import apply as apply_mod
from ansible_collections.kubescale.calico.plugins.module_utils.topology.apply import apply_plan
from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    LABEL_RR_CLIENT_OF,
    LABEL_RR_CLUSTER,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.marker import MARKER_KEY
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology


@pytest.fixture
def client(etcd_single):
    client = etcd_single.client()
    yield client
    client.close()


@pytest.fixture
def plan():
    return plan_topology(*multi_cluster_inventory(40), MULTI)


def without_marker(client: EtcdClient, store: CalicoStore, plan: dict, **options) -> dict:
    """What a full run (no marker to trust) returns."""
    client.delete(MARKER_KEY)
    return apply_plan(store, plan, **options)


def reads_nothing(monkeypatch) -> None:
    """Make any full read fail, so that a test knows the marker answered."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("a full read was made although the marker should have answered")

    monkeypatch.setattr(apply_mod._Run, "__init__", refuse)


def test_reapply_answers_from_the_marker_as_a_full_run_would(client, plan, monkeypatch):
    store = CalicoStore(client)
    assert apply_plan(store, plan)["changed"] is True
    assert json.loads(client.get(MARKER_KEY).value)["revision"] > 0
    revision = client.revision()
    with monkeypatch.context() as patch:
        reads_nothing(patch)
        fast = apply_plan(store, plan)
    assert fast["changed"] is False and client.revision() == revision
    full = without_marker(client, store, plan)
    assert fast == full
    assert full["unchanged"] == sum(len(items) for items in plan["resources"].values())


def test_a_run_that_writes_nothing_writes_no_marker(client, plan):
    store = CalicoStore(client)
    apply_plan(store, plan)
    client.delete(MARKER_KEY)
    revision = client.revision()
    assert apply_plan(store, plan)["changed"] is False
    assert client.revision() == revision and client.get(MARKER_KEY) is None


def edit_node(client: EtcdClient, name: str, change) -> None:
    key = key_for("Node", name)
    body = json.loads(client.get(key).value)
    change(body)
    client.put(key, json.dumps(body))


def test_an_edit_in_etcd_after_the_marker_is_found_and_fixed(client, plan):
    store = CalicoStore(client)
    apply_plan(store, plan)
    reflector = plan["reflectors"][0]["name"]
    edit_node(client, reflector, lambda body: body["spec"]["bgp"].pop("routeReflectorClusterID"))
    fixed = apply_plan(store, plan)
    assert fixed["changed"] is True and fixed["updated"] == [key_for("Node", reflector)]
    stored = json.loads(client.get(key_for("Node", reflector)).value)
    assert stored["spec"]["bgp"]["routeReflectorClusterID"] == plan["reflectors"][0]["cluster_id"]
    assert apply_plan(store, plan)["changed"] is False


def test_an_edit_that_puts_the_same_bytes_back_costs_a_full_run_only(client, plan, monkeypatch):
    store = CalicoStore(client)
    apply_plan(store, plan)
    node = plan["resources"]["nodes"][5]["metadata"]["name"]
    edit_node(client, node, lambda body: None)  # same object, new mod_revision
    calls = []
    real = apply_mod._Run.__init__

    def counting(self, *args, **kwargs):
        calls.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(apply_mod._Run, "__init__", counting)
    assert apply_plan(store, plan)["changed"] is False
    assert calls == [1]


@pytest.mark.parametrize("kind, name", [("Node", None), ("BGPPeer", None), ("BGPConfiguration", "default")])
def test_a_deletion_in_etcd_after_the_marker_is_found_and_fixed(client, plan, kind, name):
    store = CalicoStore(client)
    apply_plan(store, plan)
    if name is None:
        items = plan["resources"]["nodes" if kind == "Node" else "bgppeers"]
        name = items[len(items) // 2]["metadata"]["name"]
    key = key_for(kind, name)
    assert client.delete(key)
    fixed = apply_plan(store, plan)
    assert fixed["changed"] is True and fixed["created"] == [key]
    assert client.get(key) is not None


def test_a_node_that_joins_and_a_foreign_peer_are_seen(client, plan):
    store = CalicoStore(client)
    apply_plan(store, plan)
    joined = {"kind": "Node", "apiVersion": "projectcalico.org/v3", "metadata": {"name": "autoscaled-1"},
              "spec": {"bgp": {"ipv4Address": "10.3.9.9/24"}}}
    CalicoStore(client).apply([joined], merge=False)
    again = apply_plan(store, plan)
    assert again["changed"] is False
    assert again["unplanned_nodes"] == {"count": 1, "names": ["autoscaled-1"]}
    assert again == without_marker(client, store, plan)


def test_a_managed_peer_edited_in_etcd_is_put_back(client, plan):
    store = CalicoStore(client)
    apply_plan(store, plan)
    peer = plan["resources"]["bgppeers"][0]["metadata"]["name"]
    key = key_for("BGPPeer", peer)
    body = json.loads(client.get(key).value)
    body["spec"]["peerSelector"] = f"{LABEL_RR_CLUSTER} == '10.10.10.10'"
    client.put(key, json.dumps(body))
    fixed = apply_plan(store, plan)
    assert fixed["updated"] == [key]


def test_check_and_diff_mode_stay_truthful(client, plan, monkeypatch):
    apply_plan(CalicoStore(client), plan)
    with monkeypatch.context() as patch:
        reads_nothing(patch)
        noop = apply_plan(CalicoStore(client, check_mode=True, want_diff=True), plan)
    assert noop["changed"] is False and noop["diff"] == {"before": {}, "after": {}}
    node = plan["resources"]["nodes"][0]["metadata"]["name"]
    edit_node(client, node, lambda body: body["spec"]["bgp"].update(ipv4Address="10.250.0.1/24"))
    marker = client.get(MARKER_KEY)
    revision = client.revision()
    drift = apply_plan(CalicoStore(client, check_mode=True, want_diff=True), plan)
    assert drift["changed"] is True and list(drift["diff"]["after"]) == [key_for("Node", node)]
    assert client.revision() == revision and client.get(MARKER_KEY) == marker


def test_other_options_or_plan_do_not_use_the_marker(client, plan):
    store = CalicoStore(client)
    apply_plan(store, plan)
    prepared = apply_plan(store, plan, phase="prepare")
    assert prepared["phase"] == "prepare" and prepared == without_marker(client, store, plan, phase="prepare")
    apply_plan(store, plan)
    other = plan_topology(*multi_cluster_inventory(41), MULTI)
    assert key_for("Node", "worker-041") in apply_plan(store, other)["created"]


def test_an_unwritable_marker_is_no_error(client, plan, monkeypatch):
    real = EtcdClient.put

    def put(self, key, value, lease=0):
        if key == MARKER_KEY:
            raise EtcdError("permission denied")
        return real(self, key, value, lease)

    monkeypatch.setattr(EtcdClient, "put", put)
    store = CalicoStore(client)
    assert apply_plan(store, plan)["changed"] is True
    assert client.get(MARKER_KEY) is None
    assert apply_plan(store, plan)["changed"] is False


def test_the_module_finds_and_fixes_drift_after_a_marker_answered(etcd_single, client, plan):
    args = {"endpoints": etcd_single.endpoints, "plan": plan}
    first, noop = run_modules([("bgp_topology", args), ("bgp_topology", args)])
    assert first["changed"] is True and noop["changed"] is False, (first.get("msg"), noop.get("msg"))
    assert client.get(MARKER_KEY) is not None
    node = plan["resources"]["nodes"][3]["metadata"]["name"]
    key = key_for("Node", node)

    def drift(body: dict) -> None:
        body["metadata"]["labels"].pop(LABEL_RR_CLIENT_OF, None)
        body["spec"]["bgp"]["asNumber"] = 65001

    edit_node(client, node, drift)
    gone = plan["resources"]["nodes"][4]["metadata"]["name"]
    client.delete(key_for("Node", gone))
    [check] = run_modules([("bgp_topology", args)], check=True)
    fixed, again = run_modules([("bgp_topology", args), ("bgp_topology", args)])
    assert check["changed"] is True and sorted(check["updated"] + check["created"]) == sorted(
        [key, key_for("Node", gone)])
    assert fixed["changed"] is True and fixed["updated"] == [key] and fixed["created"] == [key_for("Node", gone)]
    assert again["changed"] is False
    assert noop["summary"] == again["summary"]


def test_a_failed_re_read_after_the_writes_fails_nothing(client, plan, monkeypatch):
    real = apply_mod._Run.__init__

    def init(self, store, plan, *args, **kwargs):
        if store.check_mode:  # the re-run that would prove the new state a no-op
            raise EtcdError("etcd went away after the writes")
        real(self, store, plan, *args, **kwargs)

    monkeypatch.setattr(apply_mod._Run, "__init__", init)
    assert apply_plan(CalicoStore(client), plan)["changed"] is True
    monkeypatch.setattr(apply_mod._Run, "__init__", real)
    assert client.get(MARKER_KEY) is None
    assert apply_plan(CalicoStore(client), plan)["changed"] is False
