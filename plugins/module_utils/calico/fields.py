# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico's field rules, one place each: names, labels, AS numbers, IPs, cluster IDs, CIDRs.

The planner, the migration and the resource validators all use these. Every failure raises
:class:`ValidationError` naming the field and the rule, before anything is written.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

DEFAULT_TIER_PREFIX = "default."  # v3.0–v3.28 store GNP/NP names with it (reference §1.3)


class ValidationError(ValueError):
    """A resource or option broke a rule; the message names the field and the rule."""


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
NAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
LABEL_RE = re.compile(rf"^{_LABEL}$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MAX_ANNOTATIONS_BYTES = 256 * 1024


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


# Label keys and values already found valid: thousands of Nodes carry the same few (a pure check of
# a string, so remembering a pass changes no outcome); bounded so that it cannot grow without end.
_VALID_LABEL_KEYS: set[str] = set()
_VALID_LABEL_VALUES: set[str] = set()
_VALID_LABEL_MAX = 4096


def _remember(known: set[str], text: str) -> None:
    if len(known) >= _VALID_LABEL_MAX:
        known.clear()
    known.add(text)


def validate_labels(labels: Any, field: str = "metadata.labels", allow_removal: bool = False) -> dict[str, str]:
    """Label keys and values; with ``allow_removal`` a None value means 'remove this label'."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ValidationError(f"{field}: must be a mapping of label keys to string values")
    for key, value in labels.items():
        if not isinstance(key, str) or key not in _VALID_LABEL_KEYS:
            validate_qualified_key(key, field)
            _remember(_VALID_LABEL_KEYS, key)
        if value is None and allow_removal:
            continue
        if isinstance(value, str) and value in _VALID_LABEL_VALUES:
            continue
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE_RE.match(value):
            raise ValidationError(f"{field}.{key}: value {value!r} is not a valid label value "
                                  "(≤63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric)")
        _remember(_VALID_LABEL_VALUES, value)
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


_ASPLAIN = re.compile(r"[0-9]+")  # ASCII digits only: \d and int() also take e.g. Arabic-Indic digits
_ASDOT = re.compile(r"([0-9]+)\.([0-9]+)")


def parse_as_number(value: Any, field: str = "asNumber") -> int:
    """A BGP AS number: 1–4294967295, as an integer, a decimal string or asdot 'A.B' (ASCII digits).

    0 is reserved (RFC 7607) and refused: in Calico an AS left out means "use the default".
    """
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif text is not None and _ASPLAIN.fullmatch(text):
        number = int(text)
    elif text is not None and (dotted := _ASDOT.fullmatch(text)):
        high, low = int(dotted.group(1)), int(dotted.group(2))
        if high > 65535 or low > 65535:
            raise ValidationError(f"{field}: asdot {value!r} needs both parts in 0–65535")
        number = (high << 16) + low
    else:
        raise ValidationError(f"{field}: {value!r} is not an AS number "
                              "(an integer 1–4294967295 or asdot 'A.B', in ASCII digits)")
    if number == 0:
        raise ValidationError(f"{field}: AS number 0 is reserved (RFC 7607); leave the field unset for the default")
    if not 1 <= number <= 0xFFFFFFFF:
        raise ValidationError(f"{field}: {number} is outside the AS number range 1–4294967295")
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
    match = (re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:([0-9]+)", text)
             or re.fullmatch(r"([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):([0-9]+)", text))
    if match:
        address = validate_ip(match.group(1), field)
        port = int(match.group(2))
        if not 1 <= port <= 65535:
            raise ValidationError(f"{field}: port {port} is outside 1–65535")
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return validate_ip(value, field)


def validate_cluster_id(value: Any, field: str = "routeReflectorClusterID") -> str:
    """A route reflector cluster ID: a dotted IPv4 string such as 224.0.0.1."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", value.strip()):
        raise ValidationError(f"{field}: {value!r} is not a cluster ID (a dotted IPv4 value such as 224.0.0.1)")
    return validate_ip(value.strip(), field, version=4)


_CIDR_TEXT = re.compile(r"[0-9A-Fa-f:.]+/[0-9]{1,3}")
_CIDR_OR_IP_TEXT = re.compile(r"[0-9A-Fa-f:.]+(/[0-9]{1,3})?")


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


_DOTTED_QUAD = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?:/([0-9]{1,2}))?")


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


def workload_endpoint_name(node: str, orchestrator: str, workload: str, endpoint: str) -> str:
    """libcalico-go's computed WorkloadEndpoint name ``<node>-<orch>-<workload>-<endpoint>`` (reference §1.3).

    ``workload`` is the pod for k8s and the container ID for cni; libnetwork ignores it. Each segment
    has its dashes doubled, so a segment may not start or end with '-' (the name would be ambiguous).
    """
    middle = "libnetwork" if orchestrator == "libnetwork" else workload
    for what, segment in (("node", node), ("orchestrator", orchestrator), ("workload", middle), ("endpoint", endpoint)):
        if not segment:
            raise ValidationError(f"{what}: is required for a workload endpoint name")
        if segment.startswith("-") or segment.endswith("-"):
            raise ValidationError(f"{what} '{segment}' may not start or end with '-'")
    return "-".join(segment.replace("-", "--") for segment in (node, orchestrator, middle, endpoint))
