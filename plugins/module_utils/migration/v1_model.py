# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico 2.x (v1 data model, etcd v2) parser and v1 → v3 converters.

Pure functions, no I/O. The semantics are calico-upgrade's (libcalico-go ``lib/upgrade``):
name conversions (normalizeName, convertName, convertNameNoDots, ConvertNodeName,
convertIpToName, CIDRToName), per-kind field mapping, filtered kinds ("handled by controllers"),
refusals (conversion errors, validation errors, name clashes) and the order of writing.
See docs/datastore-migration.md and the reference calico-datastore.md §3–§4.

Usage::

    data = V1Data()
    for key, value in leaves:            # any order
        data.add(key, value)
    result = convert(data, validate=calico_resources.validate)
    result.resources   # [(kind, v3 dict)] in calico-upgrade's write order (no uid/timestamps)
    result.ipam        # [(key, value bytes)] non-resource keys, written as they are
    result.report      # converted names, clashes, errors, filtered, counts per kind
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

API_VERSION = "projectcalico.org/v3"
MIN_VERSION = (2, 6, 5)

V1_ROOT = "/calico/v1/"
BGP_ROOT = "/calico/bgp/v1/"
IPAM_ROOT = "/calico/ipam/v2/"
READY_KEY = "/calico/v1/Ready"
VERSION_KEY = "/calico/v1/config/CalicoVersion"

# The order calico-upgrade converts and writes in (libcalico-go migrate.go queryAndConvertResources).
KIND_ORDER = (
    "FelixConfiguration", "ClusterInformation", "BGPConfiguration", "Node", "BGPPeer",
    "HostEndpoint", "IPPool", "GlobalNetworkPolicy", "Profile", "WorkloadEndpoint",
)
IPAM_KINDS = ("IPAMBlock", "BlockAffinity", "IPAMHandle")


class V1Error(Exception):
    """Raised for v1 data that cannot be migrated at all (version, Ready flag, nothing found)."""


# --------------------------------------------------------------------------------------------
# Name conversions
# --------------------------------------------------------------------------------------------

_NON_NAME = re.compile(r"[^-.a-z0-9]+")
_DOT_DASH_SEQ = re.compile(r"[.-]*[.][.-]*")


@functools.lru_cache(maxsize=65536)
def normalize_name(name: str) -> str:
    """Lower-case, ``/``→``.``, other invalid chars→``-``, ``[.-]`` runs with a dot→``.``, trim."""
    name = name.lower().replace("/", ".")
    name = _NON_NAME.sub("-", name)
    name = _DOT_DASH_SEQ.sub(".", name)
    return name.strip(".-")


def _qualified(orig: str, final: str) -> str:
    if orig == final:
        return orig
    return f"{final}-{hashlib.sha1(orig.encode()).hexdigest()[:8]}"


def convert_node_name(v1_name: str) -> str:
    """ConvertNodeName: normalize_name without a qualifier (clashes fail the migration)."""
    return normalize_name(v1_name)


@functools.lru_cache(maxsize=65536)
def convert_name(v1_name: str) -> str:
    """convertName: normalize_name plus ``-<sha1[:8]>`` of the original when it changed."""
    return _qualified(v1_name, normalize_name(v1_name))


@functools.lru_cache(maxsize=65536)
def convert_name_no_dots(v1_name: str) -> str:
    """convertNameNoDots: as convert_name, with dots turned into dashes."""
    return _qualified(v1_name, normalize_name(v1_name).replace(".", "-"))


def convert_ip_to_name(ip: str) -> str:
    """``10.0.0.1``→``10-0-0-1``; IPv6 as 8 zero-padded groups joined by ``-``."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return str(addr).replace(".", "-")
    return addr.exploded.replace(":", "-")


def cidr_to_name(cidr: str) -> str:
    """CIDRToName: ``10.0.0.0/8``→``10-0-0-0-8`` (``.``/``:``/``/`` → ``-``)."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net).replace(".", "-").replace(":", "-").replace("/", "-")


@functools.lru_cache(maxsize=65536)
def convert_profile_name(name: str) -> str:
    """``k8s_ns.<ns>`` → ``kns.<ns>``, then convert_name."""
    if name.startswith("k8s_ns."):
        name = "kns." + name[len("k8s_ns."):]
    return convert_name(name)


def unescape(seg: str) -> str:
    """Undo the v1 key escaping (``%2f``→``/``, ``%25``→``%``)."""
    return seg.replace("%2f", "/").replace("%2F", "/").replace("%25", "%")


# --------------------------------------------------------------------------------------------
# v1 data model (grouped raw values, parsed lazily)
# --------------------------------------------------------------------------------------------

