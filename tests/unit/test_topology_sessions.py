"""The session/reachability model (topology/sessions.py): one test per peering or propagation rule."""

from __future__ import annotations

import json
from types import SimpleNamespace

from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import (
    ROLE_CLIENT,
    ROLE_EBGP,
    ROLE_EXTERNAL,
    ROLE_PEER,
    ROLE_RR_RR,
    configured,
    objects_from_kvs,
    reachability,
    sessions,
    unreachable,
)

RR = "kubescale.io/route-reflector"


def node(name: str, ip: str, cid: str | None = None, asn: int | None = None, **labels: str) -> dict:
    bgp: dict = {"ipv4Address": f"{ip}/24"}
    if cid:
        bgp["routeReflectorClusterID"] = cid
    if asn:
        bgp["asNumber"] = asn
    return {"kind": "Node", "metadata": {"name": name, "labels": dict(labels)}, "spec": {"bgp": bgp}}


def peer(name: str, **spec) -> dict:
    return {"kind": "BGPPeer", "metadata": {"name": name}, "spec": spec}


def world(nodes: list[dict], peers: list[dict] = (), mesh: bool | None = True, asn: int | None = None) -> dict:
    configs = []
    if mesh is not None:
        spec: dict = {"nodeToNodeMeshEnabled": mesh}
        if asn:
            spec["asNumber"] = asn
        configs.append({"kind": "BGPConfiguration", "metadata": {"name": "default"}, "spec": spec})
    return {"nodes": list(nodes), "bgppeers": list(peers), "bgpconfigurations": configs}


def three(mesh=True, peers=()):
    return world([node("a", "10.0.0.1"), node("b", "10.0.0.2"), node("c", "10.0.0.3")], peers, mesh)


def test_mesh_peers_everyone_and_everyone_reaches_everyone():
    objs = three()
    assert sessions(objs) == {("a", "b", ROLE_PEER), ("a", "c", ROLE_PEER), ("b", "c", ROLE_PEER)}
    assert unreachable(objs) == {}


def test_mesh_is_on_without_a_bgpconfiguration_and_off_when_disabled():
    assert len(sessions(three(mesh=None))) == 3
    off = three(mesh=False)
    assert sessions(off) == set()
    assert unreachable(off) == {"a": {"b", "c"}, "b": {"a", "c"}, "c": {"a", "b"}}


def test_a_node_without_an_ipv4_address_is_no_speaker():
    objs = three()
    objs["nodes"].append({"kind": "Node", "metadata": {"name": "d"}, "spec": {}})
    assert set(reachability(objs)) == {"a", "b", "c"}


def test_a_reflector_ignores_the_mesh_setting():
    objs = world([node("a", "10.0.0.1"), node("b", "10.0.0.2"), node("r", "10.0.0.9", cid="224.0.0.1")])
    assert configured(objs)["r"] == set()
    assert "r" in configured(objs)["a"]  # a configures r, but r does not configure a: no session
    assert sessions(objs) == {("a", "b", ROLE_PEER)}
    assert unreachable(objs)["r"] == {"a", "b"}


def test_peer_selector_adds_the_reverse_peering():
    objs = world(
        [node("a", "10.0.0.1"), node("r", "10.0.0.9", **{RR: "true"})],
        [peer("p", nodeSelector=f"!has({RR})", peerSelector=f"has({RR})")],
        mesh=False,
    )
    assert configured(objs) == {"a": {"r"}, "r": {"a"}}
    assert sessions(objs) == {("a", "r", ROLE_PEER)}


def test_global_node_and_selector_scopes():
    nodes = [node("a", "10.0.0.1", rack="r1"), node("b", "10.0.0.2", rack="r2"), node("c", "10.0.0.3")]
    glob = world(nodes, [peer("g", peerIP="10.9.9.9", asNumber=65000)], mesh=False)
    assert {n for n, t in configured(glob).items() if "ip:10.9.9.9" in t} == {"a", "b", "c"}
    scoped = world(nodes, [peer("n", node="b", peerIP="10.9.9.9", asNumber=65000)], mesh=False)
    assert {n for n, t in configured(scoped).items() if t} == {"b"}
    sel = world(nodes, [peer("s", nodeSelector="rack == 'r1'", peerIP="10.9.9.9:1790", asNumber=65000)], mesh=False)
    assert configured(sel)["a"] == {"ip:10.9.9.9"} and configured(sel)["b"] == set()
    assert sessions(sel) == {("a", "ip:10.9.9.9", ROLE_EXTERNAL)}


def test_peer_ip_of_a_calico_node_gets_the_reverse_peering_when_the_as_matches():
    # confd client.go updatePeersV1, second pass: the node with peerIP and the BGPPeer's AS peers back
    nodes = [node("a", "10.0.0.1"), node("b", "10.0.0.2")]
    one_way = world(nodes, [peer("p", node="a", peerIP="10.0.0.2", asNumber=64512)], mesh=False)
    assert configured(one_way) == {"a": {"b"}, "b": {"a"}}
    assert sessions(one_way) == {("a", "b", ROLE_PEER)}
    other_as = world(nodes, [peer("p", node="a", peerIP="10.0.0.2", asNumber=65000)], mesh=False)
    assert configured(other_as) == {"a": {"b"}, "b": set()}
    assert sessions(other_as) == set()


