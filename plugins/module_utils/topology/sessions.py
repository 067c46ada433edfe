# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico's BGP peering rules as a model: the sessions a datastore's objects give, and who reaches whom.

Pure code. The input is a mapping of Calico v3 objects by kind (``{"nodes": [...], "bgppeers":
[...], "bgpconfigurations": [...]}``, the shape of a plan's ``resources``; :func:`objects_from_kvs`
builds it from etcd key/values). The rules (docs/topology.md, "The session model", has the sources):

* a Node is a BGP speaker when it has ``spec.bgp.ipv4Address``; its AS is ``spec.bgp.asNumber`` or
  the global one (BGPConfiguration ``default`` ``asNumber``, else 64512);
* mesh: when ``nodeToNodeMeshEnabled`` is not false (absent = on), every speaker without a
  ``routeReflectorClusterID`` configures every other speaker; a node with a cluster ID ignores the
  mesh setting (confd: "ignore node-to-node mesh setting");
* a BGPPeer applies to the node named by ``node``, else to the nodes ``nodeSelector`` matches, else to
  every node (global). With ``peerSelector`` the local node configures each other matching node and
  that node configures the local one back (confd adds the reverse peering); with ``peerIP`` it
  configures that address only (a Calico node's IP, else an external speaker ``ip:<address>``);
* a session is up when both ends configure each other (external speakers are assumed to accept);
* a node with a cluster ID treats a peer whose cluster ID differs (or is absent) as its route
  reflector client (confd renders ``rr client; rr cluster id``);
* propagation (RFC 4271 / RFC 4456): a node sends its own route to every peer; an iBGP-learned route
  is not sent on to iBGP peers, except by a reflector: learned from a client it goes to every peer,
  from a non-client to clients only, with the reflector's cluster ID added to the CLUSTER_LIST; a
  reflector drops a route whose CLUSTER_LIST holds its own cluster ID (so reflectors sharing a
  cluster ID drop each other's reflected routes); eBGP-learned routes go to every peer, AS paths
  holding the receiver's AS are dropped;
* each node keeps one best route (shorter AS path, eBGP before iBGP, shorter CLUSTER_LIST) and, on a
  tie, the model takes the one that propagates least (learned from a non-client), so that
  "reachable" holds whatever BIRD's final tie-breakers pick.

This is the one place that knows these rules: the apply's order is proved against it
(tests/integration/test_bgp_topology_history.py) and it can render each node's BIRD peers
(:func:`configured`, the confd view).
"""

from __future__ import annotations

import heapq
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import KEY_ROOT
from ansible_collections.kubescale.calico.plugins.module_utils.calico.selector import (
    parse_selector,
    selector_matches,
)

DEFAULT_AS = 64512
KIND_KEYS = {"nodes": "nodes", "bgppeers": "bgppeers", "bgpconfigurations": "bgpconfigurations"}
ROLE_PEER = "peer"  # plain BGP session: neither end reflects for the other
ROLE_CLIENT = "client"  # (reflector, client, "client"): the first reflects for the second
ROLE_RR_RR = "rr-rr"  # reflectors of different clusters: each treats the other as a client
ROLE_EBGP = "ebgp"  # different AS numbers
ROLE_EXTERNAL = "external"  # a peerIP that is no Calico node (a router, an external reflector)


@dataclass(frozen=True)
class Speaker:
    """A Calico node that speaks BGP."""

    name: str
    ip: str
    asn: int
    cluster_id: str | None
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


def objects_from_kvs(kvs: Iterable) -> dict[str, list[dict]]:
    """Objects by kind from etcd key/values (anything with ``key`` and ``value``) under the v3 root."""
    out: dict[str, list[dict]] = {kind: [] for kind in KIND_KEYS}
    for kv in kvs:
        key = kv.key if isinstance(kv.key, str) else kv.key.decode()
        if not key.startswith(KEY_ROOT):
            continue
        kind = key[len(KEY_ROOT) :].split("/", 1)[0]
        if kind in out:
            out[kind].append(json.loads(kv.value))
    return out


def _spec(obj: Mapping) -> Mapping:
    return obj.get("spec") or {}


def global_as(objects: Mapping) -> int:
    for cfg in objects.get("bgpconfigurations") or []:
        if cfg["metadata"]["name"] == "default" and _spec(cfg).get("asNumber"):
            return int(_spec(cfg)["asNumber"])
    return DEFAULT_AS


def mesh_enabled(objects: Mapping) -> bool:
    for cfg in objects.get("bgpconfigurations") or []:
        if cfg["metadata"]["name"] == "default":
            return _spec(cfg).get("nodeToNodeMeshEnabled", True) is not False
    return True


def speakers(objects: Mapping) -> dict[str, Speaker]:
    """The BGP speakers by node name (Nodes with an IPv4 BGP address)."""
    default_as = global_as(objects)
    out = {}
    for node in objects.get("nodes") or []:
        bgp = _spec(node).get("bgp") or {}
        if not bgp.get("ipv4Address"):
            continue
        name = node["metadata"]["name"]
        out[name] = Speaker(
            name=name,
            ip=str(ipaddress.ip_interface(bgp["ipv4Address"]).ip),
            asn=int(bgp.get("asNumber") or default_as),
            cluster_id=bgp.get("routeReflectorClusterID") or None,
            labels=dict(node["metadata"].get("labels") or {}),
        )
    return out


def _local_nodes(spec: Mapping, nodes: Mapping[str, Speaker]) -> list[str]:
    if spec.get("node"):
        return [spec["node"]] if spec["node"] in nodes else []
    if spec.get("nodeSelector"):
        tree = parse_selector(spec["nodeSelector"], "nodeSelector")
        return [n for n, s in nodes.items() if selector_matches(tree, s.labels)]
    return list(nodes)


def _peer_ip(text: str) -> str:
    """The address of a peerIP (``<ip>``, ``<ipv4>:<port>`` or ``[<ipv6>]:<port>``)."""
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def configured(objects: Mapping) -> dict[str, set[str]]:
    """What each node's BIRD is told to peer with (confd's view): node name -> node names and ``ip:<addr>``."""
    nodes = speakers(objects)
    by_ip = {s.ip: n for n, s in nodes.items()}
    out: dict[str, set[str]] = {n: set() for n in nodes}
    if mesh_enabled(objects):
        for name, s in nodes.items():
            if s.cluster_id is None:
                out[name].update(m for m in nodes if m != name)
    for peer in objects.get("bgppeers") or []:
        spec = _spec(peer)
        local = _local_nodes(spec, nodes)
        if spec.get("peerSelector"):
            tree = parse_selector(spec["peerSelector"], "peerSelector")
            remote = [n for n, s in nodes.items() if selector_matches(tree, s.labels)]
            for a in local:
                for b in remote:
                    if a != b:
                        out[a].add(b)
                        out[b].add(a)  # the reverse peering confd adds
        elif spec.get("peerIP"):
            ip = _peer_ip(str(spec["peerIP"]))
            target = by_ip.get(ip, f"ip:{ip}")
            for a in local:
                if a != target:
                    out[a].add(target)
    return out


def _treats_as_client(local: Speaker, peer: Speaker) -> bool:
    return local.cluster_id is not None and peer.cluster_id != local.cluster_id


def sessions(objects: Mapping) -> set[tuple[str, str, str]]:
    """Established sessions as (a, b, role); for ROLE_CLIENT a is the reflector, else a < b."""
    nodes = speakers(objects)
    config = configured(objects)
    out: set[tuple[str, str, str]] = set()
    for a, targets in config.items():
        for b in targets:
            if b.startswith("ip:"):
                out.add((a, b, ROLE_EXTERNAL))
                continue
            if a > b or a not in config.get(b, ()):
                continue
            sa, sb = nodes[a], nodes[b]
            if sa.asn != sb.asn:
                out.add((a, b, ROLE_EBGP))
                continue
            a_reflects, b_reflects = _treats_as_client(sa, sb), _treats_as_client(sb, sa)
            if a_reflects and b_reflects:
                out.add((a, b, ROLE_RR_RR))
            elif a_reflects:
                out.add((a, b, ROLE_CLIENT))
            elif b_reflects:
                out.add((b, a, ROLE_CLIENT))
            else:
                out.add((a, b, ROLE_PEER))
    return out


class _Graph:
    """Adjacency for propagation: iBGP peers, eBGP peers, and whom each node treats as a client."""

    def __init__(self, objects: Mapping) -> None:
        self.nodes = speakers(objects)
        self.ibgp: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.ebgp: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.clients: dict[str, set[str]] = {n: set() for n in self.nodes}
        for a, b, role in sessions(objects):
            if role == ROLE_EXTERNAL:
                continue
            table = self.ebgp if role == ROLE_EBGP else self.ibgp
            table[a].append(b)
            table[b].append(a)
            if role in (ROLE_CLIENT, ROLE_RR_RR):
                self.clients[a].add(b)
            if role == ROLE_RR_RR:
                self.clients[b].add(a)
        for adjacency in (self.ibgp, self.ebgp):
            for peers in adjacency.values():
                peers.sort()
        # Leaves (no cluster ID, no eBGP peer) never pass a route on and never drop one: they are
        # marked as receivers directly; only the other nodes go through the queue.
        leaf = {n: s.cluster_id is None and not self.ebgp[n] for n, s in self.nodes.items()}
        self.ibgp_split = {n: _split(peers, leaf) for n, peers in self.ibgp.items()}
        self.client_split = {n: _split(sorted(c), leaf) for n, c in self.clients.items()}

    def receivers(self, origin: str) -> set[str]:
        """Nodes that end up with a route to ``origin`` (Dijkstra over best routes, see the module doc)."""
        # entry: (as_path_len, learned_over_ibgp, cluster_list_len, from_client, node, sender, cluster_list, as_path)
        heap: list[tuple] = [(-1, 0, 0, 0, origin, None, (), ())]
        settled: set[str] = set()
        leaves: set[str] = set()
        while heap:
            as_len, over_ibgp, _cl_len, from_client, node, sender, cluster_list, as_path = heapq.heappop(heap)
            if node in settled:
                continue
            settled.add(node)
            me = self.nodes[node]
            if over_ibgp and node != origin and me.cluster_id is not None:
                leaf_targets, targets_i = self.ibgp_split[node] if from_client else self.client_split[node]
            elif over_ibgp and node != origin:
                leaf_targets, targets_i = (), ()
            else:
                leaf_targets, targets_i = self.ibgp_split[node]
            leaves.update(leaf_targets)
            reflected = node != origin and over_ibgp
            new_cl = (*cluster_list, me.cluster_id) if reflected else cluster_list
            for peer in targets_i:
                if peer in settled or peer == sender:
                    continue
                them = self.nodes[peer]
                if them.cluster_id is not None and them.cluster_id in new_cl:
                    continue  # CLUSTER_LIST loop: a reflector drops its own cluster's reflections
                heapq.heappush(
                    heap,
                    (max(as_len, 0), 1, len(new_cl), int(node in self.clients[peer]), peer, node, new_cl, as_path),
                )
            out_path = (*as_path, me.asn)
            for peer in self.ebgp[node]:
                if peer in settled or peer == sender or self.nodes[peer].asn in out_path:
                    continue
                heapq.heappush(heap, (len(out_path), 0, 0, 0, peer, node, (), out_path))
        settled |= leaves
        settled.discard(origin)
        return settled


def _split(peers: list[str], leaf: Mapping[str, bool]) -> tuple[list[str], list[str]]:
    return [p for p in peers if leaf[p]], [p for p in peers if not leaf[p]]


def reachability(objects: Mapping) -> dict[str, set[str]]:
    """{node: the nodes whose route it has}, for every BGP speaker among the Nodes."""
    graph = _Graph(objects)
    reach: dict[str, set[str]] = {n: set() for n in graph.nodes}
    for origin in graph.nodes:
        for node in graph.receivers(origin):
            reach[node].add(origin)
    return reach


def unreachable(objects: Mapping) -> dict[str, set[str]]:
    """{node: the speakers it has no route to}, only for nodes missing some; empty = full reachability."""
    reach = reachability(objects)
    everyone = set(reach)
    return {n: missing for n, got in reach.items() if (missing := everyone - got - {n})}
