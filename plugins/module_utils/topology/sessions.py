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
  mesh setting (confd: "ignore node-to-node mesh setting"). confd changed this twice, so
  :func:`peerings` takes the rule (``reflector_mesh``): ``ignore`` (the default; confd PR #116,
  Calico 3.3), ``keep`` (confd PR #311, Jan 2020: a reflector stays in the mesh like any node) and
  ``exclude`` (confd PR #619, Oct 2021: a reflector renders no mesh and every other node skips it
  in its mesh, "Skipping <ip> as it is a route reflector"). The sessions that come up are the same
  under ``ignore`` and ``exclude``; the rendered protocols differ (``ignore``: a client also renders
  ``Mesh_<rr>``, which never comes up but can take the reflector's incoming connection);
* a BGPPeer applies to the node named by ``node``, else to the nodes ``nodeSelector`` matches, else to
  every node (global). With ``peerSelector`` the local node configures each other matching node and
  that node configures the local one back (confd adds the reverse peering); with ``peerIP`` it
  configures that address (a Calico node's IP, else an external speaker ``ip:<address>``), and a
  Calico node with that IP and AS configures the local node back; :func:`peerings` has the details
  (global before node-scoped, the first peering of an IP wins, no peering to oneself);
* a session is up when both ends configure each other (external speakers are assumed to accept);
* a node with a cluster ID treats a same-AS peer whose cluster ID differs (or is absent) as its route
  reflector client (confd renders ``rr client; rr cluster id``); a ``peerIP`` peering carries no
  cluster ID, so a reflector treats a same-AS ``peerIP`` peer as a client even within its cluster;
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
KIND_KEYS = {"nodes": "nodes", "bgppeers": "bgppeers", "bgpconfigurations": "bgpconfigurations", "ippools": "ippools"}
SCOPE_MESH = "mesh"  # confd's "Node-to-node mesh" section (protocol Mesh_<ip>)
REFLECTOR_MESH_IGNORE = "ignore"  # a reflector renders no mesh; others still render Mesh_<rr>
REFLECTOR_MESH_KEEP = "keep"  # a reflector is in the mesh like any node
REFLECTOR_MESH_EXCLUDE = "exclude"  # a reflector renders no mesh and no node renders Mesh_<rr>
REFLECTOR_MESH_RULES = (REFLECTOR_MESH_IGNORE, REFLECTOR_MESH_KEEP, REFLECTOR_MESH_EXCLUDE)
SCOPE_GLOBAL = "global"  # /global/peer_v4/<ip>: every node renders it (protocol Global_<ip>)
SCOPE_NODE = "node"  # /host/<node>/peer_v4/<ip> (protocol Node_<ip>)
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


@dataclass(frozen=True)
class Peering:
    """One BGP peer of one node as confd renders it (a ``protocol bgp`` block)."""

    name: str  # the peer's node name, or ``ip:<address>`` for a speaker that is no Calico node
    ip: str
    asn: int
    rr_cluster_id: str  # the peer's cluster ID as confd knows it ("" for a peerIP peering)
    scope: str  # SCOPE_MESH / SCOPE_GLOBAL / SCOPE_NODE
    port: int | None = None

    def rr_client(self, local: Speaker) -> bool:
        """confd's ``rr client; rr cluster id`` test: same AS, local has a cluster ID, the peer's differs."""
        return (
            self.scope != SCOPE_MESH
            and self.asn == local.asn
            and local.cluster_id is not None
            and self.rr_cluster_id != local.cluster_id
        )


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


def _peer_port(text: str) -> int | None:
    if text.startswith("[") and "]:" in text:
        return int(text.rsplit(":", 1)[1])
    return int(text.rsplit(":", 1)[1]) if text.count(":") == 1 else None


def _as_peer(s: Speaker) -> tuple[str, int, str]:
    """confd's ``nodeAsBGPPeers``: a node seen as a peer (IP, AS, cluster ID)."""
    return s.ip, s.asn, s.cluster_id or ""


def _remote(spec: Mapping, nodes: Mapping[str, Speaker], default_as: int) -> list[tuple[str, int, str, int | None]]:
    """The peers a BGPPeer names: the ``peerSelector`` nodes, else its ``peerIP`` (no cluster ID)."""
    if spec.get("peerSelector"):
        tree = parse_selector(spec["peerSelector"], "peerSelector")
        return [(*_as_peer(s), None) for s in nodes.values() if selector_matches(tree, s.labels)]
    if not spec.get("peerIP"):
        return []
    text = str(spec["peerIP"])
    return [(_peer_ip(text), int(spec.get("asNumber") or default_as), "", _peer_port(text))]


def _reverse_locals(spec: Mapping, nodes: Mapping[str, Speaker], default_as: int) -> list[str]:
    """confd's second pass: the nodes a BGPPeer's remote side names (peerSelector, else peerIP + AS)."""
    if spec.get("peerSelector"):
        tree = parse_selector(spec["peerSelector"], "peerSelector")
        return [n for n, s in nodes.items() if selector_matches(tree, s.labels)]
    if not spec.get("peerIP"):
        return []
    ip, asn = _peer_ip(str(spec["peerIP"])), int(spec.get("asNumber") or default_as)
    return [n for n, s in nodes.items() if s.ip == ip and s.asn == asn]


def peerings(objects: Mapping, reflector_mesh: str = REFLECTOR_MESH_IGNORE) -> dict[str, list[Peering]]:
    """Each speaker's rendered BGP peers, in confd's order: mesh, global, node-specific.

    ``reflector_mesh``: which confd's mesh rule for nodes with a cluster ID (module docstring).

    confd (``pkg/backends/calico/client.go`` ``updatePeersV1``): BGPPeers without ``node`` and
    ``nodeSelector`` become global peerings (keyed by peer IP, the first one wins), then the
    node-scoped ones (skipped where a global one has that IP), then the reverse peerings (each node
    the remote side names peers back with every local node, unless a peering with that IP exists).
    A peering to the node's own IP is skipped (the template's "Skipping ourselves").
    """
    if reflector_mesh not in REFLECTOR_MESH_RULES:
        raise ValueError(f"reflector_mesh must be one of {', '.join(REFLECTOR_MESH_RULES)}, got {reflector_mesh!r}")
    nodes = speakers(objects)
    default_as = global_as(objects)
    by_ip = {s.ip: n for n, s in nodes.items()}
    ordered = sorted(objects.get("bgppeers") or [], key=lambda p: p["metadata"]["name"])
    global_peers: dict[str, Peering] = {}
    node_peers: dict[str, dict[str, Peering]] = {n: {} for n in nodes}

    def make(ip: str, asn: int, cid: str, port: int | None, scope: str) -> Peering:
        return Peering(by_ip.get(ip, f"ip:{ip}"), ip, asn, cid, scope, port)

    def emit_node(local: str, peer: tuple[str, int, str, int | None]) -> None:
        if peer[0] in global_peers or peer[0] in node_peers[local]:
            return
        node_peers[local][peer[0]] = make(*peer, SCOPE_NODE)

    for bgp_peer in ordered:
        spec = _spec(bgp_peer)
        if not spec.get("node") and not spec.get("nodeSelector"):
            for peer in _remote(spec, nodes, default_as):
                global_peers.setdefault(peer[0], make(*peer, SCOPE_GLOBAL))
    for bgp_peer in ordered:
        spec = _spec(bgp_peer)
        if spec.get("node") or spec.get("nodeSelector"):
            remote = _remote(spec, nodes, default_as)
            for local in _local_nodes(spec, nodes):
                for peer in remote:
                    emit_node(local, peer)
    for bgp_peer in ordered:
        spec = _spec(bgp_peer)
        back = [(*_as_peer(nodes[n]), None) for n in _local_nodes(spec, nodes)]
        for local in _reverse_locals(spec, nodes, default_as):
            for peer in back:
                emit_node(local, peer)

    mesh = mesh_enabled(objects)
    mesh_peers = {n: make(*_as_peer(s), None, SCOPE_MESH) for n, s in sorted(nodes.items())} if mesh else {}
    out: dict[str, list[Peering]] = {}
    for name, me in nodes.items():
        rendered: list[Peering] = []
        if mesh and (me.cluster_id is None or reflector_mesh == REFLECTOR_MESH_KEEP):
            skip = {n for n, s in nodes.items() if s.cluster_id} if reflector_mesh == REFLECTOR_MESH_EXCLUDE else set()
            rendered += [p for n, p in mesh_peers.items() if n != name and n not in skip]
        rendered += [p for ip, p in sorted(global_peers.items()) if ip != me.ip]
        rendered += [p for ip, p in sorted(node_peers[name].items()) if ip != me.ip]
        out[name] = rendered
    return out


def configured(objects: Mapping, rendered: Mapping[str, list[Peering]] | None = None) -> dict[str, set[str]]:
    """What each node's BIRD is told to peer with (confd's view): node name -> node names and ``ip:<addr>``."""
    rendered = peerings(objects) if rendered is None else rendered
    return {name: {p.name for p in peers} for name, peers in rendered.items()}


def reflected_by(objects: Mapping, rendered: Mapping[str, list[Peering]] | None = None) -> dict[str, set[str]]:
    """{node: the peers it renders with ``rr client``} (the sessions on which it reflects)."""
    nodes = speakers(objects)
    rendered = peerings(objects) if rendered is None else rendered
    return {n: {p.name for p in peers if p.rr_client(nodes[n])} for n, peers in rendered.items()}


def sessions(objects: Mapping, reflector_mesh: str = REFLECTOR_MESH_IGNORE) -> set[tuple[str, str, str]]:
    """Established sessions as (a, b, role); for ROLE_CLIENT a is the reflector, else a < b."""
    nodes = speakers(objects)
    rendered = peerings(objects, reflector_mesh)
    config = configured(objects, rendered)
    reflects = reflected_by(objects, rendered)
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
            a_reflects, b_reflects = b in reflects[a], a in reflects[b]
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
