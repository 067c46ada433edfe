# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico v1 → v3 converters: calico-upgrade's rules per kind, and :func:`convert` over a whole v1 dataset.

The v1 data and the name conversions live in :mod:`v1_model`; see its docstring for the sources.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import (
    parse_as_number,
    workload_endpoint_name,
)
from ansible_collections.kubescale.calico.plugins.module_utils.migration.v1_model import (
    API_VERSION,
    MIN_VERSION,
    VERSION_KEY,
    Conversion,
    Report,
    V1Data,
    V1Error,
    cidr_to_name,
    convert_ip_to_name,
    convert_name,
    convert_name_no_dots,
    convert_node_name,
    convert_profile_name,
    unescape,
)

# Helpers
# --------------------------------------------------------------------------------------------


def _json(raw: str, what: str):
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{what}: invalid JSON ({e.msg} at char {e.pos})") from None


def _obj(kind: str, name: str, spec: dict, namespace: str | None = None, labels: dict | None = None,
         annotations: dict | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}


_V4_HOST = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def _net(value: str, what: str) -> str:
    """A masked CIDR string (``10.0.0.5/24`` → ``10.0.0.0/24``; a bare IP gets a full mask)."""
    if isinstance(value, str) and value.endswith("/32") and _V4_HOST.fullmatch(value[:-3]):
        return value  # the common case (a workload's /32) is already masked
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{what}: '{value}' is not a CIDR") from None


def _ip(value: str, what: str) -> str:
    if isinstance(value, str) and _V4_HOST.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{what}: '{value}' is not an IP address") from None


