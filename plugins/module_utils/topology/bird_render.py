# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Calico node's BIRD config rendered from the v3 datastore, the way calico-node's confd does.

Who peers with whom is :func:`sessions.peerings` (the one model of Calico's peering rules); this
module only writes it out as BIRD 2 config. Followed (read through the search tools, our own code):

* projectcalico/confd ``etc/calico/confd/templates/bird.cfg.template``: ``router id`` = the node's
  IPv4 address; ``template bgp bgp_template`` with ``local as`` (node AS, else global), ``multihop``,
  ``gateway recursive``, ``import all``, ``export filter calico_export_to_bgp_peers``, ``add paths
  on``, ``graceful restart`` and the timers ``connect delay time 2; connect retry time 5; error wait
  time 5,30``; the mesh as ``protocol bgp Mesh_<ip>`` with ``passive on`` toward a peer whose IP is
  greater (a string comparison in Go's template); ``Global_<ip>`` and ``Node_<ip>`` peers with ``rr
  client; rr cluster id <own id>`` when the AS is the same, the node has a cluster ID and the peer's
  cluster ID differs; ``_port_<n>`` added to the name when the peer has a port; a node with a cluster
  ID renders no mesh (Calico >= 3.3: "ignore node-to-node mesh setting"); confd's later mesh rules
  for reflectors (PR #311 keeps them in the mesh, PR #619 also drops ``Mesh_<rr>`` on every other
  node) are the ``reflector_mesh`` argument, see :func:`sessions.peerings`;
* ``bird_aggr.cfg.template``: ``protocol static`` with ``route <block> blackhole`` for each block
  affine to the node (``/calico/ipam/v2/host/<node>/ipv4/block/<cidr>``, /32 skipped) and
  ``calico_aggr()``, which exports a block itself and nothing beneath it;
* ``bird_ipam.cfg.template``: ``filter calico_export_to_bgp_peers`` accepts what lies in an IP pool,
  rejects the rest;
* ``pkg/backends/calico/client.go`` ``updatePeersV1`` / ``nodeAsBGPPeers``: see :func:`sessions.peerings`.

BIRD 2 syntax: the import/export and ``add paths`` go into an ``ipv4`` channel. The ``direct``
protocol is rendered (``gateway recursive`` resolves next hops through it). Not rendered: the
kernel protocol (the lab measures BGP, not FIB programming), passwords, communities,
IPv6 (confd's ``bird6.cfg``: IPv6 peers are left out of the IPv4 config, as confd's ``bird.cfg``
leaves them). :func:`read_datastore` is what calico-node's syncer sees: one paged read of the
Calico v3 resources and one of the IPAM host affinities.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.kubescale.calico.plugins.module_utils.calico.ipam import HOST_PREFIX
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import KEY_ROOT
from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import (
    REFLECTOR_MESH_IGNORE,
    SCOPE_GLOBAL,
    SCOPE_MESH,
    Peering,
    Speaker,
    objects_from_kvs,
    peerings,
    speakers,
)

TIMERS = ("connect delay time 2;", "connect retry time 5;", "error wait time 5,30;")
DIRECT = '-"cali*", -"kube-ipvs*", -"tap*", -"qvo*", -"qvb*", "*"'  # confd's direct protocol
_PROTO_PREFIX = {SCOPE_MESH: "Mesh", SCOPE_GLOBAL: "Global"}


class RenderError(ValueError):
    """The node cannot be rendered (unknown, or no IPv4 BGP address)."""


def read_datastore(client, page_size: int = 1000, revision: int | None = None) -> dict:
    """Nodes, BGPPeers, BGPConfigurations and IPPools from etcd, plus ``blocks``: {node: [cidr]}.

    Both reads are at one revision (``revision``, else the current one), stored as ``revision``.
    """
    revision = revision or client.revision()
    objects: dict = objects_from_kvs(client.range(KEY_ROOT, page_size=page_size, revision=revision))
    blocks: dict[str, list[str]] = {}
    for kv in client.range(HOST_PREFIX, page_size=page_size, keys_only=True, revision=revision):
        key = kv.key if isinstance(kv.key, str) else kv.key.decode()
        parts = key[len(HOST_PREFIX) :].split("/")
        if len(parts) == 4 and parts[1] == "ipv4" and parts[2] == "block":
            blocks.setdefault(parts[0], []).append(parts[3].replace("-", "/"))
    objects["blocks"] = {node: sorted(cidrs) for node, cidrs in blocks.items()}
    objects["revision"] = revision
    return objects


def _ip_gt(a: str, b: str) -> bool:
    """Go template ``gt`` on two strings: byte-wise comparison, as confd compares the mesh IPs."""
    return a.encode() > b.encode()


def protocol_name(peer: Peering) -> str:
    name = f"{_PROTO_PREFIX.get(peer.scope, 'Node')}_{peer.ip.replace('.', '_').replace(':', '_')}"
    return f"{name}_port_{peer.port}" if peer.port else name


def _peer_block(peer: Peering, local_ip: str, local_as: int, cluster_id: str | None, reflects: bool) -> list[str]:
    port = f"port {peer.port} " if peer.port else ""
    lines = [f"protocol bgp {protocol_name(peer)} from bgp_template {{", f"  neighbor {peer.ip} {port}as {peer.asn};"]
    if peer.scope == SCOPE_MESH:
        lines.append(f"  source address {local_ip};")
        if _ip_gt(peer.ip, local_ip):
            lines.append("  passive on; # Mesh is unidirectional, peer will connect to us.")
    if reflects:
        lines += ["  rr client;", f"  rr cluster id {cluster_id};"]
    return [*lines, "}"]


def _filters(objects: Mapping, blocks: list[str]) -> list[str]:
    out = ["function calico_aggr ()", "{"]
    for cidr in blocks:
        out.append(f"  if ( net = {cidr} ) then {{ accept; }}")
        out.append(f"  if ( net ~ {cidr} ) then {{ reject; }}")
    out += ["}", "", "filter calico_export_to_bgp_peers {", "  calico_aggr();"]
    for pool in sorted(objects.get("ippools") or [], key=lambda p: p["metadata"]["name"]):
        cidr = (pool.get("spec") or {}).get("cidr", "")
        if cidr and ":" not in cidr:
            out.append(f"  if ( net ~ {cidr} ) then {{ accept; }}")
    return [*out, "  reject;", "}"]


def render(
    objects: Mapping, node: str, extra: tuple[str, ...] = (), reflector_mesh: str = REFLECTOR_MESH_IGNORE
) -> str:
    """The BIRD 2 config of ``node``; ``extra`` lines go after ``router id`` (e.g. a log target);
    ``reflector_mesh``: which confd's mesh rule for reflectors (:func:`sessions.peerings`)."""
    nodes = speakers(objects)
    if node not in nodes:
        raise RenderError(f"node {node!r}: no Node with spec.bgp.ipv4Address in the datastore")
    return _render(objects, nodes[node], peerings(objects, reflector_mesh)[node], extra)


def render_all(
    objects: Mapping, extra: tuple[str, ...] = (), reflector_mesh: str = REFLECTOR_MESH_IGNORE
) -> dict[str, str]:
    """Every speaker's config (the peerings computed once)."""
    nodes = speakers(objects)
    rendered = peerings(objects, reflector_mesh)
    return {name: _render(objects, me, rendered[name], extra) for name, me in nodes.items()}


def _render(objects: Mapping, me: Speaker, peers: list[Peering], extra: tuple[str, ...]) -> str:
    blocks = [b for b in (objects.get("blocks") or {}).get(me.name, []) if not b.endswith("/32")]
    out = ["# Generated from the Calico datastore (kubescale.calico bird_render)", f"router id {me.ip};", *extra]
    out += [
        "",
        "protocol device {",
        "  scan time 2;",
        "}",
        "",
        "protocol direct {",
        "  ipv4;",
        f"  interface {DIRECT};",
        "}",
        "",
    ]
    if blocks:
        out += ["protocol static {", "  ipv4;", *(f"  route {b} blackhole;" for b in blocks), "}"]
    else:
        out.append("# No IP blocks or static routes for this host.")
    out += ["", *_filters(objects, blocks), ""]
    out += ["template bgp bgp_template {", f"  local as {me.asn};", "  multihop;", "  graceful restart;"]
    out += [f"  {t}" for t in TIMERS]
    out += [
        "  ipv4 {",
        "    gateway recursive;",
        "    import all;",
        "    export filter calico_export_to_bgp_peers;",
        "    add paths on;",
        "  };",
        "}",
        "",
    ]
    if me.cluster_id and not any(p.scope == SCOPE_MESH for p in peers):  # not under reflector_mesh "keep"
        out.append(f"# This node is configured as a route reflector with cluster ID {me.cluster_id};")
        out.append("# ignore node-to-node mesh setting.")
    for peer in peers:
        if ":" in peer.ip:  # an IPv6 peer goes into confd's bird6.cfg, which is not rendered
            continue
        out += _peer_block(peer, me.ip, me.asn, me.cluster_id, peer.rr_client(me))
    return "\n".join(out) + "\n"
