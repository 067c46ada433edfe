# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico IPAM data in etcd (shared/reference/calico-datastore.md §1.4): keys, and the two edits a
node removal makes to it, written from the documented behaviour of libcalico-go's IPAM client.

Pure code on the stored JSON (plain dicts):

* blocks ``/calico/ipam/v2/assignment/ipv4/block/10.0.1.0-26``: ``allocations[ordinal]`` is an index
  into ``attributes`` (whose ``handle_id`` owns the IP) or null; ``unallocated`` lists free ordinals;
  ``affinity`` is ``host:<node>`` or null;
* handles ``/calico/ipam/v2/handle/<id>``: ``{"block": {"<cidr>": <count>}}``;
* host data ``/calico/ipam/v2/host/<node>/ipv4/block/<cidr-with-dash>`` (block affinities).

Releasing an IP frees its ordinal, drops attributes no IP refers to any more and decrements the
handle (deleted when it counts nothing). A block left empty without affinity is deleted. Releasing a
host's affinity deletes the block when it is empty, else clears its affinity, and deletes the
affinity key.
"""

from __future__ import annotations

import ipaddress

IPAM_ROOT = "/calico/ipam/v2/"
BLOCK_PREFIX = f"{IPAM_ROOT}assignment/"
HANDLE_PREFIX = f"{IPAM_ROOT}handle/"
HOST_PREFIX = f"{IPAM_ROOT}host/"


def block_key(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return f"{BLOCK_PREFIX}ipv{net.version}/block/{str(net).replace('/', '-')}"


def handle_key(handle_id: str) -> str:
    return f"{HANDLE_PREFIX}{handle_id}"


def host_prefix(node: str) -> str:
    """Every key of the host's IPAM data (its block affinities); the slash keeps ``w1`` from ``w10``."""
    return f"{HOST_PREFIX}{node}/"


def affinity_key(node: str, cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return f"{host_prefix(node)}ipv{net.version}/block/{str(net).replace('/', '-')}"


def host_of_key(key: str) -> str | None:
    """The node a ``/calico/ipam/v2/host/<node>[/...]`` key belongs to (the host's own key included)."""
    if not key.startswith(HOST_PREFIX):
        return None
    return key[len(HOST_PREFIX):].split("/", 1)[0] or None


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from ``10.0.0.1`` or ``10.0.0.1/32``; None for anything else."""
    try:
        return ipaddress.ip_interface(str(text).strip()).ip
    except ValueError:
        return None


def block_network(block: dict) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(block["cidr"], strict=False)


def allocated_ips(block: dict) -> list[str]:
    """Addresses the block hands out now."""
    net = block_network(block)
    base = int(net.network_address)
    return [str(ipaddress.ip_address(base + ordinal))
            for ordinal, attr in enumerate(block.get("allocations") or []) if attr is not None]


def is_empty(block: dict) -> bool:
    return all(attr is None for attr in block.get("allocations") or [])


def affinity_host(block: dict) -> str | None:
    """The node a block is affine to (``affinity: host:<node>``), or None."""
    affinity = block.get("affinity")
    return affinity[5:] if isinstance(affinity, str) and affinity.startswith("host:") else None


def release_ips(block: dict, ips) -> list[tuple[str, str | None]]:
    """Free ``ips`` (those inside the block and allocated) in place; return (ip, handle) of each freed one.

    Attributes no allocation refers to any more are dropped and the allocations renumbered, so the
    block stays as compact as libcalico-go keeps it.
    """
    net = block_network(block)
    base = int(net.network_address)
    allocations = block.get("allocations") or []
    attributes = block.get("attributes") or []
    released: list[tuple[str, str | None]] = []
    for ip in ips:
        if ip.version != net.version or ip not in net:
            continue
        ordinal = int(ip) - base
        if ordinal >= len(allocations) or allocations[ordinal] is None:
            continue
        attr = allocations[ordinal]
        handle = attributes[attr].get("handle_id") if 0 <= attr < len(attributes) else None
        released.append((str(ip), handle))
        allocations[ordinal] = None
        block.setdefault("unallocated", []).append(ordinal)
        sequence = block.get("sequenceNumberForAllocation")
        if isinstance(sequence, dict):
            sequence.pop(str(ordinal), None)
    if released:
        _compact_attributes(block)
    return released


def _compact_attributes(block: dict) -> None:
    allocations = block.get("allocations") or []
    attributes = block.get("attributes") or []
    used = sorted({a for a in allocations if a is not None and 0 <= a < len(attributes)})
    renumber = {old: new for new, old in enumerate(used)}
    block["attributes"] = [attributes[old] for old in used]
    block["allocations"] = [renumber.get(a) if a is not None else None for a in allocations]


def release_affinity(block: dict) -> bool:
    """Give up the block's host affinity in place; True when the block should now be deleted (empty)."""
    block["affinity"] = None
    block.pop("hostAffinity", None)  # the deprecated twin of affinity
    return is_empty(block)


def decrement_handle(handle: dict, cidr: str, count: int) -> bool:
    """Take ``count`` IPs of block ``cidr`` off the handle in place; True when it counts nothing and goes."""
    blocks = handle.setdefault("block", {})
    key = str(ipaddress.ip_network(cidr, strict=False))
    left = int(blocks.get(key, 0)) - count
    if left > 0:
        blocks[key] = left
    else:
        blocks.pop(key, None)
    return not blocks