def _clean_number(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


# --------------------------------------------------------------------------------------------
# Felix configuration and ClusterInformation
# --------------------------------------------------------------------------------------------

# v1 config name -> (v3 field, type). Types: bool, int, uint32, str, secs, ms, loglevel, protoports.
FELIX_FIELDS: dict[str, tuple[str, str]] = {
    "UseInternalDataplaneDriver": ("useInternalDataplaneDriver", "bool"),
    "DataplaneDriver": ("dataplaneDriver", "str"),
    "Ipv6Support": ("ipv6Support", "bool"),
    "IgnoreLooseRPF": ("ignoreLooseRPF", "bool"),
    "RouteRefreshInterval": ("routeRefreshInterval", "secs"),
    "IptablesRefreshInterval": ("iptablesRefreshInterval", "secs"),
    "IptablesPostWriteCheckIntervalSecs": ("iptablesPostWriteCheckInterval", "secs"),
    "IptablesLockFilePath": ("iptablesLockFilePath", "str"),
    "IptablesLockTimeoutSecs": ("iptablesLockTimeout", "secs"),
    "IptablesLockProbeIntervalMillis": ("iptablesLockProbeInterval", "ms"),
    "IpsetsRefreshInterval": ("ipsetsRefreshInterval", "secs"),
    "MaxIpsetSize": ("maxIpsetSize", "int"),
    "NetlinkTimeoutSecs": ("netlinkTimeout", "secs"),
    "MetadataAddr": ("metadataAddr", "str"),
    "MetadataPort": ("metadataPort", "int"),
    "InterfacePrefix": ("interfacePrefix", "str"),
    "ChainInsertMode": ("chainInsertMode", "str"),
    "DefaultEndpointToHostAction": ("defaultEndpointToHostAction", "str"),
    "IptablesFilterAllowAction": ("iptablesFilterAllowAction", "str"),
    "IptablesMangleAllowAction": ("iptablesMangleAllowAction", "str"),
    "LogPrefix": ("logPrefix", "str"),
    "LogFilePath": ("logFilePath", "str"),
    "LogSeverityFile": ("logSeverityFile", "loglevel"),
    "LogSeverityScreen": ("logSeverityScreen", "loglevel"),
    "LogSeveritySys": ("logSeveritySys", "loglevel"),
    "IpInIpEnabled": ("ipipEnabled", "bool"),
    "IpInIpMtu": ("ipipMTU", "int"),
    "ReportingIntervalSecs": ("reportingInterval", "secs"),
    "ReportingTTLSecs": ("reportingTTL", "secs"),
    "EndpointReportingEnabled": ("endpointReportingEnabled", "bool"),
    "EndpointReportingDelaySecs": ("endpointReportingDelay", "secs"),
    "IptablesMarkMask": ("iptablesMarkMask", "uint32"),
    "DisableConntrackInvalidCheck": ("disableConntrackInvalidCheck", "bool"),
    "HealthEnabled": ("healthEnabled", "bool"),
    "HealthPort": ("healthPort", "int"),
    "PrometheusMetricsEnabled": ("prometheusMetricsEnabled", "bool"),
    "PrometheusMetricsPort": ("prometheusMetricsPort", "int"),
    "PrometheusGoMetricsEnabled": ("prometheusGoMetricsEnabled", "bool"),
    "PrometheusProcessMetricsEnabled": ("prometheusProcessMetricsEnabled", "bool"),
    "FailsafeInboundHostPorts": ("failsafeInboundHostPorts", "protoports"),
    "FailsafeOutboundHostPorts": ("failsafeOutboundHostPorts", "protoports"),
    "UsageReportingEnabled": ("usageReportingEnabled", "bool"),
}
CLUSTER_FIELDS = {"ClusterGUID": "clusterGUID", "ClusterType": "clusterType", "CalicoVersion": "calicoVersion"}

_LOG_LEVELS = {"debug": "Debug", "info": "Info", "warning": "Warning", "error": "Error",
               "fatal": "Fatal", "panic": "Fatal", "": ""}


def convert_log_level(level: str) -> str:
    """convertLogLevel: debug/info/warning/error/fatal(panic) capitalised; anything else Info."""
    return _LOG_LEVELS.get(level.lower(), "Info")


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String() (``90`` → ``1m30s``, ``0.05`` → ``50ms``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size or unit == "ns":
                return sign + _frac(ns, size) + unit
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    out = sign
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return out + _frac(rem, 1_000_000_000) + "s"


def _frac(value: int, size: int) -> str:
    whole, part = divmod(value, size)
    if not part:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{part:0{digits}d}".rstrip("0")


def _bool(s: str) -> bool:
    low = s.strip().lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise ValueError(f"'{s}' is not a boolean")


def parse_proto_ports(raw: str) -> list[dict]:
    """Failsafe ports: ``tcp:22, udp:68, 179`` → [{protocol, port}]; ``none`` → []."""
    if raw.strip().lower() == "none":
        return []
    out = []
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) > 2:
            raise ValueError(f"'{item}': ports should be <protocol>:<number> or <number>")
        proto, port = ("TCP", parts[0]) if len(parts) == 1 else (parts[0].upper(), parts[1])
        if proto not in ("TCP", "UDP"):
            raise ValueError(f"'{item}': unknown protocol {proto}")
        if not port.isdigit() or int(port) > 65535:
            raise ValueError(f"'{item}': port must be an integer 0-65535")
        out.append({"protocol": proto, "port": int(port)})
    return out


def _felix_value(kind: str, raw: str):
    if kind == "bool":
        return _bool(raw)
    if kind == "int":
        return int(raw.strip())
    if kind == "uint32":
        n = int(raw.strip(), 0)
        if not 0 <= n <= 0xFFFFFFFF:
            raise ValueError(f"'{raw}' is out of uint32 range")
        return n
    if kind == "secs":
        return go_duration(float(raw))
    if kind == "ms":
        return go_duration(float(raw) / 1000.0)
    if kind == "loglevel":
        return convert_log_level(raw)
    if kind == "protoports":
        return parse_proto_ports(raw)
    return raw


def convert_felix_config(config: dict[str, str], key_prefix: str, errors: list[dict]) -> dict:
    """The FelixConfiguration spec from v1 config values; bad values go to ``errors``."""
    spec: dict = {}
    for name in sorted(config):
        if name not in FELIX_FIELDS:
            continue
        field_name, kind = FELIX_FIELDS[name]
        try:
            spec[field_name] = _felix_value(kind, config[name])
        except ValueError as e:
            errors.append({"v1_key": key_prefix + name, "cause": f"{name}: {e}"})
    return spec


# --------------------------------------------------------------------------------------------
# Per-kind converters (raise ValueError with a human cause)
# --------------------------------------------------------------------------------------------

def convert_node(host: str, comp: dict[str, str], tunnel_addr: str | None) -> dict:
    """Node from the host's v1 components (BGP addresses, AS, orchestrator refs)."""
    name = convert_node_name(host)
    spec: dict = {}
    v4 = comp.get("bgp_ip_addr_v4") or comp.get("bird_ip") or ""
    v6 = comp.get("bgp_ip_addr_v6") or ""
    if v4 or v6:
        bgp: dict = {}
        if v4:
            bgp["ipv4Address"] = _addr_with_mask(v4, comp.get("bgp_network_v4"), "ip_addr_v4")
        if v6:
            bgp["ipv6Address"] = _addr_with_mask(v6, comp.get("bgp_network_v6"), "ip_addr_v6")
        if comp.get("bgp_as_num"):
            bgp["asNumber"] = parse_as_number(comp["bgp_as_num"], "as_num")
        if tunnel_addr:
            bgp["ipv4IPIPTunnelAddr"] = _ip(tunnel_addr, "IpInIpTunnelAddr")
        spec["bgp"] = bgp
    if comp.get("orchestrator_refs"):
        refs = _json(comp["orchestrator_refs"], "orchestrator_refs")
        spec["orchRefs"] = [_orch_ref(r) for r in refs or []]
    return _obj("Node", name, spec)


def _orch_ref(r: dict) -> dict:
    out = {"nodeName": r["nodeName"]} if r.get("nodeName") else {}
    out["orchestrator"] = r.get("orchestrator", "")
    return out


def _addr_with_mask(ip: str, network: str | None, what: str) -> str:
    addr = ipaddress.ip_address(_ip(ip, what))
    if network:
        prefix = ipaddress.ip_network(network, strict=False).prefixlen
    else:
        prefix = addr.max_prefixlen
    return f"{addr}/{prefix}"


def convert_bgp_peer(raw: str, host: str | None) -> dict:
    """BGPPeer: global ``<ip-name>``; per node ``<node>.<ip-name>`` with spec.node."""
    v = _json(raw, "BGP peer")
    ip = _ip(v.get("ip", ""), "ip")
    spec: dict = {}
    name = convert_ip_to_name(ip)
    if host is not None:
        node = convert_node_name(host)
        name = f"{node}.{name}"
        spec["node"] = node
    spec["peerIP"] = ip
    spec["asNumber"] = parse_as_number(v.get("as_num", 0) or 0, "as_num")
    return _obj("BGPPeer", name, spec)


def convert_host_endpoint(host: str, endpoint_id: str, raw: str) -> dict:
    v = _json(raw, "host endpoint")
    node = convert_node_name(host)
    ips = [_ip(x, "expected_ipv4_addrs") for x in v.get("expected_ipv4_addrs") or []]
    ips += [_ip(x, "expected_ipv6_addrs") for x in v.get("expected_ipv6_addrs") or []]
    spec: dict = {"node": node}
    if v.get("name"):
        spec["interfaceName"] = v["name"]
    if ips:
        spec["expectedIPs"] = ips
    if v.get("profile_ids"):
        spec["profiles"] = [convert_profile_name(p) for p in v["profile_ids"]]
    if v.get("ports"):
        spec["ports"] = [_port(p) for p in v["ports"]]
    return _obj("HostEndpoint", convert_name(f"{node}.{endpoint_id}"), spec, labels=v.get("labels"))


def _port(p: dict) -> dict:
    return {"name": p.get("name", ""), "protocol": _protocol(p.get("protocol")), "port": p.get("port")}


def convert_ip_pool(raw: str) -> dict:
    v = _json(raw, "IP pool")
    cidr = _net(v.get("cidr", ""), "cidr")
    ipip_if = v.get("ipip") or ""
    mode = (v.get("ipip_mode") or "").lower()
    ipip_mode = "Never" if not ipip_if else ("CrossSubnet" if mode == "cross-subnet" else "Always")
    version = ipaddress.ip_network(cidr).version
    spec = {
        "cidr": cidr,
        "vxlanMode": "Never",
        "ipipMode": ipip_mode,
        "natOutgoing": bool(v.get("masquerade", False)),
        "blockSize": 26 if version == 4 else 122,
        "nodeSelector": "all()",
    }
    if v.get("disabled"):
        spec["disabled"] = True
    return _obj("IPPool", cidr_to_name(cidr), spec)


_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "icmpv6": "ICMPv6", "sctp": "SCTP", "udplite": "UDPLite"}


