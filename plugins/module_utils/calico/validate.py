# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-kind value rules of the Calico v3 objects the collection writes or accepts (libcalico-go's validator).

They run after schema.py has checked the shape (known fields, JSON types, enumerations).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import (
    DEFAULT_TIER_PREFIX,
    ValidationError,
    parse_as_number,
    validate_cidr,
    validate_cidr_or_ip,
    validate_cluster_id,
    validate_ip,
    validate_ip_port,
    validate_label_name,
    validate_labels,
    validate_name,
    workload_endpoint_name,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.selector import (
    parse_selector,
    uses_global,
    validate_selector,
)


def _spec(resource: dict, kind: str) -> dict:
    spec = resource.get("spec", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValidationError(f"{kind}.spec: must be a mapping")
    return spec


def _as_number_field(spec: dict, key: str, field: str) -> None:
    if key in spec and spec[key] is not None:
        spec[key] = parse_as_number(spec[key], f"{field}.{key}")


BGP_DEFAULT_ONLY = ("nodeToNodeMeshEnabled", "asNumber", "serviceClusterIPs", "serviceExternalIPs",
                    "serviceLoadBalancerIPs", "nodeMeshPassword", "nodeMeshMaxRestartTime")


def _validate_bgpconfiguration(resource: dict) -> None:
    name = resource["metadata"]["name"]
    field = "BGPConfiguration.spec"
    if name != "default" and not name.startswith("node."):
        raise ValidationError(f"BGPConfiguration.metadata.name: {name!r} must be 'default' or 'node.<nodename>'")
    spec = _spec(resource, "BGPConfiguration")
    if name != "default":
        for key in BGP_DEFAULT_ONLY:
            if key in spec:
                raise ValidationError(f"{field}.{key}: may only be set on the BGPConfiguration named 'default' "
                                      f"(this one is {name!r})")
    _as_number_field(spec, "asNumber", field)
    for key in ("serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"):
        entries = spec.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise ValidationError(f"{field}.{key}: must be a list of {{cidr: ...}}")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or "cidr" not in entry:
                raise ValidationError(f"{field}.{key}[{index}]: must be a mapping with a cidr")
            entry["cidr"] = validate_cidr(entry["cidr"], f"{field}.{key}[{index}].cidr")
    port = spec.get("listenPort")
    if "listenPort" in spec and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise ValidationError(f"{field}.listenPort: {spec['listenPort']!r} must be a port 1–65535")


def _validate_bgppeer(resource: dict) -> None:
    field = "BGPPeer.spec"
    spec = _spec(resource, "BGPPeer")
    if spec.get("node"):
        validate_name(spec["node"], f"{field}.node")
    for key in ("nodeSelector", "peerSelector"):
        if spec.get(key):
            validate_selector(spec[key], f"{field}.{key}")
    if spec.get("peerIP"):
        spec["peerIP"] = validate_ip_port(spec["peerIP"], f"{field}.peerIP")
    _as_number_field(spec, "asNumber", field)
    if spec.get("node") and spec.get("nodeSelector"):
        raise ValidationError(f"{field}: node and nodeSelector are mutually exclusive")
    if spec.get("peerIP") and spec.get("peerSelector"):
        raise ValidationError(f"{field}: peerIP and peerSelector are mutually exclusive")
    if spec.get("peerSelector") and spec.get("asNumber"):
        raise ValidationError(f"{field}.asNumber: must be unset when peerSelector is set "
                              "(selected peers use their own AS)")
    if not spec.get("peerIP") and not spec.get("peerSelector"):
        raise ValidationError(f"{field}: one of peerIP or peerSelector is required")


def _validate_node(resource: dict) -> None:
    field = "Node.spec.bgp"
    spec = _spec(resource, "Node")
    bgp = spec.get("bgp")
    if bgp is None:
        return
    if not isinstance(bgp, dict) or not bgp:
        raise ValidationError(f"{field}: must be a non-empty mapping when present")
    if "ipv4Address" in bgp:
        validate_cidr_or_ip(bgp["ipv4Address"], f"{field}.ipv4Address", 4)
    if "ipv6Address" in bgp:
        validate_cidr_or_ip(bgp["ipv6Address"], f"{field}.ipv6Address", 6)
    if "ipv4IPIPTunnelAddr" in bgp:
        validate_ip(bgp["ipv4IPIPTunnelAddr"], f"{field}.ipv4IPIPTunnelAddr", 4)
    if not any(bgp.get(k) for k in ("ipv4Address", "ipv6Address", "ipv4IPIPTunnelAddr")):
        raise ValidationError(f"{field}: one of ipv4Address, ipv6Address or ipv4IPIPTunnelAddr is required")
    _as_number_field(bgp, "asNumber", field)
    if bgp.get("routeReflectorClusterID"):
        bgp["routeReflectorClusterID"] = validate_cluster_id(bgp["routeReflectorClusterID"],
                                                             f"{field}.routeReflectorClusterID")


_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def _validate_ippool(resource: dict) -> None:
    field = "IPPool.spec"
    spec = _spec(resource, "IPPool")
    if "cidr" not in spec:
        raise ValidationError(f"{field}.cidr: is required")
    spec["cidr"] = validate_cidr(spec["cidr"], f"{field}.cidr")
    network = ipaddress.ip_network(spec["cidr"])
    v4 = network.version == 4
    spec.setdefault("blockSize", 26 if v4 else 122)
    low, high = (20, 32) if v4 else (116, 128)
    block = spec["blockSize"]
    if not isinstance(block, int) or isinstance(block, bool) or not low <= block <= high:
        raise ValidationError(f"{field}.blockSize: {block!r} must be {low}–{high} for an IPv{network.version} pool")
    if not spec.get("disabled") and network.prefixlen > block:
        raise ValidationError(f"{field}.cidr: prefix /{network.prefixlen} is smaller than blockSize {block}; "
                              "an enabled pool must hold at least one block")
    if any(network.overlaps(net) for net in _LINK_LOCAL if net.version == network.version):
        raise ValidationError(f"{field}.cidr: {spec['cidr']} overlaps the link-local range")
    spec.setdefault("ipipMode", "Never")
    spec.setdefault("vxlanMode", "Never")
    spec.setdefault("nodeSelector", "all()")
    if not v4 and spec["ipipMode"] != "Never":
        raise ValidationError(f"{field}.ipipMode: IPIP is not supported on an IPv6 pool")
    if spec["ipipMode"] != "Never" and spec["vxlanMode"] != "Never":
        raise ValidationError(f"{field}: ipipMode and vxlanMode may not both be enabled")
    if uses_global(parse_selector(spec["nodeSelector"], f"{field}.nodeSelector")):
        raise ValidationError(f"{field}.nodeSelector: global() is not allowed here")
    for deprecated in ("ipip", "nat-outgoing"):
        if deprecated in spec:
            raise ValidationError(f"{field}.{deprecated}: is a deprecated v1 field; use ipipMode / natOutgoing")


def check_pool_overlaps(written: list[tuple[int, dict]], stored: list[dict]) -> None:
    """Calico's cross-pool rule (clientv3/ippool.go): no two pools' CIDRs overlap.

    ``written``: (index in the call, pool) for the pools this call creates or updates; ``stored``:
    every pool in the datastore. Each written pool is compared with the stored ones (other names)
    and with the pools written before it in the same call.
    """
    seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    written_names = {pool["metadata"]["name"] for _unused, pool in written}
    for pool in stored:
        cidr = (pool.get("spec") or {}).get("cidr")
        if pool["metadata"]["name"] not in written_names and isinstance(cidr, str):
            try:
                seen.append((pool["metadata"]["name"], ipaddress.ip_network(cidr, strict=False), "stored"))
            except ValueError:
                continue  # not ours to judge here; Calico would not have stored it
    for index, pool in written:
        name, cidr = pool["metadata"]["name"], pool["spec"]["cidr"]
        network = ipaddress.ip_network(cidr)
        for other, other_net, where in seen:
            if network.version == other_net.version and network.overlaps(other_net):
                raise ValidationError(f"resources[{index}]: IPPool({name}) CIDR {cidr} overlaps with "
                                      f"IPPool({other}) CIDR {other_net} ({where})")
        seen.append((name, network, f"resources[{index}]"))


def _validate_singleton(resource: dict) -> None:
    kind, name = resource["kind"], resource["metadata"]["name"]
    if kind == "ClusterInformation" and name != "default":
        raise ValidationError("ClusterInformation.metadata.name: the only allowed name is 'default'")
    if kind == "FelixConfiguration" and name != "default" and not name.startswith("node."):
        raise ValidationError(f"FelixConfiguration.metadata.name: {name!r} must be 'default' or 'node.<nodename>'")


def _validate_hostendpoint(resource: dict) -> None:
    field = "HostEndpoint.spec"
    spec = _spec(resource, "HostEndpoint")
    validate_name(spec.get("node"), f"{field}.node")
    ips = spec.get("expectedIPs") or []
    if not spec.get("interfaceName") and not ips:
        raise ValidationError(f"{field}: one of interfaceName or expectedIPs is required")
    for index, ip in enumerate(ips):
        validate_ip(ip, f"{field}.expectedIPs[{index}]")


def computed_wep_name(spec: dict) -> str | None:
    """The computed name from a WorkloadEndpoint spec, or None when the spec lacks what it needs."""
    fields = ("node", "orchestrator", "endpoint", "pod", "containerID", "workload")
    if any(not isinstance(spec.get(k) or "", str) for k in fields):
        return None
    orchestrator = spec.get("orchestrator")
    workload = {"k8s": spec.get("pod"), "cni": spec.get("containerID")}.get(orchestrator, spec.get("workload") or "")
    if not (spec.get("node") and orchestrator and spec.get("endpoint")) or (orchestrator in ("k8s", "cni")
                                                                            and not workload):
        return None
    return workload_endpoint_name(spec["node"], orchestrator, workload or "", spec["endpoint"])


def _validate_workloadendpoint(resource: dict) -> None:
    field = "WorkloadEndpoint.spec"
    spec = _spec(resource, "WorkloadEndpoint")
    for key in ("node", "orchestrator", "endpoint", "pod", "containerID", "workload"):
        if key in ("node", "orchestrator", "endpoint") and not spec.get(key):
            raise ValidationError(f"{field}.{key}: is required")
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise ValidationError(f"{field}.{key}: must be a string, got {spec[key]!r}")
    orchestrator = spec["orchestrator"]
    workload = {"k8s": spec.get("pod"), "cni": spec.get("containerID")}.get(orchestrator, spec.get("workload") or "")
    if orchestrator in ("k8s", "cni") and not workload:
        key = "pod" if orchestrator == "k8s" else "containerID"
        raise ValidationError(f"{field}.{key}: is required for orchestrator {orchestrator}")
    expected = workload_endpoint_name(spec["node"], orchestrator, workload or "", spec["endpoint"])
    name = resource["metadata"]["name"]
    if name != expected:
        raise ValidationError(f"WorkloadEndpoint.metadata.name: {name!r} must be the computed name {expected!r}")
    for index, net in enumerate(spec.get("ipNetworks") or []):
        validate_cidr(net, f"{field}.ipNetworks[{index}]", strict=False)
    labels = resource["metadata"].setdefault("labels", {})
    labels["projectcalico.org/namespace"] = resource["metadata"]["namespace"]
    labels["projectcalico.org/orchestrator"] = orchestrator


def _validate_rules(rules: Any, field: str) -> None:
    if rules is None:
        return
    if not isinstance(rules, list):
        raise ValidationError(f"{field}: must be a list of rules")
    for index, rule in enumerate(rules):
        where = f"{field}[{index}]"
        if not isinstance(rule, dict):
            raise ValidationError(f"{where}: must be a mapping")
        if not rule.get("action"):  # its values are schema.py's; here only that it is there
            raise ValidationError(f"{where}.action: is required (one of Allow, Deny, Log, Pass)")
        for side in ("source", "destination"):
            part = rule.get(side) or {}
            for key in ("selector", "namespaceSelector", "notSelector"):
                if part.get(key):
                    validate_selector(part[key], f"{where}.{side}.{key}")
            for key in ("nets", "notNets"):
                for n, net in enumerate(part.get(key) or []):
                    validate_cidr(net, f"{where}.{side}.{key}[{n}]", strict=False)


def _validate_policy(resource: dict) -> None:
    kind = resource["kind"]
    field = f"{kind}.spec"
    spec = _spec(resource, kind)
    name = resource["metadata"]["name"]
    bare = name[len(DEFAULT_TIER_PREFIX):] if name.startswith(DEFAULT_TIER_PREFIX) else name
    if not (kind == "NetworkPolicy" and bare.startswith("knp.default.")):
        validate_label_name(bare, f"{kind}.metadata.name")
    if spec.get("selector"):
        validate_selector(spec["selector"], f"{field}.selector")
    _validate_rules(spec.get("ingress"), f"{field}.ingress")
    _validate_rules(spec.get("egress"), f"{field}.egress")


def _validate_profile(resource: dict) -> None:
    spec = _spec(resource, "Profile")
    validate_labels(spec.get("labelsToApply"), "Profile.spec.labelsToApply")
    _validate_rules(spec.get("ingress"), "Profile.spec.ingress")
    _validate_rules(spec.get("egress"), "Profile.spec.egress")


KIND_RULES = {
    "BGPConfiguration": _validate_bgpconfiguration,
    "BGPPeer": _validate_bgppeer,
    "Node": _validate_node,
    "IPPool": _validate_ippool,
    "FelixConfiguration": _validate_singleton,
    "ClusterInformation": _validate_singleton,
    "HostEndpoint": _validate_hostendpoint,
    "WorkloadEndpoint": _validate_workloadendpoint,
    "GlobalNetworkPolicy": _validate_policy,
    "NetworkPolicy": _validate_policy,
    "Profile": _validate_profile,
}
