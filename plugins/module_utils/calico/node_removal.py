# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove Calico nodes from the datastore the way Calico's own node deletion does (reference §6.4).

For every node, in this order: (1) release the IPs of its WorkloadEndpoints (``spec.node``) and its
tunnel addresses in the IPAM blocks and handles, (2) delete those WorkloadEndpoints, (3) release its
block affinities and delete its host IPAM data, (4) delete the BGPPeers with ``spec.node`` == node,
(5) delete FelixConfiguration and BGPConfiguration ``node.<name>``, (6) delete the Node.

Everything is read first and planned as guarded etcd operations (compare-and-swap on the
mod_revision read); the operations are written in that order in transactions of at most 128. A
transaction whose guard lost is not followed by the next ones: the datastore is read again, the rest
planned again (each step treats "already gone" as done) and written, so a rerun after a crash converges.

Refused before any write, with the reason: removing the last reflectors of a reflector cluster
(``spec.bgp.routeReflectorClusterID``) while nodes that stay still peer with it, and with
``require_spread`` removing the last reflector a cluster has in a failure domain (labels
``kubescale.io/zone`` / ``kubescale.io/rack``).
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.kubescale.calico.plugins.module_utils.calico import ipam
from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError, validate_name
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    KINDS,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.selector import parse_selector, selector_matches
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, EtcdClient, Op
from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    LABEL_RACK,
    LABEL_RR_CLIENT_OF,
    LABEL_ZONE,
)

MAX_ATTEMPTS = 5
# The node's own addresses that calico-node allocated from IPAM (Node spec paths).
TUNNEL_FIELDS = (("bgp", "ipv4IPIPTunnelAddr"), (None, "ipv4VXLANTunnelAddr"), (None, "ipv6VXLANTunnelAddr"),
                 ("wireguard", "interfaceIPv4Address"), ("wireguard", "interfaceIPv6Address"))
SHOWN = 5  # names quoted in a refusal
RANGE_READ_MIN, RANGE_READ_SLACK = 256, 4  # as the store reads: a paged range beats exact gets for many keys
ORDER = ("WorkloadEndpoint", "IPAMBlock", "BlockAffinity", "IPAMHost", "BGPPeer", "FelixConfiguration",
         "BGPConfiguration", "Node")  # the order of the kinds in sentences (Calico's deletion order)


class NodeRemovalError(ValueError):
    """A removal that is refused; nothing has been written."""


@dataclass(frozen=True)
class Request:
    """What to remove: ``nodes`` by name, or every managed Node not in ``keep`` (``remove_unlisted``)."""

    nodes: tuple[str, ...] = ()
    keep: tuple[str, ...] | None = None
    require_spread: bool = False


def make_request(nodes: list | None, keep: list | None, remove_unlisted: bool, require_spread: bool) -> Request:
    """Check the module's input before etcd is contacted."""
    if nodes and keep is not None:
        raise NodeRemovalError("nodes and keep are mutually exclusive: name the nodes, or list those to keep")
    if keep is not None:
        if not remove_unlisted:
            raise NodeRemovalError("keep: removing every managed Node not listed needs remove_unlisted: true")
        if not keep:
            raise NodeRemovalError("keep: is empty; refusing to remove every managed Node (is the inventory right?)")
        return Request(keep=tuple(_names(keep, "keep")), require_spread=require_spread)
    if remove_unlisted:
        raise NodeRemovalError("remove_unlisted: give keep (the node names of the inventory) with it")
    if not nodes:
        raise NodeRemovalError("nodes: name at least one node (or give keep with remove_unlisted: true)")
    return Request(nodes=tuple(dict.fromkeys(_names(nodes, "nodes"))), require_spread=require_spread)


def _names(values: list, field: str) -> list[str]:
    out = []
    for index, value in enumerate(values):
        try:
            out.append(validate_name(value if isinstance(value, str) else str(value), f"{field}[{index}]"))
        except ValidationError as exc:
            raise NodeRemovalError(str(exc)) from None
    return out


# --------------------------------------------------------------------------------------------
# what is stored


@dataclass
class Stored:
    key: str
    value: dict
    revision: int


