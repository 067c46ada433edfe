"""Unit tests of the pure parts of topology_apply: the Node merge body and the fast no-op check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.kubescale.calico.plugins.module_utils.topology.apply import (
    OWNED_NODE_LABELS,
    TopologyApplyError,
    _merge_is_noop,
    _node_is_current,
    _node_update,
    apply_plan,
)

LABEL_VALUES = st.sampled_from([None, "x", "224.0.0.1", "true", "rack01"])


def planned_node(labels: dict, bgp: dict) -> dict:
    return {
        "kind": "Node",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "n1", "labels": {"kubescale.io/managed-by": "kubescale.calico", **labels}},
        "spec": {"bgp": bgp},
    }


@st.composite
def node_pairs(draw):
    owned = list(OWNED_NODE_LABELS)
    want_labels = {k: v for k in owned if (v := draw(LABEL_VALUES)) is not None}
    have_labels = {k: v for k in [*owned, "kubescale.io/managed-by", "team"] if (v := draw(LABEL_VALUES)) is not None}
    if draw(st.booleans()):
        have_labels["kubescale.io/managed-by"] = "kubescale.calico"
    want_bgp = {"ipv4Address": "10.0.0.1/32"}
    for key, values in (("asNumber", [65001, 64512]), ("routeReflectorClusterID", ["224.0.0.1", "224.0.0.2"])):
        if draw(st.booleans()):
            want_bgp[key] = draw(st.sampled_from(values))
    have_bgp = {"ipv4Address": draw(st.sampled_from(["10.0.0.1/32", "10.0.0.1/24", "10.0.0.2/32"]))}
    for key, values in (
        ("asNumber", [65001, 64512]),
        ("routeReflectorClusterID", ["224.0.0.1", "224.0.0.2"]),
        ("ipv4IPIPTunnelAddr", ["192.168.0.1"]),
    ):
        if draw(st.booleans()):
            have_bgp[key] = draw(st.sampled_from(values))
    current = {
        "kind": "Node",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "n1", "labels": have_labels, "uid": "u"},
        "spec": {"bgp": have_bgp, "orchRefs": [{"orchestrator": "k8s", "nodeName": "n1"}]},
    }
    return current, planned_node(want_labels, want_bgp)


@settings(max_examples=300, deadline=None)
@given(node_pairs())
def test_fast_noop_check_agrees_with_the_merge(pair):
    current, planned = pair
    assert _node_is_current(current, planned) == _merge_is_noop(current, _node_update(current, planned))


def test_node_update_removes_owned_fields_and_keeps_the_prefix():
    current = {
        "metadata": {"name": "n1", "labels": {"kubescale.io/rr-cluster": "224.0.0.1", "team": "a"}},
        "spec": {"bgp": {"ipv4Address": "10.0.0.1/24", "routeReflectorClusterID": "224.0.0.1"}},
    }
    body = _node_update(
        current, planned_node({"kubescale.io/rr-client-of": "224.0.0.1"}, {"ipv4Address": "10.0.0.1/32"})
    )
    assert body["metadata"]["labels"]["kubescale.io/rr-cluster"] is None
    assert "team" not in body["metadata"]["labels"]  # not owned: left alone by the merge
    assert body["spec"]["bgp"] == {"ipv4Address": "10.0.0.1/24", "asNumber": None, "routeReflectorClusterID": None}
    moved = _node_update(current, planned_node({}, {"ipv4Address": "10.0.0.9/32"}))
    assert moved["spec"]["bgp"]["ipv4Address"] == "10.0.0.9/32"


def test_new_node_body_has_no_removal_markers():
    planned = planned_node({"kubescale.io/group": "worker"}, {"ipv4Address": "10.0.0.1/32"})
    assert _node_update(None, planned) is planned


def test_bad_phase_refused():
    plan = {
        "mode": "mesh",
        "resources": {"bgpconfigurations": [], "nodes": [], "bgppeers": []},
        "nodes": [],
        "reflectors": [],
    }
    with pytest.raises(TopologyApplyError, match=r"phase: 'later' must be one of all, prepare, finish"):
        apply_plan(store=None, plan=plan, phase="later")
