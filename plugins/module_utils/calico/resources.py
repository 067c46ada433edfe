# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico v3 resource kinds: etcd key paths, serialisation, and validation of whole objects.

Rules follow libcalico-go (see shared/reference/calico-datastore.md §1–2): keys
``/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>``, the stored value is the
whole object with ``kind`` and ``apiVersion``; names are DNS-1123; AS numbers are uint32 (plain or
asdot); cluster IDs are dotted IPv4; selectors parse with Calico's grammar.
Every failure raises :class:`ValidationError` naming the field and the rule, before any write.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import (
    DEFAULT_TIER_PREFIX,
    ValidationError,
    validate_annotations,
    validate_label_name,
    validate_labels,
    validate_name,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.schema import check_resource, check_status
from ansible_collections.kubescale.calico.plugins.module_utils.calico.validate import KIND_RULES, computed_wep_name

API_VERSION = "projectcalico.org/v3"
KEY_ROOT = "/calico/resources/v3/projectcalico.org/"
MANAGED_BY_LABEL = "kubescale.io/managed-by"
MANAGED_BY_VALUE = "kubescale.calico"


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


def resource_kind(kind: Any) -> ResourceKind:
    if kind not in KINDS:
        raise ValidationError(f"kind: {kind!r} is not a supported Calico kind (one of {', '.join(sorted(KINDS))})")
    return KINDS[kind]


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
    check_status(kind.kind, resource.get("status"))
    spec = resource.get("spec") or {}
    if not _owned:  # a caller's object is never changed; the store passes bodies it built itself
        spec = copy.deepcopy(spec)
    out = {"kind": kind.kind, "apiVersion": API_VERSION, "metadata": {}, "spec": spec}
    meta = out["metadata"]
    name = metadata.get("name")
    if kind.kind == "WorkloadEndpoint" and not name and isinstance(spec, dict):
        name = computed_wep_name(spec)  # libcalico-go fills an empty WorkloadEndpoint name in (§1.3)
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
    """Check one whole resource and return a normalised copy ready to store (defaults filled in).

    First its shape (schema.py: known fields, JSON types, enumerations), then the kind's value rules.
    """
    out = validate_identity(resource, _owned)
    check_resource(out)
    KIND_RULES[out["kind"]](out)
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