def _protocol(p):
    if p is None or isinstance(p, int):
        return p
    return _PROTOCOLS.get(str(p).lower(), p)


def convert_selector(sel: str) -> str:
    """``calico/k8s_ns`` → ``projectcalico.org/namespace``."""
    return sel.replace("calico/k8s_ns", "projectcalico.org/namespace")


def _merge_tag(sel: str, tag: str | None) -> str:
    if tag:
        return f"({sel}) && {tag} == ''" if sel else f"{tag} == ''"
    return sel


_ACTIONS = {"": "Allow", "next-tier": "Pass", "allow": "Allow", "deny": "Deny", "log": "Log", "pass": "Pass"}


def convert_rule(r: dict) -> dict:
    """One v1 backend rule → v3 Rule (tags merged into selectors, nets masked, actions renamed)."""
    action = r.get("action") or ""
    if action.lower() not in _ACTIONS:
        raise ValueError(f"rule action '{action}' is not one of allow, deny, log, next-tier")
    out: dict = {"action": _ACTIONS[action.lower()]}
    if r.get("ip_version") is not None:
        out["ipVersion"] = r["ip_version"]
    if r.get("protocol") is not None:
        out["protocol"] = _protocol(r["protocol"])
    icmp = {k: r[f"icmp_{k}"] for k in ("type", "code") if r.get(f"icmp_{k}") is not None}
    if icmp:
        out["icmp"] = icmp
    if r.get("!protocol") is not None:
        out["notProtocol"] = _protocol(r["!protocol"])
    nicmp = {k: r[f"!icmp_{k}"] for k in ("type", "code") if r.get(f"!icmp_{k}") is not None}
    if nicmp:
        out["notICMP"] = nicmp
    for side, v3side in (("src", "source"), ("dst", "destination")):
        ent: dict = {}
        nets = ([r[f"{side}_net"]] if r.get(f"{side}_net") else []) + list(r.get(f"{side}_nets") or [])
        if nets:
            ent["nets"] = [_net(n, f"{side}_nets") for n in nets]
        sel = _merge_tag(convert_selector(r.get(f"{side}_selector") or ""), r.get(f"{side}_tag"))
        if sel:
            ent["selector"] = sel
        if r.get(f"{side}_ports"):
            ent["ports"] = list(r[f"{side}_ports"])
        nnets = ([r[f"!{side}_net"]] if r.get(f"!{side}_net") else []) + list(r.get(f"!{side}_nets") or [])
        if nnets:
            ent["notNets"] = [_net(n, f"!{side}_nets") for n in nnets]
        nsel = _merge_tag(convert_selector(r.get(f"!{side}_selector") or ""), r.get(f"!{side}_tag"))
        if nsel:
            ent["notSelector"] = nsel
        if r.get(f"!{side}_ports"):
            ent["notPorts"] = list(r[f"!{side}_ports"])
        out[v3side] = ent
    return out