def test_roles_from_cluster_ids():
    nodes = [
        node("c1", "10.0.0.1", **{"grp": "x"}),
        node("r1", "10.0.0.11", cid="224.0.0.1", **{RR: "true"}),
        node("r2", "10.0.0.12", cid="224.0.0.1", **{RR: "true"}),
        node("r3", "10.0.0.13", cid="224.0.0.2", **{RR: "true"}),
    ]
    objs = world(nodes, [peer("rrs", peerSelector=f"has({RR})")], mesh=False)
    assert sessions(objs) == {
        ("r1", "c1", ROLE_CLIENT),
        ("r2", "c1", ROLE_CLIENT),
        ("r3", "c1", ROLE_CLIENT),
        ("r1", "r2", ROLE_PEER),  # same cluster ID: not clients of each other
        ("r1", "r3", ROLE_RR_RR),
        ("r2", "r3", ROLE_RR_RR),
    }


def test_different_as_numbers_make_an_ebgp_session():
    objs = world([node("a", "10.0.0.1", asn=65001), node("b", "10.0.0.2", asn=65002)])
    assert sessions(objs) == {("a", "b", ROLE_EBGP)}


def test_ibgp_learned_routes_are_not_passed_on_without_a_reflector():
    # a-b and b-c sessions, no a-c: b (no cluster ID) does not pass a's route to c
    objs = world(
        [node("a", "10.0.0.1", x="a"), node("b", "10.0.0.2", x="b"), node("c", "10.0.0.3", x="c")],
        [peer("ab", nodeSelector="x == 'a'", peerSelector="x == 'b'"),
         peer("bc", nodeSelector="x == 'b'", peerSelector="x == 'c'")],
        mesh=False,
    )
    assert unreachable(objs) == {"a": {"c"}, "c": {"a"}}


def test_a_reflector_passes_client_routes_to_everyone():
    objs = world(
        [node("a", "10.0.0.1", x="a"), node("r", "10.0.0.2", cid="224.0.0.1", x="r"), node("c", "10.0.0.3", x="c")],
        [peer("p", nodeSelector="x != 'r'", peerSelector="x == 'r'")],
        mesh=False,
    )
    assert unreachable(objs) == {}


def test_a_non_client_route_goes_to_clients_only():
    # n is a non-client of r (same cluster ID but not a reflector of anyone else); a is r's client.
    # n's route reaches a (non-client -> clients), but r does not send it to m, another non-client.
    objs = world(
        [
            node("a", "10.0.0.1", x="a"),
            node("r", "10.0.0.2", cid="224.0.0.1", x="r"),
            node("n", "10.0.0.3", cid="224.0.0.1", x="n"),
            node("m", "10.0.0.4", cid="224.0.0.1", x="m"),
        ],
        [peer("p", nodeSelector="x != 'r'", peerSelector="x == 'r'")],
        mesh=False,
    )
    reach = reachability(objs)
    assert "n" in reach["a"]
    assert "n" not in reach["m"] and "m" not in reach["n"]


def test_reflectors_sharing_a_cluster_id_drop_each_others_reflections():
    # a is a client of r1 only, b of r2 only; r1 and r2 share a cluster ID: a's route reflected by r1
    # carries 224.0.0.1 in its CLUSTER_LIST, so r2 drops it and b never learns it.
    nodes = [
        node("a", "10.0.0.1", x="a"),
        node("b", "10.0.0.2", x="b"),
        node("r1", "10.0.0.11", cid="224.0.0.1", x="r1", **{RR: "true"}),
        node("r2", "10.0.0.12", cid="224.0.0.1", x="r2", **{RR: "true"}),
    ]
    peers = [
        peer("a", nodeSelector="x == 'a'", peerSelector="x == 'r1'"),
        peer("b", nodeSelector="x == 'b'", peerSelector="x == 'r2'"),
        peer("rr", nodeSelector=f"has({RR})", peerSelector=f"has({RR})"),
    ]
    same = world(nodes, peers, mesh=False)
    assert "a" not in reachability(same)["b"]
    assert "a" not in reachability(same)["r2"]  # r2 drops r1's reflection: its own ID is in the list
    assert "r1" in reachability(same)["r2"]  # r1's own route is not a reflection
    # with different cluster IDs r2 treats r1 as a client and passes a's route on to b
    nodes[3] = node("r2", "10.0.0.12", cid="224.0.0.2", x="r2", **{RR: "true"})
    assert unreachable(world(nodes, peers, mesh=False)) == {}


def test_ebgp_routes_pass_on_and_as_loops_are_dropped():
    chain = world(
        [node("a", "10.0.0.1", asn=65001, x="a"), node("b", "10.0.0.2", asn=65002, x="b"),
         node("c", "10.0.0.3", asn=65003, x="c")],
        [peer("ab", nodeSelector="x == 'a'", peerSelector="x == 'b'"),
         peer("bc", nodeSelector="x == 'b'", peerSelector="x == 'c'")],
        mesh=False,
    )
    assert unreachable(chain) == {}
    loop = world(
        [node("a", "10.0.0.1", asn=65001, x="a"), node("b", "10.0.0.2", asn=65002, x="b"),
         node("c", "10.0.0.3", asn=65001, x="c")],
        chain["bgppeers"],
        mesh=False,
    )
    assert unreachable(loop) == {"a": {"c"}, "c": {"a"}}  # a's path holds 65001, c's AS


def test_objects_from_etcd_key_values():
    root = "/calico/resources/v3/projectcalico.org/"
    objs = three()
    kvs = [SimpleNamespace(key=f"{root}nodes/{n['metadata']['name']}", value=json.dumps(n)) for n in objs["nodes"]]
    kvs.append(SimpleNamespace(key=f"{root}bgpconfigurations/default", value=json.dumps(objs["bgpconfigurations"][0])))
    kvs.append(SimpleNamespace(key=f"{root}ippools/p", value="{}"))
    got = objects_from_kvs(kvs)
    assert [n["metadata"]["name"] for n in got["nodes"]] == ["a", "b", "c"]
    assert len(got["bgpconfigurations"]) == 1 and got["bgppeers"] == []