@dataclass
class V1Data:
    """The v1 keyspace grouped by kind; values stay raw strings until converted."""

    ready: str | None = None
    global_config: dict[str, str] = field(default_factory=dict)
    host_config: dict[str, dict[str, str]] = field(default_factory=dict)
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)      # host -> component -> raw
    bgp_global: dict[str, str] = field(default_factory=dict)
    global_peers: list[tuple[str, str]] = field(default_factory=list)    # (key, raw)
    node_peers: list[tuple[str, str, str]] = field(default_factory=list)  # (key, host, raw)
    host_endpoints: list[tuple[str, str, str, str]] = field(default_factory=list)  # key, host, id, raw
    pools: list[tuple[str, str]] = field(default_factory=list)
    policies: list[tuple[str, str, str]] = field(default_factory=list)  # key, name, raw
    profiles: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # name -> part -> (key, raw)
    weps: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)  # key, host, orch, wid, eid, raw
    blocks: list[tuple[str, str]] = field(default_factory=list)
    affinities: list[tuple[str, str, str]] = field(default_factory=list)  # key, host, raw
    handles: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0
    total: int = 0

    def add(self, key: str, value: str) -> None:
        """File one v1 leaf under its kind; unknown keys are counted and ignored."""
        self.total += 1
        p = key.split("/")  # '', 'calico', 'v1', ...
        if key == READY_KEY:
            self.ready = value
        elif key.startswith("/calico/v1/config/") and len(p) == 5:
            self.global_config[p[4]] = value
        elif key.startswith("/calico/v1/host/") and len(p) >= 6:
            host = p[4]
            if p[5] == "config" and len(p) == 7:
                self.host_config.setdefault(host, {})[p[6]] = value
            elif p[5] in ("metadata", "bird_ip", "orchestrator_refs") and len(p) == 6:
                self.hosts.setdefault(host, {})[p[5]] = value
            elif p[5] == "endpoint" and len(p) == 7:
                self.host_endpoints.append((key, host, unescape(p[6]), value))
            elif p[5] == "workload" and len(p) == 10 and p[8] == "endpoint":
                self.weps.append((key, host, unescape(p[6]), unescape(p[7]), unescape(p[9]), value))
            else:
                self.ignored += 1
        elif key.startswith("/calico/v1/policy/tier/default/policy/") and len(p) == 8:
            self.policies.append((key, unescape(p[7]), value))
        elif key.startswith("/calico/v1/policy/profile/") and len(p) == 7 and p[6] in ("rules", "tags", "labels"):
            self.profiles.setdefault(unescape(p[5]), {})[p[6]] = (key, value)
        elif key.startswith("/calico/v1/ipam/") and len(p) == 7 and p[5] == "pool":
            self.pools.append((key, value))
        elif key.startswith("/calico/bgp/v1/global/") and len(p) == 6:
            self.bgp_global[p[5]] = value
        elif key.startswith("/calico/bgp/v1/global/peer_v") and len(p) == 7:
            self.global_peers.append((key, value))
        elif key.startswith("/calico/bgp/v1/host/") and len(p) == 7:
            self.hosts.setdefault(p[5], {})["bgp_" + p[6]] = value
        elif key.startswith("/calico/bgp/v1/host/") and len(p) == 8 and p[6] in ("peer_v4", "peer_v6"):
            self.node_peers.append((key, p[5], value))
        elif key.startswith("/calico/ipam/v2/assignment/") and len(p) == 8 and p[6] == "block":
            self.blocks.append((key, value))
        elif key.startswith("/calico/ipam/v2/host/") and len(p) == 9 and p[7] == "block":
            self.affinities.append((key, p[5], value))
        elif key.startswith("/calico/ipam/v2/handle/") and len(p) == 6:
            self.handles.append((key, value))
        else:
            self.ignored += 1


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

@dataclass
class Report:
    """What the conversion did and refused; ``ok`` is False when anything was refused."""

    converted_names: list[dict] = field(default_factory=list)
    name_clashes: list[dict] = field(default_factory=list)
    conversion_errors: list[dict] = field(default_factory=list)
    validation_errors: list[dict] = field(default_factory=list)
    filtered: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.name_clashes or self.conversion_errors or self.validation_errors)

    def error_count(self) -> int:
        return len(self.name_clashes) + len(self.conversion_errors) + len(self.validation_errors)

    def as_dict(self, limit: int | None = None) -> dict:
        """JSON-ready dict; lists cut to ``limit`` entries with a ``<list>_total`` count."""
        out: dict = {"ok": self.ok, "counts": dict(self.counts)}
        for name in ("converted_names", "name_clashes", "conversion_errors", "validation_errors", "filtered"):
            items = getattr(self, name)
            out[name] = items if limit is None else items[:limit]
            out[name + "_total"] = len(items)
        return out

    def summary(self) -> str:
        parts = [f"{k}={v}" for k, v in self.counts.items()]
        return (f"converted {sum(self.counts.values())} objects ({', '.join(parts)}); "
                f"{len(self.conversion_errors)} conversion errors, {len(self.validation_errors)} validation "
                f"errors, {len(self.name_clashes)} name clashes, {len(self.filtered)} filtered")


@dataclass
class Conversion:
    resources: list[tuple[str, dict]]
    ipam: list[tuple[str, bytes]]
    report: Report


# --------------------------------------------------------------------------------------------