def _rules(rules, what: str) -> list[dict] | None:
    if rules is None:
        return None
    if not isinstance(rules, list):
        raise TypeError(f"{what}: must be a list of rules")
    return [convert_rule(r) for r in rules]


def convert_policy(name: str, raw: str) -> dict:
    """GlobalNetworkPolicy from a v1 tier-default policy (name via convert_name_no_dots)."""
    v = _json(raw, "policy")
    spec: dict = {}
    if v.get("order") is not None:
        spec["order"] = _clean_number(v["order"])
    ingress = _rules(v.get("inbound_rules"), "inbound_rules")
    egress = _rules(v.get("outbound_rules"), "outbound_rules")
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    spec["selector"] = convert_selector(v.get("selector") or "")
    untracked, prednat = bool(v.get("untracked")), bool(v.get("pre_dnat"))
    if untracked:
        spec["doNotTrack"] = True
    if prednat:
        spec["preDNAT"] = True
    if v.get("apply_on_forward") or untracked or prednat:
        spec["applyOnForward"] = True
    types = v.get("types") or []
    if not types:
        spec["types"] = ["Ingress"] if prednat else ["Ingress", "Egress"]
    else:
        conv = []
        for t in types:
            if str(t).lower() not in ("ingress", "egress"):
                raise ValueError(f"invalid policy type: '{t}'")
            conv.append(str(t).capitalize())
        spec["types"] = conv
    return _obj("GlobalNetworkPolicy", convert_name_no_dots(name), spec, annotations=v.get("annotations"))


