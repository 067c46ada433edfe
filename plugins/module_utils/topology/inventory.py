# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the planner reads from the inventory: settings, Calico hosts and their BGP facts, validated.

Pure code. Every refusal is a :class:`TopologyError` naming the host variable or setting and the rule.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import (
    ValidationError,
    parse_as_number,
    validate_cluster_id,
    validate_ip,
    validate_label_name,
    validate_name,
)

NODE_GROUPS = ("master", "management", "proxy", "worker")
RR_GROUP = "route_reflectors"
LABEL_PREFIX = "kubescale.io/"
LABEL_GROUP = "kubescale.io/group"
LABEL_RACK = "kubescale.io/rack"
LABEL_ZONE = "kubescale.io/zone"
LABEL_RR = "kubescale.io/route-reflector"
LABEL_RR_CLUSTER = "kubescale.io/rr-cluster"
LABEL_RR_CLIENT_OF = "kubescale.io/rr-client-of"
PEER_PREFIX = "kubescale-"

DEFAULTS: dict = {
    "mesh_max_nodes": 200,
    "rr_capacity": 1000,
    "rr_per_client": 2,
    "rr_candidate_groups": ["management", "master", "worker"],
    "rr_require_spread": False,
    "rr_kind": "in_cluster",
    "as_number": 64512,
    "bgp_mode": "auto",
    "rr_cluster_id_base": "224.0.0.1",
    "router_peers": [],
}
MODES = ("auto", "mesh", "route_reflector")
KINDS = ("in_cluster", "external")


class TopologyError(ValueError):
    """An inventory or setting the planner refuses; the message names the field and the rule."""


# --------------------------------------------------------------------------------------------
# validators: the shared ones from calico_resources, their errors turned into TopologyError


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _as_number(value, field: str) -> int:
    """An AS number, plain or asdot ("1.10"), 1..4294967295."""
    try:
        number = parse_as_number(value if isinstance(value, (bool, int, str)) else str(value), field)
    except ValidationError as exc:  # AS 0 included: parse_as_number refuses it
        raise TopologyError(str(exc)) from None
    return number


def _ipv4(value, field: str) -> str:
    try:
        return validate_ip(_text(value), field, version=4)
    except ValidationError as exc:
        raise TopologyError(str(exc)) from None


def as_cluster_id(value, field: str) -> str:
    try:
        return validate_cluster_id(_text(value), field)
    except ValidationError as exc:
        raise TopologyError(str(exc)) from None


def _domain_name(value, field: str) -> str | None:
    """A rack or zone name: a DNS-1123 label, because it becomes a label value and part of names."""
    if value is None or value == "":
        return None
    try:
        return validate_label_name(_text(value), field)
    except ValidationError as exc:
        raise TopologyError(str(exc)) from None


def _node_name(value, field: str) -> str:
    try:
        return validate_name(_text(value), field)
    except ValidationError as exc:
        raise TopologyError(f"{exc}; set calico_node_name") from None


def _int_setting(settings: Mapping, key: str, minimum: int) -> int:
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise TopologyError(f"calico_{key}: {value!r} must be an integer >= {minimum}")
    number = int(value)
    if number < minimum:
        raise TopologyError(f"calico_{key}: {number} must be an integer >= {minimum}")
    return number


# --------------------------------------------------------------------------------------------
# helpers


def rendezvous_score(key: str, name: str) -> int:
    """Rendezvous (highest random weight) score of ``name`` for ``key``; stable across runs."""
    return int.from_bytes(hashlib.blake2b(f"{key}\x00{name}".encode(), digest_size=8).digest(), "big")


def ip_name(ip: str) -> str:
    return ip.replace(".", "-")


def cluster_ids(base: str, count: int) -> list[str]:
    start = int(ipaddress.IPv4Address(base))
    if start + count - 1 > 0xFFFFFFFF:
        raise TopologyError(f"calico_rr_cluster_id_base: {base} leaves no room for {count} cluster IDs")
    return [str(ipaddress.IPv4Address(start + i)) for i in range(count)]


