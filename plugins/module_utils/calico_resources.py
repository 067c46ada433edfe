# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico v3 resource kinds: etcd key paths, serialisation and validation.

Rules follow libcalico-go (see shared/reference/calico-datastore.md §1–2): keys
``/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>``, the stored value is the
whole object with ``kind`` and ``apiVersion``; names are DNS-1123; AS numbers are uint32 (plain or
asdot); cluster IDs are dotted IPv4; selectors parse with Calico's grammar.
Every failure raises :class:`ValidationError` naming the field and the rule, before any write.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

API_VERSION = "projectcalico.org/v3"
KEY_ROOT = "/calico/resources/v3/projectcalico.org/"
MANAGED_BY_LABEL = "kubescale.io/managed-by"
MANAGED_BY_VALUE = "kubescale.calico"
DEFAULT_TIER_PREFIX = "default."  # v3.0–v3.28 store GNP/NP names with it (reference §1.3)


class ValidationError(ValueError):
    """A resource or option broke a rule; the message names the field and the rule."""


@dataclass(frozen=True)
class ResourceKind:
    kind: str
    plural: str
    namespaced: bool = False

    def prefix(self, namespace: str | None = None) -> str:
        base = f"{KEY_ROOT}{self.plural}/"
        return f"{base}{namespace}/" if (self.namespaced and namespace) else base


KINDS: dict[str, ResourceKind] = {k.kind: k for k in (
    ResourceKind("BGPConfiguration", "bgpconfigurations"),
    ResourceKind("BGPPeer", "bgppeers"),
    ResourceKind("Node", "nodes"),
    ResourceKind("IPPool", "ippools"),
    ResourceKind("FelixConfiguration", "felixconfigurations"),
    ResourceKind("ClusterInformation", "clusterinformations"),
    ResourceKind("Profile", "profiles"),
    ResourceKind("HostEndpoint", "hostendpoints"),
    ResourceKind("WorkloadEndpoint", "workloadendpoints", namespaced=True),
    ResourceKind("GlobalNetworkPolicy", "globalnetworkpolicies"),
    ResourceKind("NetworkPolicy", "networkpolicies", namespaced=True),
)}
POLICY_KINDS = ("GlobalNetworkPolicy", "NetworkPolicy")