def convert_profile(name: str, parts: dict[str, tuple[str, str]]) -> dict:
    """Profile: rules, and labels plus each tag as ``<tag>: ""`` in labelsToApply."""
    rules = _json(parts["rules"][1], "profile rules") if "rules" in parts else {}
    labels = _json(parts["labels"][1], "profile labels") if "labels" in parts else None
    tags = _json(parts["tags"][1], "profile tags") if "tags" in parts else []
    v3name = convert_profile_name(name)
    apply = dict(labels or {})
    for t in tags or []:
        if t in apply:
            raise ValueError(f"tag '{t}' and label '{t} == {apply[t]}' have the same key in profile {v3name}; "
                             "change the label key before migrating")
        apply[t] = ""
    spec: dict = {}
    ingress = _rules(rules.get("inbound_rules"), "inbound_rules")
    egress = _rules(rules.get("outbound_rules"), "outbound_rules")
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    if apply:
        spec["labelsToApply"] = apply
    return _obj("Profile", v3name, spec)


def convert_workload_endpoint(host: str, orch: str, workload_id: str, endpoint_id: str, raw: str) -> dict:
    """WorkloadEndpoint: namespace from the k8s workload ID, computed name, kns. profiles."""
    v = _json(raw, "workload endpoint")
    namespace, pod, container, workload = "default", "", "", ""
    if orch == "k8s":
        if "." not in workload_id:
            raise ValueError(f"malformed k8s workload ID '{workload_id}': workload was not added through the "
                             "Calico CNI plugin and cannot be converted")
        namespace, pod = workload_id.split(".", 1)
        container = v.get("active_instance_id") or ""
    elif orch == "cni":
        container = workload_id
    elif orch == "libnetwork":
        workload = "libnetwork"
    else:
        workload = convert_name(workload_id)
    labels = dict(v.get("labels") or {})
    if "calico/k8s_ns" in labels:
        labels["projectcalico.org/namespace"] = labels.pop("calico/k8s_ns")
    spec: dict = {"orchestrator": convert_name(orch)}
    if workload:
        spec["workload"] = workload
    spec["node"] = convert_node_name(host)
    if container:
        spec["containerID"] = container
    if pod:
        spec["pod"] = pod
    spec["endpoint"] = convert_name(endpoint_id)
    nets = [_net(n, "ipv4_nets") for n in v.get("ipv4_nets") or []]
    nets += [_net(n, "ipv6_nets") for n in v.get("ipv6_nets") or []]
    if nets:
        spec["ipNetworks"] = nets
    nats = [{"internalIP": _ip(n.get("int_ip", ""), "int_ip"), "externalIP": _ip(n.get("ext_ip", ""), "ext_ip")}
            for n in (v.get("ipv4_nat") or []) + (v.get("ipv6_nat") or [])]
    if nats:
        spec["ipNATs"] = nats
    if v.get("ipv4_gateway"):
        spec["ipv4Gateway"] = _ip(v["ipv4_gateway"], "ipv4_gateway")
    if v.get("ipv6_gateway"):
        spec["ipv6Gateway"] = _ip(v["ipv6_gateway"], "ipv6_gateway")
    if v.get("profile_ids"):
        spec["profiles"] = [convert_profile_name(p) for p in v["profile_ids"]]
    spec["interfaceName"] = v.get("name") or ""
    if v.get("mac"):
        spec["mac"] = v["mac"]
    if v.get("ports"):
        spec["ports"] = [_port(p) for p in v["ports"]]
    middle = {"k8s": pod, "cni": container}.get(spec["orchestrator"], workload)
    name = workload_endpoint_name(spec["node"], spec["orchestrator"], middle, spec["endpoint"])
    return _obj("WorkloadEndpoint", name, spec, namespace=namespace, labels=labels)


