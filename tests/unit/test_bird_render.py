"""confd-equivalent BIRD rendering from Calico v3 objects: one test per peering rule."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.topology.bird_render import (
    RenderError,
    render,
    render_all,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import sessions


def node(name, ip, labels=None, asn=None, cid=None):
    bgp = {"ipv4Address": f"{ip}/24"}
    if asn:
        bgp["asNumber"] = asn
    if cid:
        bgp["routeReflectorClusterID"] = cid
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"bgp": bgp}}


def peer(name, **spec):
    return {"metadata": {"name": name}, "spec": spec}


def config(mesh=True, asn=None):
    spec = {"nodeToNodeMeshEnabled": mesh}
    if asn:
        spec["asNumber"] = asn
    return [{"metadata": {"name": "default"}, "spec": spec}]


def protocols(text: str) -> dict[str, str]:
    """{protocol name: its body} of every ``protocol bgp`` block."""
    return dict(re.findall(r"protocol bgp (\S+) from bgp_template \{\n(.*?)\n\}", text, re.S))


def test_mesh_every_node_peers_every_other_passive_toward_the_greater_ip_string():
    objs = {"nodes": [node("a", "10.0.0.9"), node("b", "10.0.0.10"), node("c", "10.0.0.11")]}
    a = protocols(render(objs, "a"))
    assert set(a) == {"Mesh_10_0_0_10", "Mesh_10_0_0_11"}
    # confd compares the IPs as strings: "10.0.0.10" < "10.0.0.9", so a connects to b and c
    assert "passive on" not in a["Mesh_10_0_0_10"] and "passive on" not in a["Mesh_10_0_0_11"]
    b = protocols(render(objs, "b"))
    assert "passive on" in b["Mesh_10_0_0_9"] and "passive on" in b["Mesh_10_0_0_11"]
    assert "source address 10.0.0.10;" in b["Mesh_10_0_0_9"]


def test_mesh_off_renders_no_mesh_and_router_id_is_the_node_ip():
    objs = {"nodes": [node("a", "10.0.0.1"), node("b", "10.0.0.2")], "bgpconfigurations": config(mesh=False)}
    text = render(objs, "a")
    assert "router id 10.0.0.1;" in text
    assert protocols(text) == {}


def test_global_peer_ip_on_every_node_skipping_the_node_that_has_it():
    objs = {
        "nodes": [node("a", "10.0.0.1"), node("b", "10.0.0.2")],
        "bgpconfigurations": config(mesh=False),
        "bgppeers": [peer("tor", peerIP="192.0.2.1", asNumber=65000), peer("to-b", peerIP="10.0.0.2")],
    }
    a = protocols(render(objs, "a"))
    assert set(a) == {"Global_192_0_2_1", "Global_10_0_0_2"}
    assert "neighbor 192.0.2.1 as 65000;" in a["Global_192_0_2_1"]
    assert "neighbor 10.0.0.2 as 64512;" in a["Global_10_0_0_2"]  # no asNumber: the global AS
    b = protocols(render(objs, "b"))
    # b skips itself; the reverse pass makes b peer back with a (and with itself: skipped)
    assert set(b) == {"Global_192_0_2_1", "Node_10_0_0_1"}


def test_an_ipv6_peer_stays_out_of_the_ipv4_config():
    # confd puts IPv6 peers in bird6.cfg; the IPv4 bird.cfg (all this renders) has none
    objs = {
        "nodes": [node("a", "10.0.0.1")],
        "bgpconfigurations": config(mesh=False),
        "bgppeers": [peer("tor4", peerIP="192.0.2.1", asNumber=65000), peer("tor6", peerIP="fd00::1", asNumber=65000)],
    }
    text = render(objs, "a")
    assert set(protocols(text)) == {"Global_192_0_2_1"}
    assert "fd00" not in text


def test_node_scoped_peer_ip_and_the_reverse_only_when_the_as_matches():
    objs = {
        "nodes": [node("a", "10.0.0.1"), node("b", "10.0.0.2"), node("c", "10.0.0.3", asn=65001)],
        "bgpconfigurations": config(mesh=False),
        "bgppeers": [
            peer("a-b", node="a", peerIP="10.0.0.2"),
            peer("a-c", node="a", peerIP="10.0.0.3", asNumber=65002),
        ],
    }
    assert set(protocols(render(objs, "a"))) == {"Node_10_0_0_2", "Node_10_0_0_3"}
    assert set(protocols(render(objs, "b"))) == {"Node_10_0_0_1"}  # the reverse peering
    assert protocols(render(objs, "c")) == {}  # c's AS is 65001, the BGPPeer said 65002: no reverse


def test_peer_ip_with_a_port_names_the_protocol_after_it():
    objs = {
        "nodes": [node("a", "10.0.0.1")],
        "bgppeers": [peer("x", node="a", peerIP="192.0.2.7:1790", asNumber=65000)],
    }
    got = protocols(render(objs, "a"))
    assert got == {"Node_192_0_2_7_port_1790": "  neighbor 192.0.2.7 port 1790 as 65000;"}


def test_node_selector_and_peer_selector_with_the_reverse_peering():
    objs = {
        "nodes": [
            node("w1", "10.0.0.1", {"role": "worker"}),
            node("w2", "10.0.0.2", {"role": "worker"}),
            node("tor1", "10.0.0.9", {"role": "edge"}),
            node("x", "10.0.0.5", {"role": "other"}),
        ],
        "bgpconfigurations": config(mesh=False),
        "bgppeers": [peer("w-edge", nodeSelector="role == 'worker'", peerSelector="role == 'edge'")],
    }
    confs = render_all(objs)
    assert set(protocols(confs["w1"])) == {"Node_10_0_0_9"}
    assert set(protocols(confs["w2"])) == {"Node_10_0_0_9"}
    assert set(protocols(confs["tor1"])) == {"Node_10_0_0_1", "Node_10_0_0_2"}  # reverse peerings
    assert protocols(confs["x"]) == {}


def test_global_peer_selector_peers_every_node_with_the_selected_ones():
    objs = {
        "nodes": [node("a", "10.0.0.1"), node("b", "10.0.0.2"), node("r", "10.0.0.3", {"rr": "y"}, cid="1.1.1.1")],
        "bgpconfigurations": config(mesh=False),
        "bgppeers": [peer("all-to-rr", peerSelector="has(rr)")],
    }
    confs = render_all(objs)
    assert set(protocols(confs["a"])) == {"Global_10_0_0_3"}
    assert set(protocols(confs["r"])) == {"Node_10_0_0_1", "Node_10_0_0_2"}
    assert ("r", "a", "client") in sessions(objs)


def test_global_peering_wins_over_a_node_scoped_one_to_the_same_ip():
    objs = {
        "nodes": [node("a", "10.0.0.1")],
        "bgppeers": [
            peer("g", peerIP="192.0.2.1", asNumber=65000),
            peer("n", node="a", peerIP="192.0.2.1", asNumber=65009),
        ],
        "bgpconfigurations": config(mesh=False),
    }
    got = protocols(render(objs, "a"))
    assert got == {"Global_192_0_2_1": "  neighbor 192.0.2.1 as 65000;"}


def _rr_objects():
    return {
        "nodes": [
            node("rr1", "10.0.0.1", {"rr": "a"}, cid="224.0.0.1"),
            node("rr2", "10.0.0.2", {"rr": "a"}, cid="224.0.0.1"),
            node("rr3", "10.0.0.3", {"rr": "b"}, cid="224.0.0.2"),
            node("w1", "10.0.0.11"),
            node("w2", "10.0.0.12", asn=65100),
        ],
        "bgpconfigurations": config(mesh=True),
        "bgppeers": [
            peer("rr-mesh", nodeSelector="has(rr)", peerSelector="has(rr)"),
            peer("to-rr", nodeSelector="!has(rr)", peerSelector="rr == 'a'"),
        ],
    }


def test_reflector_renders_rr_client_and_cluster_id_for_clients_and_other_clusters_only():
    confs = render_all(_rr_objects())
    rr1 = protocols(confs["rr1"])
    assert "Mesh_10_0_0_11" not in rr1  # a reflector ignores the mesh setting
    assert "rr client;\n  rr cluster id 224.0.0.1;" in rr1["Node_10_0_0_11"]
    assert "rr client" not in rr1["Node_10_0_0_2"]  # same cluster
    assert "rr client;\n  rr cluster id 224.0.0.1;" in rr1["Node_10_0_0_3"]  # other cluster
    assert "rr client" not in rr1["Node_10_0_0_12"]  # other AS: eBGP, never a client
    assert "# This node is configured as a route reflector with cluster ID 224.0.0.1;" in confs["rr1"]
    w1 = protocols(confs["w1"])
    assert {"Node_10_0_0_1", "Node_10_0_0_2", "Mesh_10_0_0_12"} <= set(w1)
    assert not any("rr client" in body for body in w1.values())


def test_reflector_mesh_rules_of_the_three_confd_generations():
    """ignore (confd PR #116): a client still renders Mesh_<rr>; keep (PR #311): the reflector is in the
    mesh too; exclude (PR #619): nobody renders a mesh protocol to a reflector. Same sessions under
    ignore and exclude: Mesh_<rr> on a client never has a counterpart."""
    objs = _rr_objects()
    rr_mesh = {"Mesh_10_0_0_1", "Mesh_10_0_0_2", "Mesh_10_0_0_3"}
    ignore = {n: set(protocols(c)) for n, c in render_all(objs).items()}
    assert rr_mesh <= ignore["w1"] and not any(p.startswith("Mesh_") for p in ignore["rr1"])
    exclude = {n: set(protocols(c)) for n, c in render_all(objs, reflector_mesh="exclude").items()}
    assert not rr_mesh & exclude["w1"] and "Mesh_10_0_0_12" in exclude["w1"]
    assert not any(p.startswith("Mesh_") for p in exclude["rr1"])
    keep_confs = render_all(objs, reflector_mesh="keep")
    keep = protocols(keep_confs["rr1"])
    assert {"Mesh_10_0_0_2", "Mesh_10_0_0_11", "Mesh_10_0_0_12"} <= set(keep)
    assert "ignore node-to-node mesh setting" not in keep_confs["rr1"]
    assert sessions(objs) == sessions(objs, "exclude")  # Mesh_<rr> on a client never comes up
    with pytest.raises(ValueError, match="reflector_mesh must be one of ignore, keep, exclude"):
        render_all(objs, reflector_mesh="drop")


def test_as_per_node_local_as_and_peer_as():
    confs = render_all(_rr_objects())
    assert "local as 65100;" in confs["w2"]
    assert "local as 64512;" in confs["w1"]
    assert "neighbor 10.0.0.12 as 65100;" in protocols(confs["rr1"])["Node_10_0_0_12"]
    assert ("rr1", "w2", "ebgp") in sessions(_rr_objects())


def test_peer_ip_peering_has_no_cluster_id_so_a_reflector_treats_it_as_a_client():
    objs = {
        "nodes": [node("rr1", "10.0.0.1", cid="224.0.0.1"), node("rr2", "10.0.0.2", cid="224.0.0.1")],
        "bgppeers": [peer("rr1-rr2", node="rr1", peerIP="10.0.0.2")],
    }
    confs = render_all(objs)
    assert "rr client" in protocols(confs["rr1"])["Node_10_0_0_2"]  # confd's rr_cluster_id is "" here
    assert "rr client" not in protocols(confs["rr2"])["Node_10_0_0_1"]  # reverse: from the Node, with its ID
    assert ("rr1", "rr2", "client") in sessions(objs)


def test_blocks_are_announced_and_the_export_filter_follows_the_pools():
    objs = {
        "nodes": [node("a", "10.0.0.1")],
        "ippools": [{"metadata": {"name": "p"}, "spec": {"cidr": "10.64.0.0/10"}}],
        "blocks": {"a": ["10.64.0.0/26", "10.64.9.9/32"]},
    }
    text = render(objs, "a")
    assert "route 10.64.0.0/26 blackhole;" in text
    assert "10.64.9.9/32 blackhole" not in text  # confd skips /32 affinities
    assert "if ( net = 10.64.0.0/26 ) then { accept; }" in text
    assert "if ( net ~ 10.64.0.0/10 ) then { accept; }" in text
    assert "# No IP blocks" in render({"nodes": objs["nodes"]}, "a")


def test_an_unknown_node_or_one_without_a_bgp_address_is_refused():
    objs = {"nodes": [{"metadata": {"name": "x"}, "spec": {}}]}
    with pytest.raises(RenderError, match="'x'"):
        render(objs, "x")


@pytest.mark.skipif(not shutil.which("bird"), reason="needs bird2 to parse the config")
def test_bird_parses_every_rendered_config(tmp_path):
    objs = _rr_objects()
    objs["blocks"] = {"w1": ["10.64.0.0/26"]}
    objs["ippools"] = [{"metadata": {"name": "p"}, "spec": {"cidr": "10.64.0.0/10"}}]
    for name, text in render_all(objs).items():
        path = tmp_path / f"{name}.conf"
        path.write_text(text)
        proc = subprocess.run(["bird", "-p", "-c", str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (name, proc.stderr)
