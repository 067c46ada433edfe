"""Unit tests of the pure parts of node removal: IPAM block edits and the reflector refusals."""

from __future__ import annotations

import copy
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.kubescale.calico.plugins.module_utils.calico import ipam
from ansible_collections.kubescale.calico.plugins.module_utils.calico.node_removal import (
    NodeRemovalError,
    Stored,
    _State,
    make_request,
    refuse_unsafe,
)

HANDLES = ["h-a", "h-b", "h-c", None]


def make_block(owners: dict[int, str | None]) -> dict:
    handles = sorted(set(owners.values()), key=str)
    allocations = [None] * 64
    for ordinal, handle in owners.items():
        allocations[ordinal] = handles.index(handle)
    attributes = [{"handle_id": h, "secondary": None} for h in handles]
    return {"cidr": "10.1.0.64/26", "affinity": "host:n1", "allocations": allocations,
            "unallocated": [i for i in range(64) if allocations[i] is None], "attributes": attributes}


def owner_of(block: dict, ip: str) -> str | None:
    ordinal = int(ipaddress.ip_address(ip)) - int(ipaddress.ip_address("10.1.0.64"))
    return block["attributes"][block["allocations"][ordinal]]["handle_id"]


@settings(max_examples=200, deadline=None)
@given(owners=st.dictionaries(st.integers(0, 63), st.sampled_from(HANDLES), max_size=20),
       extra=st.lists(st.integers(0, 80), max_size=10), pick=st.data())
def test_release_frees_exactly_the_allocated_addresses_and_keeps_the_rest(owners, extra, pick):
    block = make_block(owners)
    before = copy.deepcopy(block)
    chosen = pick.draw(st.lists(st.sampled_from(sorted(owners)), unique=True)) if owners else []
    ips = [ipaddress.ip_address(int(ipaddress.ip_address("10.1.0.64")) + o) for o in chosen + extra]
    freed = ipam.release_ips(block, ips)
    released = {str(ipaddress.ip_address(int(ipaddress.ip_address("10.1.0.64")) + o))
                for o in chosen + extra if o in owners}
    assert sorted(ip for ip, _unused in freed) == sorted(released)  # each once
    assert all(handle == owner_of(before, ip) for ip, handle in freed)
    assert set(ipam.allocated_ips(block)) == set(ipam.allocated_ips(before)) - released
    for ip in ipam.allocated_ips(block):  # the others keep their handle
        assert owner_of(block, ip) == owner_of(before, ip)
    used = {a for a in block["allocations"] if a is not None}
    assert used == set(range(len(block["attributes"])))  # no attribute is left unreferenced
    assert sorted(block["unallocated"]) == [i for i in range(64) if block["allocations"][i] is None]
    assert ipam.is_empty(block) == (not ipam.allocated_ips(block))


def test_release_ignores_addresses_of_other_blocks_and_versions():
    block = make_block({1: "h-a"})
    assert ipam.release_ips(block, [ipaddress.ip_address("10.1.0.1"), ipaddress.ip_address("fd00::41")]) == []
    assert ipam.allocated_ips(block) == ["10.1.0.65"]


def test_handles_and_affinity():
    handle = {"block": {"10.1.0.64/26": 2, "10.1.1.0/26": 1}}
    assert ipam.decrement_handle(handle, "10.1.0.64/26", 1) is False
    assert ipam.decrement_handle(handle, "10.1.0.64/26", 1) is False
    assert handle == {"block": {"10.1.1.0/26": 1}}
    assert ipam.decrement_handle(handle, "10.1.1.0/26", 1) is True
    block = make_block({})
    block["hostAffinity"] = "n1"
    assert ipam.release_affinity(block) is True and block["affinity"] is None and "hostAffinity" not in block
    assert ipam.block_key("10.1.0.64/26") == "/calico/ipam/v2/assignment/ipv4/block/10.1.0.64-26"
    assert ipam.affinity_key("n1", "fd00::/122") == "/calico/ipam/v2/host/n1/ipv6/block/fd00::-122"
    assert ipam.host_of_key("/calico/ipam/v2/host/n10/ipv4/block/x") == "n10"


def node(name: str, labels: dict | None = None, cid: str | None = None, ip: str = "10.0.0.9") -> Stored:
    bgp = {"ipv4Address": f"{ip}/32"}
    if cid:
        bgp["routeReflectorClusterID"] = cid
    value = {"kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": {"bgp": bgp}}
    return Stored(f"/nodes/{name}", value, 1)


def state(nodes: list[Stored], peers: list[dict] = ()) -> _State:
    out = _State.__new__(_State)
    out.nodes = {n.value["metadata"]["name"]: n for n in nodes}
    out.peers = [Stored(f"/peers/{i}", p, 1) for i, p in enumerate(peers)]
    return out


RR = {"kubescale.io/route-reflector": "true"}


def test_a_reflector_cluster_without_clients_may_go_one_with_clients_may_not():
    reflectors = [node("rr-1", RR, "224.0.0.1", "10.0.0.1"), node("rr-2", RR, "224.0.0.1", "10.0.0.2")]
    refuse_unsafe(state([*reflectors, node("w1")]), ["rr-1", "rr-2"], False)  # nobody peers with it
    labelled = state([*reflectors, node("w1", {"kubescale.io/rr-client-of": "224.0.0.1"})])
    with pytest.raises(NodeRemovalError, match="without a reflector while 1 node"):
        refuse_unsafe(labelled, ["rr-1", "rr-2"], False)
    by_selector = state([*reflectors, node("w1", {"team": "x"})],
                        [{"spec": {"nodeSelector": "!has(kubescale.io/route-reflector)",
                                   "peerSelector": "has(kubescale.io/route-reflector)"}}])
    with pytest.raises(NodeRemovalError, match=r"\(w1\)"):
        refuse_unsafe(by_selector, ["rr-1", "rr-2"], False)
    by_ip = state([*reflectors, node("w1")], [{"spec": {"node": "w1", "peerIP": "10.0.0.2", "asNumber": 64512}}])
    with pytest.raises(NodeRemovalError):
        refuse_unsafe(by_ip, ["rr-1", "rr-2"], False)
    refuse_unsafe(by_ip, ["rr-1", "rr-2", "w1"], False)  # the client goes too
    refuse_unsafe(labelled, ["rr-1"], False)  # rr-2 stays


def test_require_spread_refuses_the_last_reflector_of_a_domain():
    def rr(name: str, rack: str) -> Stored:
        return node(name, {**RR, "kubescale.io/rack": rack}, "224.0.0.1")

    nodes = [rr("rr-1", "r1"), rr("rr-2", "r2"), rr("rr-3", "r2")]
    refuse_unsafe(state(nodes), ["rr-3"], True)
    refuse_unsafe(state(nodes), ["rr-1"], False)
    with pytest.raises(NodeRemovalError, match="in failure domain rack=r1"):
        refuse_unsafe(state(nodes), ["rr-1"], True)


@pytest.mark.parametrize(("args", "message"), [
    ((["a"], ["b"], False, False), "mutually exclusive"),
    ((None, ["b"], False, False), "needs remove_unlisted"),
    ((None, [], True, False), "keep: is empty"),
    ((None, None, True, False), "give keep"),
    (([], None, False, False), "name at least one"),
    ((["ok", "Not_OK"], None, False, False), "nodes[1]"),
])
def test_requests_refused_before_etcd(args, message):
    with pytest.raises(NodeRemovalError, match=message.replace("[", r"\[")):
        make_request(*args)