# --------------------------------------------------------------------------------------------
# IPAM (non-resource keys)
# --------------------------------------------------------------------------------------------

def _dump(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=False).encode()


def convert_block(raw: str) -> bytes:
    """An AllocationBlock with its affinity rewritten to ``host:<ConvertNodeName(host)>``."""
    v = _json(raw, "allocation block")
    node = ""
    aff = v.get("affinity")
    if isinstance(aff, str) and aff.startswith("host:"):
        node = aff[len("host:"):]
    elif v.get("hostAffinity"):
        node = v["hostAffinity"]
    if node:
        v["affinity"] = "host:" + convert_node_name(node)
    return _dump(v)


def convert_affinity_key(key: str, host: str) -> str:
    p = key.split("/")
    p[5] = convert_node_name(host)
    return "/".join(p)


def convert_affinity_value(raw: str) -> bytes:
    """Legacy empty affinity values (Calico 2.6 wrote ``""``) are read as ``{}`` and stored as
    ``{"state":"","deleted":false}``, as libcalico-go's BlockAffinity serialises them."""
    if raw.strip() == "":
        return _dump({"state": "", "deleted": False})
    v = _json(raw, "block affinity")
    return _dump(v)


def convert_handle(raw: str) -> bytes:
    """Handles are copied unchanged (after a JSON check)."""
    if not isinstance(_json(raw, "IPAM handle"), dict):
        raise ValueError("IPAM handle: must be a JSON object")
    return raw.encode()


# --------------------------------------------------------------------------------------------
# Version and whole-dataset conversion
# --------------------------------------------------------------------------------------------

def check_version(version: str | None) -> str:
    """Require 2.6.5 ≤ CalicoVersion < 3 (pre-releases allowed); returns the version."""
    if not version:
        raise V1Error("no Calico version found at /calico/v1/config/CalicoVersion: is this a Calico 2.x datastore?")
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", version.strip())
    if not m:
        raise V1Error(f"CalicoVersion '{version}' is not a semantic version")
    v = tuple(int(x) for x in m.groups())
    if v[0] >= 3:
        raise V1Error(f"CalicoVersion {version}: the data is already Calico v3; nothing to migrate")
    if v < MIN_VERSION:
        raise V1Error(f"CalicoVersion {version}: migration requires Calico v2.6.5 or later (upgrade to 2.6.5+ first)")
    return version


Validator = Callable[[dict], dict]


def _identity(r: dict) -> dict:
    return r