# ---------------------------------------------------------------------------------------------
# Basic validators (one place for each rule; the planner and the migration use these too)
# ---------------------------------------------------------------------------------------------
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
NAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
LABEL_RE = re.compile(rf"^{_LABEL}$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MAX_ANNOTATIONS_BYTES = 256 * 1024


def resource_kind(kind: Any) -> ResourceKind:
    if kind not in KINDS:
        raise ValidationError(f"kind: {kind!r} is not a supported Calico kind (one of {', '.join(sorted(KINDS))})")
    return KINDS[kind]


def validate_name(value: Any, field: str = "metadata.name", max_len: int = 253) -> str:
    """A DNS-1123 subdomain: lower-case alphanumerics, '-' and '.', at most 253 characters."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field}: a non-empty name is required")
    if len(value) > max_len:
        raise ValidationError(f"{field}: {value[:40]!r}… is {len(value)} characters; at most {max_len} are allowed")
    if not NAME_RE.match(value):
        raise ValidationError(f"{field}: {value!r} is not a DNS-1123 subdomain "
                              "(lower-case letters, digits, '-' and '.', starting and ending alphanumeric)")
    return value


def validate_label_name(value: Any, field: str) -> str:
    """A DNS-1123 label (no dots), at most 63 characters."""
    if not isinstance(value, str) or not LABEL_RE.match(value) or len(value) > 63:
        raise ValidationError(f"{field}: {value!r} is not a DNS-1123 label "
                              "(at most 63 lower-case letters, digits and '-', no dots)")
    return value


def validate_qualified_key(key: Any, field: str) -> str:
    """A Kubernetes qualified name: optional DNS-subdomain prefix + '/' + name of ≤63 characters."""
    if not isinstance(key, str) or not key:
        raise ValidationError(f"{field}: label/annotation keys must be non-empty strings")
    prefix, slash, name = key.rpartition("/")
    if slash:
        validate_name(prefix, f"{field} prefix of {key!r}")
    if len(name) > 63 or not _QUALIFIED_NAME_RE.match(name):
        raise ValidationError(f"{field}: key {key!r} is not a qualified name "
                              "(≤63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric)")
    return key


def validate_labels(labels: Any, field: str = "metadata.labels", allow_removal: bool = False) -> dict[str, str]:
    """Label keys and values; with ``allow_removal`` a None value means 'remove this label'."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ValidationError(f"{field}: must be a mapping of label keys to string values")
    for key, value in labels.items():
        validate_qualified_key(key, field)
        if value is None and allow_removal:
            continue
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE_RE.match(value):
            raise ValidationError(f"{field}.{key}: value {value!r} is not a valid label value "
                                  "(≤63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric)")
    return dict(labels)


def validate_annotations(annotations: Any, field: str = "metadata.annotations") -> dict[str, str]:
    if annotations is None:
        return {}
    if not isinstance(annotations, dict):
        raise ValidationError(f"{field}: must be a mapping of keys to string values")
    size = 0
    for key, value in annotations.items():
        validate_qualified_key(key, field)
        if not isinstance(value, str):
            raise ValidationError(f"{field}.{key}: annotation values must be strings")
        size += len(key) + len(value)
    if size > MAX_ANNOTATIONS_BYTES:
        raise ValidationError(f"{field}: total size {size} bytes exceeds {MAX_ANNOTATIONS_BYTES}")
    return dict(annotations)


def parse_as_number(value: Any, field: str = "asNumber") -> int:
    """A BGP AS number: 0–4294967295, as an integer, a decimal string or asdot 'A.B'."""
    if isinstance(value, bool):
        raise ValidationError(f"{field}: {value!r} is not an AS number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        number = int(value.strip())
    elif isinstance(value, str) and re.fullmatch(r"\d+\.\d+", value.strip()):
        high, low = (int(part) for part in value.strip().split("."))
        if high > 65535 or low > 65535:
            raise ValidationError(f"{field}: asdot {value!r} needs both parts in 0–65535")
        number = (high << 16) + low
    else:
        raise ValidationError(f"{field}: {value!r} is not an AS number (an integer 0–4294967295 or asdot 'A.B')")
    if not 0 <= number <= 0xFFFFFFFF:
        raise ValidationError(f"{field}: {number} is outside the AS number range 0–4294967295")
    return number


def validate_ip(value: Any, field: str, version: int | None = None) -> str:
    """A plain IPv4 or IPv6 address (no prefix, no port); returns its canonical text."""
    try:
        address = ipaddress.ip_address(str(value).strip()) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is not None and getattr(address, "scope_id", None):
        address = None  # 'fe80::1%eth0': Go's net.ParseIP (Calico's 'ip' rule) takes no zone
    if address is None or (version and address.version != version):
        want = {4: "an IPv4", 6: "an IPv6"}.get(version or 0, "an IPv4 or IPv6")
        raise ValidationError(f"{field}: {value!r} is not {want} address")
    return str(address)


def validate_ip_port(value: Any, field: str) -> str:
    """peerIP: an address, or '<IPv4>:<port>' / '[<IPv6>]:<port>' with a port 1–65535."""
    text = str(value).strip() if isinstance(value, str) else ""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)", text) or re.fullmatch(r"(\d+\.\d+\.\d+\.\d+):(\d+)", text)
    if match:
        address = validate_ip(match.group(1), field)
        port = int(match.group(2))
        if not 1 <= port <= 65535:
            raise ValidationError(f"{field}: port {port} is outside 1–65535")
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return validate_ip(value, field)


def validate_cluster_id(value: Any, field: str = "routeReflectorClusterID") -> str:
    """A route reflector cluster ID: a dotted IPv4 string such as 224.0.0.1."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", value.strip()):
        raise ValidationError(f"{field}: {value!r} is not a cluster ID (a dotted IPv4 value such as 224.0.0.1)")
    return validate_ip(value.strip(), field, version=4)


_CIDR_TEXT = re.compile(r"[0-9A-Fa-f:.]+/\d{1,3}")
_CIDR_OR_IP_TEXT = re.compile(r"[0-9A-Fa-f:.]+(/\d{1,3})?")


def validate_cidr(value: Any, field: str, version: int | None = None, strict: bool = True) -> str:
    """A network in CIDR form; ``strict`` demands host bits be zero (Calico's 'net' rule).

    Strict CIDRs need an explicit '/<bits>' (Go's ParseCIDR); without ``strict`` a bare address is a
    host network (Calico's 'cidr' rule, ParseCIDROrIP). Netmask forms and IPv6 zones are no CIDRs.
    """
    pattern = _CIDR_TEXT if strict else _CIDR_OR_IP_TEXT
    if isinstance(value, str) and not pattern.fullmatch(value.strip()):
        raise ValidationError(f"{field}: {value!r}: not a CIDR (address/prefix-length)")
    try:
        network = ipaddress.ip_network(str(value).strip(), strict=strict) if isinstance(value, str) else None
    except ValueError as exc:
        reason = "host bits are set; give the network address" if "host bits" in str(exc) else "not a CIDR"
        raise ValidationError(f"{field}: {value!r}: {reason}") from None
    if network is None or (version and network.version != version):
        raise ValidationError(f"{field}: {value!r} is not an IPv{version or '4/IPv6'} CIDR")
    return str(network)


_DOTTED_QUAD = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?")


def _plain_ipv4(text: str) -> bool:
    """Fast path for the common case (a node's IPv4 with an optional prefix): no ipaddress objects."""
    match = _DOTTED_QUAD.fullmatch(text)
    if not match:
        return False
    octets = match.groups()[:4]
    prefix = match.group(5)
    return (all(int(o) <= 255 and (o == "0" or not o.startswith("0")) for o in octets)
            and (prefix is None or int(prefix) <= 32))


def validate_cidr_or_ip(value: Any, field: str, version: int) -> str:
    """Node addresses: an address or an address/prefix (host bits allowed, Calico's 'cidrv4')."""
    if version == 4 and isinstance(value, str) and _plain_ipv4(value.strip()):
        return value.strip()
    try:
        text = str(value).strip() if isinstance(value, str) else ""
        interface = ipaddress.ip_interface(text) if _CIDR_OR_IP_TEXT.fullmatch(text) else None
    except ValueError:
        interface = None
    if interface is None or interface.version != version:
        raise ValidationError(f"{field}: {value!r} is not an IPv{version} address or address/prefix")
    return str(value).strip()


# ---------------------------------------------------------------------------------------------
# Selectors: Calico's grammar, parsed into a tree that can also be evaluated against labels
# ---------------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<op>&&|\|\||==|!=|!|\(|\)|\{|\}|,)
    | (?P<str>"[^"]*"|'[^']*')
    | (?P<fn>(?:has|all|global)\s*\()
    | (?P<kw>not\s+in\b|in\b|contains\b|starts\s+with\b|ends\s+with\b)
    | (?P<label>[a-zA-Z0-9_./-]{1,512})
    )""", re.VERBOSE)


def _tokenize(text: str, field: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            where = len(text) - len(text[pos:].lstrip())  # the offending character, not the blank before it
            raise ValidationError(f"{field}: selector {text!r} has an unexpected character {text[where]!r} "
                                  f"at position {where}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "fn":
            value = value.replace(" ", "").rstrip("(")
        elif kind == "kw":
            value = " ".join(value.split())
        elif kind == "str":
            value = value[1:-1]
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        self.tokens = _tokenize(text, field)
        self.pos = 0

    def fail(self, what: str):
        raise ValidationError(f"{self.field}: selector {self.text!r}: {what}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            self.fail(f"expected {value or kind} at token {self.pos + 1}")
        self.pos += 1
        return token[1]

    def parse(self):
        if not self.tokens:
            return ("all",)
        tree = self.parse_or()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()[1]!r} at token {self.pos + 1}")
        return tree

    def parse_or(self):
        node = self.parse_and()
        while self.peek() == ("op", "||"):
            self.pos += 1
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_unary()
        while self.peek() == ("op", "&&"):
            self.pos += 1
            node = ("and", node, self.parse_unary())
        return node

    def parse_unary(self):
        token = self.peek()
        if token is None:
            self.fail("ends too early")
        if token == ("op", "!"):
            self.pos += 1
            return ("not", self.parse_unary())
        if token == ("op", "("):
            self.pos += 1
            node = self.parse_or()
            self.take("op", ")")
            return node
        if token[0] == "fn":
            self.pos += 1
            if token[1] == "has":
                label = self.take("label")
                self.take("op", ")")
                return ("has", label)
            self.take("op", ")")
            return (token[1],)
        if token[0] == "label":
            return self.parse_comparison()
        return self.fail(f"unexpected {token[1]!r} at token {self.pos + 1}")

    def parse_comparison(self):
        label = self.take("label")
        token = self.peek()
        if token in (("op", "=="), ("op", "!=")):
            self.pos += 1
            return (token[1], label, self.take("str"))
        if token is not None and token[0] == "kw":
            self.pos += 1
            if token[1] in ("in", "not in"):
                self.take("op", "{")
                values = []
                if self.peek() != ("op", "}"):
                    values.append(self.take("str"))
                    while self.peek() == ("op", ","):
                        self.pos += 1
                        values.append(self.take("str"))
                self.take("op", "}")
                return (token[1], label, frozenset(values))
            return (token[1], label, self.take("str"))
        return self.fail(f"label {label!r} must be followed by ==, !=, in, not in, contains, starts with or ends with")


def parse_selector(text: Any, field: str = "selector"):
    """Parse a Calico selector; raise ValidationError with the position of the problem."""
    if not isinstance(text, str):
        raise ValidationError(f"{field}: a selector must be a string")
    return _Parser(text, field).parse()


def selector_matches(tree, labels: dict[str, str]) -> bool:
    """Evaluate a parsed selector against a label set."""
    op = tree[0]
    if op in ("all", "global"):
        return True
    if op == "has":
        return tree[1] in labels
    if op == "not":
        return not selector_matches(tree[1], labels)
    if op == "and":
        return selector_matches(tree[1], labels) and selector_matches(tree[2], labels)
    if op == "or":
        return selector_matches(tree[1], labels) or selector_matches(tree[2], labels)
    value = labels.get(tree[1])
    if op == "==":
        return value == tree[2]
    if op == "!=":
        return value != tree[2]
    if op == "in":
        return value in tree[2]
    if op == "not in":
        return value not in tree[2]
    if value is None:
        return False
    return {"contains": tree[2] in value, "starts with": value.startswith(tree[2]),
            "ends with": value.endswith(tree[2])}[op]


def _uses_global(tree) -> bool:
    """Whether a parsed selector calls global() (not merely has the text in a quoted value)."""
    if tree[0] == "global":
        return True
    return tree[0] in ("not", "and", "or") and any(_uses_global(child) for child in tree[1:])


def validate_selector(text: Any, field: str) -> str:
    parse_selector(text, field)
    return text


# ---------------------------------------------------------------------------------------------
# Per-kind spec rules
# ---------------------------------------------------------------------------------------------
def _spec(resource: dict, kind: str) -> dict:
    spec = resource.get("spec", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValidationError(f"{kind}.spec: must be a mapping")
    return spec


def _bool(spec: dict, key: str, field: str) -> None:
    if key in spec and not isinstance(spec[key], bool):
        raise ValidationError(f"{field}.{key}: must be true or false, got {spec[key]!r}")


def _choice(spec: dict, key: str, choices: tuple[str, ...], field: str) -> None:
    if key in spec and spec[key] not in choices:
        raise ValidationError(f"{field}.{key}: {spec[key]!r} is not one of {', '.join(choices)}")


def _as_number_field(spec: dict, key: str, field: str) -> None:
    if key in spec and spec[key] is not None:
        spec[key] = parse_as_number(spec[key], f"{field}.{key}")


LOG_LEVELS = ("Trace", "Debug", "Info", "Warning", "Error", "Fatal")
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
    _choice(spec, "logSeverityScreen", LOG_LEVELS, field)
    _bool(spec, "nodeToNodeMeshEnabled", field)
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
        raise ValidationError(f"{field}.asNumber: must be unset (0) when peerSelector is set "
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
ENCAP_MODES = ("Never", "Always", "CrossSubnet")


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
    _choice(spec, "ipipMode", ENCAP_MODES, field)
    _choice(spec, "vxlanMode", ENCAP_MODES, field)
    if not v4 and spec["ipipMode"] != "Never":
        raise ValidationError(f"{field}.ipipMode: IPIP is not supported on an IPv6 pool")
    if spec["ipipMode"] != "Never" and spec["vxlanMode"] != "Never":
        raise ValidationError(f"{field}: ipipMode and vxlanMode may not both be enabled")
    _bool(spec, "natOutgoing", field)
    _bool(spec, "disabled", field)
    if _uses_global(parse_selector(spec["nodeSelector"], f"{field}.nodeSelector")):
        raise ValidationError(f"{field}.nodeSelector: global() is not allowed here")
    for deprecated in ("ipip", "nat-outgoing"):
        if deprecated in spec:
            raise ValidationError(f"{field}.{deprecated}: is a deprecated v1 field; use ipipMode / natOutgoing")


def _validate_singleton(resource: dict) -> None:
    kind, name = resource["kind"], resource["metadata"]["name"]
    if kind == "ClusterInformation" and name != "default":
        raise ValidationError("ClusterInformation.metadata.name: the only allowed name is 'default'")
    if kind == "FelixConfiguration" and name != "default" and not name.startswith("node."):
        raise ValidationError(f"FelixConfiguration.metadata.name: {name!r} must be 'default' or 'node.<nodename>'")
    spec = _spec(resource, kind)
    if kind == "ClusterInformation":
        _bool(spec, "datastoreReady", f"{kind}.spec")


def _validate_hostendpoint(resource: dict) -> None:
    field = "HostEndpoint.spec"
    spec = _spec(resource, "HostEndpoint")
    validate_name(spec.get("node"), f"{field}.node")
    ips = spec.get("expectedIPs") or []
    if not spec.get("interfaceName") and not ips:
        raise ValidationError(f"{field}: one of interfaceName or expectedIPs is required")
    for index, ip in enumerate(ips):
        validate_ip(ip, f"{field}.expectedIPs[{index}]")


def workload_endpoint_name(node: str, orchestrator: str, workload: str, endpoint: str) -> str:
    """libcalico-go's computed WorkloadEndpoint name (reference §1.3)."""
    def escape(segment: str) -> str:
        return segment.replace("-", "--")

    if orchestrator == "k8s":
        middle = f"k8s-{escape(workload)}"
    elif orchestrator == "cni":
        middle = f"cni-{escape(workload)}"
    elif orchestrator == "libnetwork":
        middle = "libnetwork-libnetwork"
    else:
        middle = f"{escape(orchestrator)}-{escape(workload)}"
    return f"{escape(node)}-{middle}-{escape(endpoint)}"


def _computed_wep_name(spec: dict) -> str | None:
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


RULE_ACTIONS = ("Allow", "Deny", "Log", "Pass")


def _validate_rules(rules: Any, field: str) -> None:
    if rules is None:
        return
    if not isinstance(rules, list):
        raise ValidationError(f"{field}: must be a list of rules")
    for index, rule in enumerate(rules):
        where = f"{field}[{index}]"
        if not isinstance(rule, dict):
            raise ValidationError(f"{where}: must be a mapping")
        if rule.get("action") not in RULE_ACTIONS:
            raise ValidationError(f"{where}.action: {rule.get('action')!r} is not one of {', '.join(RULE_ACTIONS)}")
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
    if "order" in spec and (isinstance(spec["order"], bool) or not isinstance(spec["order"], (int, float))):
        raise ValidationError(f"{field}.order: must be a number")
    for index, kind_of in enumerate(spec.get("types") or []):
        if kind_of not in ("Ingress", "Egress"):
            raise ValidationError(f"{field}.types[{index}]: {kind_of!r} is not Ingress or Egress")
    _validate_rules(spec.get("ingress"), f"{field}.ingress")
    _validate_rules(spec.get("egress"), f"{field}.egress")


def _validate_profile(resource: dict) -> None:
    spec = _spec(resource, "Profile")
    validate_labels(spec.get("labelsToApply"), "Profile.spec.labelsToApply")
    _validate_rules(spec.get("ingress"), "Profile.spec.ingress")
    _validate_rules(spec.get("egress"), "Profile.spec.egress")


_KIND_RULES = {
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

_META_FIELDS = ("name", "namespace", "uid", "creationTimestamp", "labels", "annotations")


def storage_name(kind: str, name: str) -> str:
    """The stored name: GNP/NP get the 'default.' tier prefix (except knp.*), as Calico v3.0–3.28 do."""
    if kind in POLICY_KINDS and not name.startswith(DEFAULT_TIER_PREFIX) and not name.startswith("knp."):
        return DEFAULT_TIER_PREFIX + name
    return name


def validate_identity(resource: Any, _owned: bool = False) -> dict:
    """Check what names an object (kind, apiVersion, name, namespace) and its labels/annotations.

    Returns a normalised copy; the spec is copied unchecked. Enough to compute the key, so a merge
    can read what is stored before the whole object is judged by :func:`validate`.
    """
    if not isinstance(resource, dict):
        raise ValidationError("resource: must be a mapping with kind, metadata and spec")
    kind = resource_kind(resource.get("kind"))
    api_version = resource.get("apiVersion", API_VERSION)
    if api_version != API_VERSION:
        raise ValidationError(f"{kind.kind}.apiVersion: {api_version!r} must be {API_VERSION}")
    metadata = resource.get("metadata")
    if not isinstance(metadata, dict):
        raise ValidationError(f"{kind.kind}.metadata: is required (with at least a name)")
    unknown = set(resource) - {"kind", "apiVersion", "metadata", "spec", "status"}
    if unknown:
        raise ValidationError(f"{kind.kind}: unknown top-level field(s) {', '.join(sorted(unknown))}")
    spec = resource.get("spec") or {}
    if not _owned:  # a caller's object is never changed; the store passes bodies it built itself
        spec = copy.deepcopy(spec)
    out = {"kind": kind.kind, "apiVersion": API_VERSION, "metadata": {}, "spec": spec}
    meta = out["metadata"]
    name = metadata.get("name")
    if kind.kind == "WorkloadEndpoint" and not name and isinstance(spec, dict):
        name = _computed_wep_name(spec)  # libcalico-go fills an empty WorkloadEndpoint name in (§1.3)
    meta["name"] = storage_name(kind.kind, validate_name(name, f"{kind.kind}.metadata.name"))
    if kind.namespaced:
        meta["namespace"] = validate_label_name(metadata.get("namespace"), f"{kind.kind}.metadata.namespace")
    elif metadata.get("namespace"):
        raise ValidationError(f"{kind.kind}.metadata.namespace: {kind.kind} is cluster-scoped and takes no namespace")
    # resourceVersion is accepted on input (round-tripped from calico_resource_info) but never stored.
    labels = validate_labels(metadata.get("labels"), f"{kind.kind}.metadata.labels", allow_removal=True)
    annotations = validate_annotations(metadata.get("annotations"), f"{kind.kind}.metadata.annotations")
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    for key, value in metadata.items():  # uid, creationTimestamp and the rest of a stored object's metadata
        if key not in meta and key not in ("labels", "annotations", "resourceVersion", "selfLink"):
            meta[key] = copy.deepcopy(value)
    if not isinstance(spec, dict):
        raise ValidationError(f"{kind.kind}.spec: must be a mapping")
    return out


def validate(resource: Any, _owned: bool = False) -> dict:
    """Check one whole resource and return a normalised copy ready to store (defaults filled in)."""
    out = validate_identity(resource, _owned)
    _KIND_RULES[out["kind"]](out)
    if not out["metadata"].get("labels"):
        out["metadata"].pop("labels", None)
    return out


IMMUTABLE_FIELDS = {"IPPool": ("cidr", "blockSize")}


def check_immutable(stored: dict | None, desired: dict) -> None:
    """Refuse an update that changes a field Calico treats as immutable (e.g. an IPPool's cidr)."""
    if stored is None:
        return
    for name in IMMUTABLE_FIELDS.get(desired["kind"], ()):
        before, after = (stored.get("spec") or {}).get(name), (desired.get("spec") or {}).get(name)
        if before is not None and before != after:
            raise ValidationError(f"{desired['kind']}.spec.{name}: is immutable ({before!r} is stored, "
                                  f"{after!r} was asked for); create a new {desired['kind']} instead")


def key_for(kind: str, name: str, namespace: str | None = None) -> str:
    """The etcd key of a resource (the name as stored, see :func:`storage_name`)."""
    info = resource_kind(kind)
    if info.namespaced and not namespace:
        raise ValidationError(f"{kind}.metadata.namespace: is required for a namespaced kind")
    return f"{info.prefix(namespace)}{storage_name(kind, name)}"


def key_of(resource: dict) -> str:
    meta = resource["metadata"]
    return key_for(resource["kind"], meta["name"], meta.get("namespace"))


def serialize(resource: dict) -> bytes:
    """The stored JSON: kind, apiVersion, metadata (ObjectMeta field order), spec; never resourceVersion."""
    meta = resource.get("metadata", {})
    ordered_meta = {k: meta[k] for k in _META_FIELDS if k in meta and meta[k] not in (None, {}, "")}
    for key, value in meta.items():
        if key not in ordered_meta and key not in ("resourceVersion", "selfLink") and value not in (None, {}, ""):
            ordered_meta[key] = value
    body = {"kind": resource["kind"], "apiVersion": API_VERSION, "metadata": ordered_meta,
            "spec": resource.get("spec", {})}
    if resource.get("status"):
        body["status"] = resource["status"]
    return json.dumps(body, separators=(",", ":"), sort_keys=False).encode("utf-8")


def deserialize(value: bytes, mod_revision: int | None = None) -> dict:
    """A stored object, with resourceVersion reported from the etcd mod_revision."""
    obj = json.loads(value)
    if mod_revision is not None:
        obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
    return obj


def load_resources(definition: Any = None, src: str | None = None) -> list[dict]:
    """Resources from a module's ``definition`` (one or a list) or a YAML/JSON file ``src``."""
    if src:
        import yaml  # PyYAML ships with ansible-core

        try:
            with open(src, encoding="utf-8") as handle:
                documents = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
        except (OSError, yaml.YAMLError) as exc:
            raise ValidationError(f"src: cannot read {src}: {exc}") from None
        definition = documents
    if isinstance(definition, dict):
        definition = definition.get("items", [definition]) if definition.get("kind") == "List" else [definition]
    if not isinstance(definition, list) or not definition:
        raise ValidationError("definition: give one resource (a mapping) or a non-empty list of them")
    items: list[dict] = []
    for entry in definition:
        if isinstance(entry, dict) and entry.get("kind") == "List":
            items.extend(entry.get("items") or [])
        else:
            items.append(entry)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationError(f"definition[{index}]: must be a mapping with kind, metadata and spec")
    return items