def _load(kv) -> Stored:
    return Stored(kv.key, json.loads(kv.value) if kv.value else {}, kv.mod_revision)


def _spec(obj: dict) -> dict:
    return obj.get("spec") or {}


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


class _State:
    """One read of everything a removal looks at."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self.nodes = {s.value["metadata"]["name"]: s for s in map(_load, client.range(KINDS["Node"].prefix()))}
        self.peers = [_load(kv) for kv in client.range(KINDS["BGPPeer"].prefix())]

    def targets(self, request: Request) -> list[str]:
        """The nodes to work on: those named, or the managed Nodes not in ``keep``."""
        if request.keep is not None:
            keep = set(request.keep)
            return sorted(n for n, s in self.nodes.items()
                          if _labels(s.value).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and n not in keep)
        return list(request.nodes)

    def read_node_data(self, doomed: list[str]) -> None:
        names = set(doomed)
        self.weps = [s for s in map(_load, self.client.range(KINDS["WorkloadEndpoint"].prefix()))
                     if _spec(s.value).get("node") in names]
        self.blocks = {s.key: s for s in map(_load, self.client.range(ipam.BLOCK_PREFIX))}
        # the host's own key and its block affinities (the trailing slash of host_prefix keeps w1 from w10)
        self.host_data = [s for s in map(_load, self.client.range(ipam.HOST_PREFIX))
                          if ipam.host_of_key(s.key) in names]
        wanted = {f"node.{n}" for n in doomed}
        self.configs = [s for kind in ("FelixConfiguration", "BGPConfiguration")
                        for s in map(_load, self.client.range(KINDS[kind].prefix()))
                        if (s.value.get("metadata") or {}).get("name") in wanted]

    def read_handles(self, handle_ids: set[str]) -> dict[str, Stored]:
        keys = {ipam.handle_key(h) for h in handle_ids}
        if len(keys) >= RANGE_READ_MIN and self.client.count(ipam.HANDLE_PREFIX) <= RANGE_READ_SLACK * len(keys):
            found = (kv for kv in self.client.range(ipam.HANDLE_PREFIX) if kv.key in keys)
        else:  # a few handles among many: exact reads
            found = self.client.get_many(sorted(keys)).values()
        return {kv.key: _load(kv) for kv in found}


# --------------------------------------------------------------------------------------------
# refusals


def _cluster_id(obj: dict) -> str | None:
    return (_spec(obj).get("bgp") or {}).get("routeReflectorClusterID")


def _bgp_ip(obj: dict) -> str | None:
    address = (_spec(obj).get("bgp") or {}).get("ipv4Address")
    return address.split("/", 1)[0] if isinstance(address, str) else None


def _selector(text):
    try:
        return parse_selector(text, "selector") if text else None
    except ValidationError:
        return None  # a selector this collection cannot read matches nothing here


def _peers_with(peer: dict, node: Stored, targets: list[Stored]) -> bool:
    """Does BGPPeer ``peer`` give ``node`` a session to one of ``targets`` (in either direction)?"""
    spec = _spec(peer)
    node_sel, peer_sel = _selector(spec.get("nodeSelector")), _selector(spec.get("peerSelector"))
    name = node.value["metadata"]["name"]

    def selects_node(candidate: Stored) -> bool:
        cname = candidate.value["metadata"]["name"]
        if spec.get("node"):
            return spec["node"] == cname
        if spec.get("nodeSelector"):
            return node_sel is not None and selector_matches(node_sel, _labels(candidate.value))
        return True  # a global peer applies to every node

    def selects_peer(candidate: Stored) -> bool:
        if spec.get("peerSelector"):
            return peer_sel is not None and selector_matches(peer_sel, _labels(candidate.value))
        return bool(spec.get("peerIP")) and spec["peerIP"] == _bgp_ip(candidate.value)

    if selects_node(node) and any(selects_peer(t) for t in targets):
        return True
    # confd adds the reverse session of a selector peering
    return bool(spec.get("peerSelector")) and selects_peer(node) and any(
        selects_node(t) and t.value["metadata"]["name"] != name for t in targets)


def _domain(obj: dict) -> str | None:
    labels = _labels(obj)
    parts = [f"{what}={labels[key]}" for what, key in (("zone", LABEL_ZONE), ("rack", LABEL_RACK)) if labels.get(key)]
    return "/".join(parts) or None


def _shown(names) -> str:
    names = sorted(names)
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def refuse_unsafe(state: _State, doomed: list[str], require_spread: bool) -> None:
    """Raise NodeRemovalError when the removal would strand clients of a reflector cluster or break spread."""
    gone = set(doomed)
    clusters: dict[str, list[Stored]] = {}
    for node in state.nodes.values():
        cid = _cluster_id(node.value)
        if cid:
            clusters.setdefault(cid, []).append(node)
    peers = [p.value for p in state.peers]
    for cid, reflectors in sorted(clusters.items()):
        leaving = [r for r in reflectors if r.value["metadata"]["name"] in gone]
        if not leaving:
            continue
        staying = [r for r in reflectors if r.value["metadata"]["name"] not in gone]
        names = _shown(r.value["metadata"]["name"] for r in leaving)
        if not staying:
            stranded = [n for name, n in state.nodes.items()
                        if name not in gone and not _cluster_id(n.value)
                        and (_labels(n.value).get(LABEL_RR_CLIENT_OF) == cid
                             or any(_peers_with(p, n, leaving) for p in peers))]
            if stranded:
                raise NodeRemovalError(
                    f"nodes: removing {names} would leave route reflector cluster {cid} without a reflector while "
                    f"{len(stranded)} node(s) that stay still peer with it ({_shown(_name(n) for n in stranded)}); "
                    "apply a plan that gives them other reflectors first (bgp_topology), then remove")
            continue
        if require_spread:
            lost = {_domain(r.value) for r in leaving} - {_domain(r.value) for r in staying} - {None}
            if lost:
                left = _shown(f"{_name(r)} ({_domain(r.value) or 'no domain'})" for r in staying)
                raise NodeRemovalError(
                    f"require_spread: removing {names} would remove every reflector of cluster {cid} in failure "
                    f"domain {', '.join(sorted(lost))} (its reflectors left: "
                    f"{left})")


def _name(stored: Stored) -> str:
    return stored.value["metadata"]["name"]


# --------------------------------------------------------------------------------------------
# the plan


@dataclass
class Step:
    """One guarded write, with what it is for the summary."""

    kind: str  # WorkloadEndpoint, IPAMBlock, IPAMHandle, BlockAffinity, IPAMHost, BGPPeer, ... Node
    op: Op
    before: dict | None
    after: dict | None = None
    node: str | None = None  # the node this step is for (None: shared IPAM data)
    released: dict[str, list[str]] = field(default_factory=dict)  # node -> IPs freed by this step


def _delete(kind: str, stored: Stored, node: str | None) -> Step:
    return Step(kind, Op.delete(stored.key, stored.revision), stored.value, None, node)


def _node_ips(node: Stored | None, weps: list[Stored]) -> list:
    """The addresses the node holds in IPAM: its endpoints' ipNetworks and its tunnel addresses."""
    texts = [net for w in weps for net in _spec(w.value).get("ipNetworks") or []]
    if node is not None:
        spec = _spec(node.value)
        for section, name in TUNNEL_FIELDS:
            value = (spec.get(section) or {}).get(name) if section else spec.get(name)
            if value:
                texts.append(value)
    return [ip for ip in map(ipam.parse_ip, texts) if ip is not None]