def normalise_settings(settings: Mapping | None = None, **overrides) -> dict:
    """Merge settings over DEFAULTS; accepts both ``calico_x`` and ``x`` keys; validates them."""
    raw: dict = dict(DEFAULTS)
    for source in (settings or {}, overrides):
        for key, value in source.items():
            name = key.removeprefix("calico_")
            if name not in DEFAULTS:
                raise TopologyError(f"{key}: unknown setting; known: {', '.join('calico_' + k for k in DEFAULTS)}")
            if value is not None:
                raw[name] = value
    out = dict(raw)
    out["mesh_max_nodes"] = _int_setting(raw, "mesh_max_nodes", 0)
    out["rr_capacity"] = _int_setting(raw, "rr_capacity", 1)
    out["rr_per_client"] = _int_setting(raw, "rr_per_client", 2)
    out["as_number"] = _as_number(raw["as_number"], "calico_as_number")
    if raw["bgp_mode"] not in MODES:
        raise TopologyError(f"calico_bgp_mode: {raw['bgp_mode']!r} must be one of {', '.join(MODES)}")
    if raw["rr_kind"] not in KINDS:
        raise TopologyError(f"calico_rr_kind: {raw['rr_kind']!r} must be one of {', '.join(KINDS)}")
    groups = raw["rr_candidate_groups"]
    if isinstance(groups, str) or not isinstance(groups, Iterable) or not all(isinstance(g, str) for g in groups):
        raise TopologyError(f"calico_rr_candidate_groups: {groups!r} must be a list of group names")
    out["rr_candidate_groups"] = [str(g) for g in groups]
    out["rr_require_spread"] = _bool_setting(raw["rr_require_spread"], "calico_rr_require_spread")
    out["rr_cluster_id_base"] = as_cluster_id(raw["rr_cluster_id_base"], "calico_rr_cluster_id_base")
    out["router_peers"] = _router_peer_list(raw["router_peers"], "calico_router_peers")
    return out


