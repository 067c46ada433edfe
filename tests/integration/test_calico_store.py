"""CalicoStore against a real etcd: idempotence, check mode, diffs, CAS retries, merge/replace, prune, list."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    key_for,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import MAX_ATTEMPTS, CalicoStore, StoreError

MANAGED = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def peer(name: str, asn=64512, ip: str = "10.0.0.1", labels: dict | None = None, **spec) -> dict:
    meta = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3", "metadata": meta,
            "spec": {"peerIP": ip, "asNumber": asn, **spec}}


def node(name: str, labels: dict | None = None) -> dict:
    return {"kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"bgp": {"ipv4Address": "10.0.0.5/24"}}}


def raw(server, key: str) -> dict:
    """The stored value read by etcdctl, independent of the code under test."""
    out = server.etcdctl("get", key, "--print-value-only").strip()
    return json.loads(out) if out else None


@pytest.fixture
def store(etcd_single):
    return CalicoStore(etcd_single.client())


# ------------------------------------------------------------------------------------------------
# Idempotence, check mode, diff
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("merge", [True, False])
def test_second_apply_changes_nothing(etcd_single, store, merge):
    resources = [
        peer("peer-1", asn="1.10"),
        {"kind": "IPPool", "metadata": {"name": "pool-1"}, "spec": {"cidr": "10.244.0.0/16"}},  # defaults filled in
        {"kind": "BGPConfiguration", "metadata": {"name": "default"},
         "spec": {"asNumber": 64512, "nodeToNodeMeshEnabled": False}},
        node("node-1", {"rack": "a"}),
        {"kind": "GlobalNetworkPolicy", "metadata": {"name": "allow-dns"}, "spec": {"selector": "all()"}},
    ]
    first = store.apply(resources, merge=merge)
    assert first.changed and len(first.created) == 5
    revision = etcd_single.revision()
    second = store.apply(resources, merge=merge)
    assert second.changed is False
    assert (second.created, second.updated, second.actions) == ([], [], [])
    assert sorted(second.unchanged) == sorted(first.created)
    assert etcd_single.revision() == revision
    assert second.as_dict()["unchanged"] == 5


def test_check_mode_writes_nothing_but_reports_what_a_real_run_does(etcd_single, store):
    store.apply([peer("peer-1"), peer("peer-2")])
    wanted = [peer("peer-1", asn=65000), peer("peer-2"), peer("peer-3")]
    revision = etcd_single.revision()
    checked = CalicoStore(etcd_single.client(), check_mode=True).apply(wanted)
    assert etcd_single.revision() == revision
    assert raw(etcd_single, key_for("BGPPeer", "peer-3")) is None
    assert raw(etcd_single, key_for("BGPPeer", "peer-1"))["spec"]["asNumber"] == 64512
    real = store.apply(wanted)
    assert etcd_single.revision() == revision + 1
    assert (checked.created, checked.updated, checked.unchanged) == (real.created, real.updated, real.unchanged)
    assert checked.created == [key_for("BGPPeer", "peer-3")] and checked.updated == [key_for("BGPPeer", "peer-1")]
    assert checked.actions == real.actions == ["updated BGPPeer peer-1 (spec.asNumber)", "created BGPPeer peer-3"]
    assert checked.diff["after"][key_for("BGPPeer", "peer-1")]["spec"] == real.diff["after"][
        key_for("BGPPeer", "peer-1")]["spec"]


def test_check_mode_delete_writes_nothing(etcd_single, store):
    store.apply([peer("peer-1")])
    revision = etcd_single.revision()
    result = CalicoStore(etcd_single.client(), check_mode=True).delete([("BGPPeer", "peer-1", None)])
    assert result.deleted == [key_for("BGPPeer", "peer-1")] and result.changed
    assert etcd_single.revision() == revision and raw(etcd_single, key_for("BGPPeer", "peer-1"))


def test_diff_shows_before_and_after_per_key(etcd_single, store):
    store.apply([peer("peer-1", labels={"team": "net"}), peer("peer-2")])
    result = store.apply([peer("peer-1", asn=65001, labels={"team": "infra"}), peer("peer-2"), peer("peer-3")])
    k1, k3 = key_for("BGPPeer", "peer-1"), key_for("BGPPeer", "peer-3")
    assert set(result.diff["before"]) == set(result.diff["after"]) == {k1, k3}  # unchanged peer-2 not in the diff
    before, after = result.diff["before"][k1], result.diff["after"][k1]
    assert (before["spec"]["asNumber"], after["spec"]["asNumber"]) == (64512, 65001)
    assert (before["metadata"]["labels"], after["metadata"]["labels"]) == ({"team": "net"}, {"team": "infra"})
    assert before["metadata"]["uid"] == after["metadata"]["uid"]
    assert "resourceVersion" not in before["metadata"] and "resourceVersion" not in after["metadata"]
    assert result.diff["before"][k3] is None and result.diff["after"][k3]["spec"]["peerIP"] == "10.0.0.1"
    assert result.actions[0] == "updated BGPPeer peer-1 (labels.team, spec.asNumber)"
    assert after == raw(etcd_single, k1)  # the diff's 'after' is exactly what was stored
    deleted = store.delete([("BGPPeer", "peer-3", None)])
    assert deleted.diff == {"before": {k3: result.diff["after"][k3]}, "after": {k3: None}}


def test_no_diff_is_kept_when_not_asked(etcd_single):
    result = CalicoStore(etcd_single.client(), want_diff=False).apply([peer("peer-1")])
    assert result.created and result.diff == {"before": {}, "after": {}}
    assert "diff" not in result.as_dict() and result.as_dict(with_diff=True)["diff"] == result.diff


# ------------------------------------------------------------------------------------------------
# Stored bookkeeping: uid, creationTimestamp, resourceVersion
# ------------------------------------------------------------------------------------------------
def test_uid_and_creation_timestamp_are_set_on_create_and_kept_on_update(etcd_single, store):
    key = key_for("BGPPeer", "peer-1")
    store.apply([peer("peer-1")])
    created = raw(etcd_single, key)
    uuid.UUID(created["metadata"]["uid"])
    assert RFC3339_UTC.match(created["metadata"]["creationTimestamp"])
    assert list(created) == ["kind", "apiVersion", "metadata", "spec"]
    assert (created["kind"], created["apiVersion"]) == ("BGPPeer", "projectcalico.org/v3")
    for merge in (True, False):
        store.apply([peer("peer-1", asn=65000 + merge)], merge=merge)
        updated = raw(etcd_single, key)
        assert updated["spec"]["asNumber"] == 65000 + merge
        assert updated["metadata"]["uid"] == created["metadata"]["uid"]
        assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_a_uid_given_on_create_is_not_trusted(etcd_single, store):
    body = peer("peer-1")
    body["metadata"].update(uid="not-a-uuid", resourceVersion="17")
    store.apply([body])
    stored = raw(etcd_single, key_for("BGPPeer", "peer-1"))
    assert stored["metadata"]["uid"] != "not-a-uuid" and "resourceVersion" not in stored["metadata"]


def test_resource_version_is_reported_on_read_and_never_stored(etcd_single, store):
    store.apply([peer("peer-1"), peer("peer-2")])
    key = key_for("BGPPeer", "peer-1")
    mod_revision = store.client.get(key).mod_revision
    got = store.get("BGPPeer", "peer-1")
    assert got["metadata"]["resourceVersion"] == str(mod_revision)
    listed = {o["metadata"]["name"]: o for o in store.list("BGPPeer")}
    assert listed["peer-1"]["metadata"]["resourceVersion"] == str(mod_revision)
    assert "resourceVersion" not in etcd_single.etcdctl("get", "/calico/", "--prefix", "--print-value-only")
    # an object read back (with resourceVersion) and applied again changes nothing and stores none
    revision = etcd_single.revision()
    assert store.apply([got]).changed is False and etcd_single.revision() == revision
    got["spec"]["asNumber"] = 65001
    assert store.apply([got]).updated == [key]
    assert "resourceVersion" not in raw(etcd_single, key)["metadata"]
    assert store.get("BGPPeer", "peer-1")["metadata"]["resourceVersion"] == str(store.client.get(key).mod_revision)


def test_policies_are_stored_under_the_default_tier_name(etcd_single, store):
    store.apply([{"kind": "NetworkPolicy", "metadata": {"name": "allow", "namespace": "ns1"}, "spec": {}}])
    key = "/calico/resources/v3/projectcalico.org/networkpolicies/ns1/default.allow"
    assert raw(etcd_single, key)["metadata"]["name"] == "default.allow"
    assert store.get("NetworkPolicy", "allow", "ns1")["metadata"]["name"] == "default.allow"


# ------------------------------------------------------------------------------------------------
# Merge and replace
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def stored_peer(store):
    store.apply([peer("peer-1", labels={"a": "1", "b": "2"}, node="node-1", keepOriginalNextHop=True)])
    return key_for("BGPPeer", "peer-1")


def test_merge_keeps_what_was_not_given(etcd_single, store, stored_peer):
    store.apply([peer("peer-1", asn=65001, labels={"b": "3"})], merge=True)
    stored = raw(etcd_single, stored_peer)
    assert stored["spec"] == {"peerIP": "10.0.0.1", "asNumber": 65001, "node": "node-1", "keepOriginalNextHop": True}
    assert stored["metadata"]["labels"] == {"a": "1", "b": "3"}


def test_merge_removes_what_is_given_as_none(etcd_single, store, stored_peer):
    body = peer("peer-1", labels={"a": None})
    body["spec"]["node"] = None
    store.apply([body], merge=True)
    stored = raw(etcd_single, stored_peer)
    assert "node" not in stored["spec"] and stored["spec"]["keepOriginalNextHop"] is True
    assert stored["metadata"]["labels"] == {"b": "2"}


def test_replace_stores_exactly_what_was_given(etcd_single, store, stored_peer):
    store.apply([peer("peer-1", asn=65001, labels={"b": "3"})], merge=False)
    stored = raw(etcd_single, stored_peer)
    assert stored["spec"] == {"peerIP": "10.0.0.1", "asNumber": 65001}
    assert stored["metadata"]["labels"] == {"b": "3"}
    store.apply([peer("peer-1", asn=65001)], merge=False)
    assert "labels" not in raw(etcd_single, stored_peer)["metadata"]


def test_replace_never_stores_null_for_a_removal_marker(etcd_single, store, stored_peer):
    body = peer("peer-1", labels={"a": "1", "b": None})
    body["spec"]["node"] = None
    store.apply([body], merge=False)
    stored = raw(etcd_single, stored_peer)
    assert stored["metadata"]["labels"] == {"a": "1"}
    assert stored["spec"] == {"peerIP": "10.0.0.1", "asNumber": 64512}
    assert "null" not in etcd_single.etcdctl("get", stored_peer, "--print-value-only")


@pytest.mark.parametrize("merge", [True, False], ids=["merge", "replace"])
def test_nested_removal_markers_are_never_stored_as_null(etcd_single, store, merge):
    """A None inside a nested mapping (Node spec.bgp, as calico_node sends for '') means 'not set'."""
    key = key_for("Node", "node-1")
    body = {"kind": "Node", "metadata": {"name": "node-1"},
            "spec": {"bgp": {"ipv4Address": "10.0.0.5/24", "routeReflectorClusterID": None}}}
    store.apply([body], merge=merge)  # create
    assert raw(etcd_single, key)["spec"] == {"bgp": {"ipv4Address": "10.0.0.5/24"}}
    store.apply([{"kind": "Node", "metadata": {"name": "node-2"}, "spec": {}}])
    body["metadata"]["name"] = "node-2"
    store.apply([body], merge=merge)  # update of a stored Node that has no bgp yet
    assert raw(etcd_single, key_for("Node", "node-2"))["spec"] == {"bgp": {"ipv4Address": "10.0.0.5/24"}}
    assert "null" not in etcd_single.etcdctl("get", "/calico/", "--prefix", "--print-value-only")


def test_merge_result_is_validated_before_any_write(etcd_single, store, stored_peer):
    """node is stored; adding nodeSelector by merge would make an invalid peer: refused, nothing written."""
    revision = etcd_single.revision()
    with pytest.raises(Exception, match=r"resources\[1\]: BGPPeer\.spec: node and nodeSelector are mutually exclusive"):
        store.apply([peer("peer-0"), peer("peer-1", nodeSelector="all()")], merge=True)
    assert etcd_single.revision() == revision and store.get("BGPPeer", "peer-0") is None


def test_ippool_cidr_is_immutable(etcd_single, store):
    store.apply([{"kind": "IPPool", "metadata": {"name": "pool-1"}, "spec": {"cidr": "10.244.0.0/16"}}])
    revision = etcd_single.revision()
    with pytest.raises(Exception, match=r"IPPool\.spec\.cidr: is immutable"):
        store.apply([{"kind": "IPPool", "metadata": {"name": "pool-1"}, "spec": {"cidr": "10.245.0.0/16"}}])
    assert etcd_single.revision() == revision


# ------------------------------------------------------------------------------------------------
# Compare-and-swap under a concurrent writer
# ------------------------------------------------------------------------------------------------
def test_a_lost_race_is_reread_and_retried_keeping_the_other_writers_fields(etcd_single, store):
    store.apply([peer(f"peer-{i}", labels={"team": "net"}) for i in range(3)])
    contested = key_for("BGPPeer", "peer-1")
    other = etcd_single.client()  # a second, independent writer
    reads = []
    real_get_many = store.client.get_many

    def racing_get_many(keys):
        found = real_get_many(keys)
        reads.append(sorted(keys))
        if len(reads) == 1:  # between our read and our write, someone else updates peer-1
            theirs = json.loads(found[contested].value)
            theirs["spec"]["keepOriginalNextHop"] = True
            theirs["metadata"]["labels"]["owner"] = "someone-else"
            other.put(contested, json.dumps(theirs))
        return found

    store.client.get_many = racing_get_many
    result = store.apply([peer(f"peer-{i}", asn=65001) for i in range(3)], merge=True)
    assert result.retries >= 1 and len(reads) >= 2
    assert contested in reads[1]  # the lost batch was read again
    assert sorted(result.updated) == sorted(key_for("BGPPeer", f"peer-{i}") for i in range(3))
    stored = raw(etcd_single, contested)
    assert stored["spec"]["asNumber"] == 65001  # our change
    assert stored["spec"]["keepOriginalNextHop"] is True  # their change to a field we do not manage survived
    assert stored["metadata"]["labels"] == {"team": "net", "owner": "someone-else"}
    assert all(raw(etcd_single, key_for("BGPPeer", f"peer-{i}"))["spec"]["asNumber"] == 65001 for i in range(3))


def test_a_create_race_is_retried_as_an_update(etcd_single, store):
    other = etcd_single.client()
    key = key_for("BGPPeer", "peer-new")
    real_get_many = store.client.get_many
    calls = []

    def racing_get_many(keys):
        found = real_get_many(keys)
        calls.append(1)
        if len(calls) == 1:
            other.put(key, json.dumps({"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3",
                                       "metadata": {"name": "peer-new", "uid": "theirs",
                                                    "creationTimestamp": "2020-01-01T00:00:00Z"},
                                       "spec": {"peerIP": "10.0.0.9", "asNumber": 1}}))
        return found

    store.client.get_many = racing_get_many
    result = store.apply([peer("peer-new")])
    assert result.retries == 1 and result.updated == [key] and result.created == []
    stored = raw(etcd_single, key)
    assert stored["metadata"]["uid"] == "theirs" and stored["spec"]["peerIP"] == "10.0.0.1"


def test_the_store_gives_up_when_a_key_never_stops_changing(etcd_single, store):
    store.apply([peer("peer-1")])
    key = key_for("BGPPeer", "peer-1")
    other = etcd_single.client()
    real_get_many = store.client.get_many

    def always_racing(keys):
        found = real_get_many(keys)
        other.put(key, found[key].value)  # same bytes, new mod_revision
        return found

    store.client.get_many = always_racing
    with pytest.raises(StoreError, match=rf"gave up after {MAX_ATTEMPTS} attempts: 1 object\(s\) kept changing"):
        store.apply([peer("peer-1", asn=65001)])


def test_three_hundred_resources_go_in_three_transactions(etcd_single, store):
    revision = etcd_single.revision()
    result = store.apply([peer(f"peer-{i:03d}") for i in range(300)])
    assert len(result.created) == 300
    assert etcd_single.revision() == revision + 3
    assert store.client.count("/calico/resources/v3/projectcalico.org/bgppeers/") == 300


# ------------------------------------------------------------------------------------------------
# Delete and prune
# ------------------------------------------------------------------------------------------------
def test_delete_removes_present_and_ignores_absent(etcd_single, store):
    store.apply([peer("peer-1"), peer("peer-2")])
    result = store.delete([("BGPPeer", "peer-1", None), ("BGPPeer", "ghost", None)])
    assert result.deleted == [key_for("BGPPeer", "peer-1")] and result.actions == ["deleted BGPPeer peer-1"]
    revision = etcd_single.revision()
    again = store.delete([("BGPPeer", "peer-1", None)])
    assert again.changed is False and etcd_single.revision() == revision


def test_prune_touches_only_managed_objects(etcd_single, store):
    store.apply([
        peer("keep-me", labels=dict(MANAGED)),
        peer("stale-1", labels=dict(MANAGED)),
        peer("stale-2", labels={**MANAGED, "rack": "a"}),
        peer("hand-made", labels={}),
        peer("other-tool", labels={MANAGED_BY_LABEL: "someone-else"}),
    ])
    result = store.prune("BGPPeer", dict(MANAGED), keep={"keep-me"})
    assert sorted(result.deleted) == [key_for("BGPPeer", "stale-1"), key_for("BGPPeer", "stale-2")]
    assert sorted(o["metadata"]["name"] for o in store.list("BGPPeer")) == ["hand-made", "keep-me", "other-tool"]


@pytest.mark.parametrize("labels", [{}, {"rack": "a"}])
def test_prune_never_touches_unmanaged_objects_whatever_labels_it_is_given(etcd_single, store, labels):
    store.apply([peer("hand-made", labels={"rack": "a"}),
                 peer("other-tool", labels={MANAGED_BY_LABEL: "someone-else", "rack": "a"}),
                 peer("ours", labels={**MANAGED, "rack": "a"})])
    result = store.prune("BGPPeer", labels, keep=set())
    assert result.deleted == [key_for("BGPPeer", "ours")]
    assert sorted(o["metadata"]["name"] for o in store.list("BGPPeer")) == ["hand-made", "other-tool"]


def test_prune_refuses_to_target_another_tools_objects(etcd_single, store):
    store.apply([peer("other-tool", labels={MANAGED_BY_LABEL: "someone-else"})])
    revision = etcd_single.revision()
    with pytest.raises(ValidationError, match=rf"labels\.{re.escape(MANAGED_BY_LABEL)}: prune only deletes objects "
                                              rf"labelled {re.escape(MANAGED_BY_LABEL)}=kubescale\.calico"):
        store.prune("BGPPeer", {MANAGED_BY_LABEL: "someone-else"}, keep=set())
    assert etcd_single.revision() == revision


def test_prune_keeps_policies_named_as_they_were_applied(etcd_single, store):
    store.apply([{"kind": "GlobalNetworkPolicy", "metadata": {"name": "allow-dns", "labels": dict(MANAGED)},
                  "spec": {"selector": "all()"}}])
    result = store.prune("GlobalNetworkPolicy", dict(MANAGED), keep={"allow-dns"})
    assert result.deleted == [] and store.get("GlobalNetworkPolicy", "allow-dns") is not None


# ------------------------------------------------------------------------------------------------
# List
# ------------------------------------------------------------------------------------------------
def test_list_by_labels_and_by_selector(store):
    store.apply([node("n1", {"rack": "a"}), node("n2", {"rack": "a", "rr": "true"}), node("n3", {"rack": "b"}),
                 node("n4")])

    def names(**kw):
        return [o["metadata"]["name"] for o in store.list("Node", **kw)]

    assert names() == ["n1", "n2", "n3", "n4"]
    assert names(labels={"rack": "a"}) == ["n1", "n2"]
    assert names(labels={"rack": "a", "rr": "true"}) == ["n2"]
    assert names(selector="rack == 'a' && !has(rr)") == ["n1"]
    assert names(selector="rack in {'a', 'b'} || !has(rack)") == ["n1", "n2", "n3", "n4"]
    assert names(selector="rack != 'a'") == ["n3", "n4"]
    assert names(labels={"rack": "b"}, selector="has(rr)") == []


def test_list_by_namespace(store):
    store.apply([{"kind": "NetworkPolicy", "metadata": {"name": n, "namespace": ns}, "spec": {}}
                 for ns in ("ns", "ns1") for n in ("p1", "p2")])
    assert [o["metadata"]["namespace"] for o in store.list("NetworkPolicy", namespace="ns")] == ["ns", "ns"]
    assert len(store.list("NetworkPolicy")) == 4


def test_list_reads_in_pages(store):
    store.apply([peer(f"peer-{i:02d}") for i in range(25)] + [node("n1")])
    ranges = []
    real_call = store.client._call

    def counting(service, method, request, **kw):
        if method == "Range":
            ranges.append(request.limit)
        return real_call(service, method, request, **kw)

    store.client._call = counting
    listed = store.list("BGPPeer", page_size=10)
    assert [o["metadata"]["name"] for o in listed] == [f"peer-{i:02d}" for i in range(25)]
    assert ranges == [10, 10, 10]