class _BlockIndex:
    """Find the stored block that holds an address, by the block sizes in use."""

    def __init__(self, blocks: dict[str, Stored]) -> None:
        self.by_net: dict[tuple, str] = {}
        self.sizes: set[tuple[int, int]] = set()
        for key, stored in blocks.items():
            try:
                net = ipam.block_network(stored.value)
            except (KeyError, ValueError):
                continue
            self.by_net[(net.version, net.prefixlen, int(net.network_address))] = key
            self.sizes.add((net.version, net.prefixlen))

    def find(self, ip) -> str | None:
        bits = 32 if ip.version == 4 else 128
        for version, plen in self.sizes:
            if version == ip.version:
                base = int(ip) >> (bits - plen) << (bits - plen)
                key = self.by_net.get((version, plen, base))
                if key:
                    return key
        return None


def plan_removal(state: _State, doomed: list[str]) -> list[Step]:
    """Every write that removes ``doomed``, in Calico's order."""
    state.read_node_data(doomed)
    weps_of: dict[str, list[Stored]] = {}
    for wep in state.weps:
        weps_of.setdefault(_spec(wep.value)["node"], []).append(wep)
    index = _BlockIndex(state.blocks)
    wanted: dict[str, list[tuple]] = {}  # block key -> [(ip, node)]
    for name in doomed:
        for ip in _node_ips(state.nodes.get(name), weps_of.get(name, [])):
            key = index.find(ip)
            if key:
                wanted.setdefault(key, []).append((ip, name))
    gone = set(doomed)
    released_steps, handle_counts = _release_steps(state, wanted, gone)
    steps = released_steps + _handle_steps(state, handle_counts)
    steps += [_delete("WorkloadEndpoint", w, _spec(w.value)["node"]) for w in state.weps]
    steps += _affinity_steps(state, gone, set(wanted))
    steps += [_delete("BGPPeer", p, _spec(p.value)["node"]) for p in state.peers if _spec(p.value).get("node") in gone]
    steps += [_delete(s.value["kind"], s, s.value["metadata"]["name"].removeprefix("node.")) for s in state.configs]
    steps += [_delete("Node", state.nodes[n], n) for n in doomed if n in state.nodes]
    return steps


