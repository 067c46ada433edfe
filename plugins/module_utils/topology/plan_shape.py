# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shape of a BGP topology plan, checked before anything reads or writes the datastore.

A plan normally comes from the ``bgp_topology_plan`` filter, but ``bgp_topology`` takes any dict:
a hand-edited or truncated plan must be refused with the path of what is wrong ("plan.resources.
nodes[2].spec.bgp: must be a mapping, got 'x'"), never with a Python exception's text. Only what
applying needs is checked here; the apply then judges every object it may write, as it would be
stored, before its first write (topology/apply.py), so a bad peer is not found after the Nodes step.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import KINDS as REFLECTOR_KINDS

MODES = ("mesh", "route_reflector")
RESOURCE_KINDS = {"bgpconfigurations": "BGPConfiguration", "nodes": "Node", "bgppeers": "BGPPeer"}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mapping(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise ValidationError(f"{path}: must be a mapping, got {_show(value)}")
    return value


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise ValidationError(f"{path}: must be a list, got {_show(value)}")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{path}: must be a non-empty string, got {_show(value)}")
    return value


def _required(mapping: dict, key: str, path: str) -> Any:
    if key not in mapping:
        raise ValidationError(f"{path}.{key}: is required")
    return mapping[key]


def _check_object(item: Any, kind: str, path: str) -> None:
    """One planned Calico object: kind, apiVersion, metadata (name, labels), spec; Nodes a spec.bgp."""
    obj = _mapping(item, path)
    if _required(obj, "kind", path) != kind:
        raise ValidationError(f"{path}.kind: must be {kind}, got {_show(obj['kind'])}")
    _text(_required(obj, "apiVersion", path), f"{path}.apiVersion")
    meta = _mapping(_required(obj, "metadata", path), f"{path}.metadata")
    _text(_required(meta, "name", f"{path}.metadata"), f"{path}.metadata.name")
    _mapping(_required(meta, "labels", f"{path}.metadata"), f"{path}.metadata.labels")
    spec = _mapping(_required(obj, "spec", path), f"{path}.spec")
    if kind == "Node":
        bgp = _mapping(_required(spec, "bgp", f"{path}.spec"), f"{path}.spec.bgp")
        _text(_required(bgp, "ipv4Address", f"{path}.spec.bgp"), f"{path}.spec.bgp.ipv4Address")


def validate_plan_shape(plan: Any, path: str = "plan") -> None:
    """Raise ValidationError naming the first part of ``plan`` that has the wrong shape."""
    _mapping(plan, path)
    mode = _required(plan, "mode", path)
    if mode not in MODES:
        raise ValidationError(f"{path}.mode: {_show(mode)} is not one of {', '.join(MODES)}")
    if "reflector_kind" in plan and plan["reflector_kind"] not in REFLECTOR_KINDS:
        raise ValidationError(f"{path}.reflector_kind: {_show(plan['reflector_kind'])} is not one of "
                              f"{', '.join(REFLECTOR_KINDS)}")
    for index, node in enumerate(_list(_required(plan, "nodes", path), f"{path}.nodes")):
        _mapping(node, f"{path}.nodes[{index}]")
    for index, reflector in enumerate(_list(_required(plan, "reflectors", path), f"{path}.reflectors")):
        where = f"{path}.reflectors[{index}]"
        _mapping(reflector, where)
        _text(_required(reflector, "name", where), f"{where}.name")
        _text(_required(reflector, "cluster_id", where), f"{where}.cluster_id")
    resources = _mapping(_required(plan, "resources", path), f"{path}.resources")
    for key in resources:
        if key not in RESOURCE_KINDS:
            raise ValidationError(f"{path}.resources.{key}: unknown; a plan holds only "
                                  f"{', '.join(RESOURCE_KINDS)}")
    for key, kind in RESOURCE_KINDS.items():
        where = f"{path}.resources.{key}"
        for index, item in enumerate(_list(_required(resources, key, f"{path}.resources"), where)):
            _check_object(item, kind, f"{where}[{index}]")