def _bool_setting(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise TopologyError(f"{field}: {value!r} must be true or false")


def _router_peer_list(value, field: str) -> list[dict]:
    if value in (None, ""):
        return []
    if isinstance(value, (Mapping, str)) or not isinstance(value, Iterable):
        raise TopologyError(f"{field}: must be a list of {{ip, as_number}} entries")
    peers = []
    for i, entry in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(entry, Mapping):
            raise TopologyError(f"{where}: must be a mapping with ip and as_number")
        ip = entry.get("ip", entry.get("peer_ip"))
        asn = entry.get("as_number", entry.get("as"))
        if ip is None or asn is None:
            raise TopologyError(f"{where}: ip and as_number are required")
        peers.append({"ip": _ipv4(ip, f"{where}.ip"), "as_number": _as_number(asn, f"{where}.as_number")})
    return peers


# --------------------------------------------------------------------------------------------
# inventory reading


def group_members(groups: Mapping, name: str) -> list[str]:
    hosts = groups.get(name) or []
    if isinstance(hosts, str):
        raise TopologyError(f"groups[{name}]: must be a list of host names")
    return [str(h) for h in hosts]


def _bgp_ip(host: str, hv: Mapping) -> str:
    if hv.get("calico_bgp_ip") not in (None, ""):
        return _ipv4(hv["calico_bgp_ip"], f"hostvars[{host}].calico_bgp_ip")
    fact = hv.get("ansible_default_ipv4")
    if isinstance(fact, Mapping) and fact.get("address"):
        return _ipv4(fact["address"], f"hostvars[{host}].ansible_default_ipv4.address")
    address = hv.get("ansible_host")
    if address not in (None, ""):
        try:
            return str(ipaddress.IPv4Address(str(address)))
        except (ipaddress.AddressValueError, ValueError):
            pass
    raise TopologyError(
        f"hostvars[{host}].calico_bgp_ip: no BGP IPv4 address; set calico_bgp_ip, gather the "
        "ansible_default_ipv4 fact, or give an IPv4 ansible_host"
    )


def _prefix_len(hv: Mapping) -> int:
    fact = hv.get("ansible_default_ipv4")
    if hv.get("calico_bgp_ip") in (None, "") and isinstance(fact, Mapping):
        prefix = fact.get("prefix")
        if prefix is not None and str(prefix).isdigit() and 0 < int(prefix) <= 32:
            return int(prefix)
    return 32


def read_hosts(groups: Mapping, hostvars: Mapping, settings: dict) -> tuple[dict, dict]:
    """Return (nodes, external) as {host: info}; refuses ambiguous group membership."""
    kind = settings["rr_kind"]
    primary: dict[str, str] = {}
    for group in NODE_GROUPS:
        for host in group_members(groups, group):
            other = primary.get(host)
            if other is None or other == group:
                primary[host] = group
            elif group == "worker":
                continue  # a master/management/proxy host that also runs workloads
            else:
                raise TopologyError(
                    f"groups: host {host} is in node groups {other} and {group}; a host may be in one "
                    "of master, management, proxy (and may also be in worker)"
                )
    rr_hosts = group_members(groups, RR_GROUP)
    external_names: list[str] = []
    if kind == "in_cluster":
        for host in rr_hosts:
            primary.setdefault(host, RR_GROUP)
    else:
        clash = sorted(h for h in rr_hosts if h in primary)
        if clash:
            raise TopologyError(
                f"groups[{RR_GROUP}]: {', '.join(clash[:5])} also in a node group; with "
                "calico_rr_kind=external a reflector is a dedicated BIRD host, not a Calico node"
            )
        external_names = rr_hosts

    nodes = {host: _host_info(host, group, hostvars, settings) for host, group in primary.items()}
    external = {host: _host_info(host, RR_GROUP, hostvars, settings) for host in external_names}
    _refuse_duplicates(list(nodes.values()) + list(external.values()))
    return nodes, external


def _host_info(host: str, group: str, hostvars: Mapping, settings: dict) -> dict:
    hv = hostvars.get(host)
    if hv is None:
        raise TopologyError(f"hostvars[{host}]: host is in group {group} but has no hostvars")
    name = _node_name(hv.get("calico_node_name") or host, f"hostvars[{host}].calico_node_name")
    asn_raw = hv.get("calico_as_number")
    return {
        "host": host,
        "name": name,
        "group": group,
        "ip": _bgp_ip(host, hv),
        "prefix": _prefix_len(hv),
        "rack": _domain_name(hv.get("calico_rack"), f"hostvars[{host}].calico_rack"),
        "zone": _domain_name(hv.get("calico_zone"), f"hostvars[{host}].calico_zone"),
        "as_number": settings["as_number"]
        if asn_raw in (None, "")
        else _as_number(asn_raw, f"hostvars[{host}].calico_as_number"),
        "router_peers": _router_peer_list(hv.get("calico_router_peers"), f"hostvars[{host}].calico_router_peers"),
    }


def _refuse_duplicates(infos: list[dict]) -> None:
    seen_ip: dict[str, str] = {}
    seen_name: dict[str, str] = {}
    for info in sorted(infos, key=lambda i: i["host"]):
        if info["ip"] in seen_ip:
            raise TopologyError(
                f"hostvars[{info['host']}].calico_bgp_ip: {info['ip']} is also the BGP IP of "
                f"{seen_ip[info['ip']]}; every BGP speaker needs its own address"
            )
        if info["name"] in seen_name:
            raise TopologyError(
                f"hostvars[{info['host']}].calico_node_name: {info['name']} is also the node name of "
                f"{seen_name[info['name']]}"
            )
        seen_ip[info["ip"]] = info["host"]
        seen_name[info["name"]] = info["host"]


# --------------------------------------------------------------------------------------------
# reflector choice