def _iter_resources(data: V1Data, rep: Report) -> Iterator[tuple[str, str, Callable[[], dict]]]:
    """(v1 key, kind, thunk) in calico-upgrade's order; filtered objects are reported, not yielded."""
    gerrs = rep.conversion_errors
    felix = convert_felix_config(data.global_config, "/calico/v1/config/", gerrs)
    if felix:
        yield "/calico/v1/config", "FelixConfiguration", lambda: _obj("FelixConfiguration", "default", felix)
    ci = {v3: data.global_config[v1] for v1, v3 in CLUSTER_FIELDS.items() if data.global_config.get(v1)}
    ci["datastoreReady"] = False
    yield "/calico/v1/config", "ClusterInformation", lambda: _obj("ClusterInformation", "default", ci)
    for host in sorted(data.host_config):
        prefix = f"/calico/v1/host/{host}/config/"
        spec = convert_felix_config(data.host_config[host], prefix, gerrs)
        if spec:
            yield prefix, "FelixConfiguration", (
                lambda h=host, s=spec: _obj("FelixConfiguration", "node." + convert_node_name(h), s))
    bgp = data.bgp_global
    if any(bgp.get(k) for k in ("as_num", "loglevel", "node_mesh")):
        yield "/calico/bgp/v1/global", "BGPConfiguration", lambda: _convert_bgp_config(bgp)
    tunnels = {convert_node_name(h): c["IpInIpTunnelAddr"] for h, c in data.host_config.items()
               if c.get("IpInIpTunnelAddr")}
    for host in sorted(data.hosts):
        comp = data.hosts[host]
        if "metadata" not in comp:
            continue  # only hosts with a metadata key are Nodes in the v1 model
        yield f"/calico/v1/host/{host}/metadata", "Node", (
            lambda h=host, c=comp: convert_node(h, c, tunnels.get(convert_node_name(h))))
    for key, raw in sorted(data.global_peers):
        yield key, "BGPPeer", lambda r=raw: convert_bgp_peer(r, None)
    for key, host, raw in sorted(data.node_peers):
        yield key, "BGPPeer", lambda r=raw, h=host: convert_bgp_peer(r, h)
    for key, host, eid, raw in sorted(data.host_endpoints):
        yield key, "HostEndpoint", lambda h=host, e=eid, r=raw: convert_host_endpoint(h, e, r)
    for key, raw in sorted(data.pools):
        yield key, "IPPool", lambda r=raw: convert_ip_pool(r)
    for key, name, raw in sorted(data.policies):
        if name.startswith("knp.default."):
            rep.filtered.append({"v1_key": key, "kind": "GlobalNetworkPolicy", "reason": "handled by controllers"})
            continue
        yield key, "GlobalNetworkPolicy", lambda n=name, r=raw: convert_policy(n, r)
    for name in sorted(data.profiles):
        parts = data.profiles[name]
        key = f"/calico/v1/policy/profile/{name}"
        if name.startswith(("k8s_ns.", "openstack-sg-")):
            rep.filtered.append({"v1_key": key, "kind": "Profile", "reason": "handled by controllers"})
            continue
        yield key, "Profile", lambda n=name, p=parts: convert_profile(n, p)
    for key, host, orch, wid, eid, raw in data.weps:
        if orch == "openstack":
            rep.filtered.append({"v1_key": key, "kind": "WorkloadEndpoint", "reason": "handled by controllers"})
            continue
        yield key, "WorkloadEndpoint", (lambda h=host, o=orch, w=wid, e=eid, r=raw:
                                        convert_workload_endpoint(h, o, w, e, r))


def _convert_bgp_config(bgp: dict[str, str]) -> dict:
    spec: dict = {}
    if bgp.get("loglevel"):
        spec["logSeverityScreen"] = convert_log_level(bgp["loglevel"])
    if bgp.get("node_mesh"):
        raw = bgp["node_mesh"]
        try:
            enabled = bool(json.loads(raw).get("enabled"))
        except (ValueError, AttributeError):
            enabled = raw.strip().lower() == "true"
        spec["nodeToNodeMeshEnabled"] = enabled
    if bgp.get("as_num"):
        spec["asNumber"] = parse_as_number(bgp["as_num"], "as_num")
    return _obj("BGPConfiguration", "default", spec)