def _block_step(stored: Stored, after: dict, released: dict[str, list[str]]) -> Step:
    if ipam.is_empty(after) and not after.get("affinity"):
        step = Step("IPAMBlock", Op.delete(stored.key, stored.revision), stored.value, None)
    else:
        step = Step("IPAMBlock", Op.put(stored.key, _json(after), stored.revision), stored.value, after)
    step.released = released
    return step


def _json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _release_steps(state: _State, wanted: dict[str, list[tuple]], gone: set[str]) -> tuple[list[Step], Counter]:
    """Blocks holding the nodes' addresses, released (and their affinity too when it is a removed node's)."""
    steps: list[Step] = []
    handles: Counter = Counter()
    for key in sorted(wanted):
        stored = state.blocks[key]
        after = copy.deepcopy(stored.value)
        owner = {str(ip): node for ip, node in wanted[key]}
        freed = ipam.release_ips(after, [ip for ip, _unused in wanted[key]])
        if ipam.affinity_host(after) in gone:
            ipam.release_affinity(after)
        if after == stored.value:
            continue
        released: dict[str, list[str]] = {}
        for ip, handle in freed:
            released.setdefault(owner[ip], []).append(ip)
            if handle:
                handles[(handle, after["cidr"])] += 1
        steps.append(_block_step(stored, after, released))
    return steps, handles


def _handle_steps(state: _State, counts: Counter) -> list[Step]:
    stored_handles = state.read_handles({handle for handle, _unused in counts})
    afters: dict[str, dict] = {}
    for (handle, cidr), count in sorted(counts.items()):
        key = ipam.handle_key(handle)
        if key not in stored_handles:
            continue  # Calico only warns about a handle it cannot find
        after = afters.setdefault(key, copy.deepcopy(stored_handles[key].value))
        ipam.decrement_handle(after, cidr, count)
    steps = []
    for key, after in sorted(afters.items()):
        stored = stored_handles[key]
        if not after.get("block"):
            steps.append(Step("IPAMHandle", Op.delete(key, stored.revision), stored.value, None))
        else:
            steps.append(Step("IPAMHandle", Op.put(key, _json(after), stored.revision), stored.value, after))
    return steps


def _affinity_steps(state: _State, gone: set[str], done: set[str]) -> list[Step]:
    """Block affinities of the removed nodes released, then their host IPAM data deleted."""
    steps = []
    for key in sorted(state.blocks):
        stored = state.blocks[key]
        owner = ipam.affinity_host(stored.value)
        if owner not in gone or key in done:
            continue
        after = copy.deepcopy(stored.value)
        ipam.release_affinity(after)
        step = _block_step(stored, after, {})
        step.node = owner
        steps.append(step)
    for stored in state.host_data:
        kind = "BlockAffinity" if "/block/" in stored.key else "IPAMHost"
        steps.append(_delete(kind, stored, ipam.host_of_key(stored.key)))
    return steps


# --------------------------------------------------------------------------------------------
# the run


@dataclass
class _Outcome:
    want_diff: bool
    nodes: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    retries: int = 0

    def result(self) -> dict:
        deleted = [s.op.key for s in self.steps if s.op.kind == "delete"]
        updated = [s.op.key for s in self.steps if s.op.kind == "put"]
        removed = Counter(s.kind for s in self.steps if s.op.kind == "delete")
        changed_counts = Counter(s.kind for s in self.steps if s.op.kind == "put")
        released = sorted({ip for s in self.steps for ips in s.released.values() for ip in ips},
                          key=ipaddress.ip_address)
        out = {
            "changed": bool(self.steps),
            "nodes": self.nodes,
            "not_found": self.not_found,
            "summary": {"deleted": dict(sorted(removed.items())), "updated": dict(sorted(changed_counts.items())),
                        "released_ips": len(released)},
            "deleted": deleted,
            "updated": updated,
            "released_ips": released,
            "actions": self._actions(),
            "retries": self.retries,
        }
        if self.want_diff:
            out["diff"] = {"before": {s.op.key: s.before for s in self.steps},
                           "after": {s.op.key: s.after for s in self.steps}}
        return out

    def _actions(self) -> list[str]:
        released: Counter = Counter()
        deleted: dict[str, Counter] = {name: Counter() for name in self.nodes}
        for step in self.steps:
            for name, ips in step.released.items():
                released[name] += len(ips)
            if step.node is not None and step.op.kind == "delete" and step.kind != "Node":
                deleted.setdefault(step.node, Counter())[step.kind] += 1
        node_deleted = {s.node for s in self.steps if s.kind == "Node"}
        actions = []
        for name in dict.fromkeys([*self.nodes, *deleted, *released]):
            parts = [f"released {_count(released[name], 'IP')}"] if released[name] else []
            kinds = sorted(deleted.get(name, {}), key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
            if kinds:
                parts.append("deleted " + ", ".join(_count(deleted[name][k], k) for k in kinds))
            if not parts and name not in node_deleted:
                continue
            head = f"removed Node {name}" if name in node_deleted else f"cleaned up after Node {name} (already gone)"
            actions.append(f"{head}: {'; '.join(parts)}" if parts else head)
        return actions


def _count(n: int, noun: str) -> str:
    plural = noun if n == 1 else (noun[:-1] + "ies" if noun.endswith("y") else noun + "s")
    return f"{n} {plural}"


def remove_nodes(client: EtcdClient, request: Request, check_mode: bool = False, want_diff: bool = False) -> dict:
    """Remove the requested nodes; returns the module result (changed, summary, keys, actions)."""
    outcome = _Outcome(want_diff)
    for attempt in range(MAX_ATTEMPTS):
        state = _State(client)
        doomed = state.targets(request)
        refuse_unsafe(state, doomed, request.require_spread)
        steps = plan_removal(state, doomed)
        if attempt == 0:
            touched = {s.node for s in steps} | {n for s in steps for n in s.released}
            outcome.nodes = [n for n in doomed if n in touched]
            outcome.not_found = [n for n in doomed if n not in touched]
        if check_mode:
            outcome.steps = steps
            return outcome.result()
        if _write(client, steps, outcome):
            return outcome.result()
        outcome.retries += 1
    raise NodeRemovalError(f"gave up after {MAX_ATTEMPTS} attempts: the datastore kept changing under the removal "
                           f"(rerun to finish; every step is safe to repeat)")


def _write(client: EtcdClient, steps: list[Step], outcome: _Outcome) -> bool:
    """Write the steps batch by batch in order; False at the first batch whose guard lost."""
    for start in range(0, len(steps), MAX_TXN_OPS):
        batch = steps[start:start + MAX_TXN_OPS]
        if client.apply([s.op for s in batch]):
            return False
        outcome.steps.extend(batch)
    return True