def _v1_name(v1_key: str, kind: str) -> str | None:
    """The v1 identifier of an object, for the converted-names report (None for config objects)."""
    p = v1_key.split("/")
    if kind in ("FelixConfiguration", "ClusterInformation", "BGPConfiguration"):
        return None
    if kind == "Node":
        return p[4]
    if kind == "BGPPeer":
        return p[-1] if p[3] == "global" else f"{p[5]}/{p[-1]}"
    if kind == "HostEndpoint":
        return f"{p[4]}/{unescape(p[6])}"
    if kind == "IPPool":
        return p[-1]
    if kind == "WorkloadEndpoint":
        return "/".join(unescape(x) for x in (p[4], p[6], p[7], p[9]))
    return unescape(p[-1])


def _resource_id(r: dict) -> str:
    ns = r["metadata"].get("namespace")
    return f"{ns}/{r['metadata']['name']}" if ns else r["metadata"]["name"]


def convert(data: V1Data, validate: Validator | None = None, check_version_flag: bool = True) -> Conversion:
    """Convert a whole v1 dataset; every problem is collected in the report (nothing raised).

    ``validate`` is the v3 validator (``calico_resources.validate``); it returns the normalised
    object or raises with a message naming the field and the rule.
    """
    rep = Report()
    validate = validate or _identity
    if check_version_flag:
        try:
            check_version(data.global_config.get("CalicoVersion"))
        except V1Error as e:
            rep.conversion_errors.append({"v1_key": VERSION_KEY, "cause": str(e)})
    resources: list[tuple[str, dict]] = []
    seen: dict[tuple[str, str], str] = {}
    for v1_key, kind, thunk in _iter_resources(data, rep):
        try:
            obj = thunk()
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            rep.conversion_errors.append({"v1_key": v1_key, "kind": kind, "cause": _msg(e)})
            continue
        rid = _resource_id(obj)
        v1_name = _v1_name(v1_key, kind)
        valid = True
        if (kind, rid) in seen:
            rep.name_clashes.append({"kind": kind, "name": rid, "v1_key": v1_key, "other_v1_key": seen[(kind, rid)]})
            valid = False
        seen[(kind, rid)] = v1_key
        try:
            obj = validate(obj)
        except Exception as e:
            rep.validation_errors.append({"v1_key": v1_key, "kind": kind, "name": rid, "cause": _msg(e)})
            valid = False
        if not valid:
            continue
        resources.append((kind, obj))
        rep.counts[kind] = rep.counts.get(kind, 0) + 1
        if v1_name is not None and v1_name != rid:
            rep.converted_names.append({"kind": kind, "v1_name": v1_name, "name": rid, "v1_key": v1_key})
    ipam = convert_ipam(data, rep)
    return Conversion(resources=resources, ipam=ipam, report=rep)


def convert_ipam(data: V1Data, rep: Report) -> list[tuple[str, bytes]]:
    """Blocks, then affinities, then handles (calico-upgrade's order); errors go to the report."""
    out: list[tuple[str, bytes]] = []
    steps = (
        ("IPAMBlock", sorted(data.blocks), lambda k, r: (k, convert_block(r))),
        ("BlockAffinity", sorted(data.affinities),
         lambda k, h, r: (convert_affinity_key(k, h), convert_affinity_value(r))),
        ("IPAMHandle", sorted(data.handles), lambda k, r: (k, convert_handle(r))),
    )
    keys: dict[str, str] = {}
    for kind, items, fn in steps:
        for item in items:
            try:
                key, value = fn(*item)
            except (ValueError, TypeError, AttributeError) as e:
                rep.conversion_errors.append({"v1_key": item[0], "kind": kind, "cause": _msg(e)})
                continue
            if key in keys:
                rep.name_clashes.append({"kind": kind, "name": key, "v1_key": item[0], "other_v1_key": keys[key]})
                continue
            keys[key] = item[0]
            out.append((key, value))
            rep.counts[kind] = rep.counts.get(kind, 0) + 1
    return out


def _msg(e: BaseException) -> str:
    if isinstance(e, KeyError):
        return f"missing field {e}"
    return str(e)
