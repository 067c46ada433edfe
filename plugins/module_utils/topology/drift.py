# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift between the inventory, the topology plan and what the Calico datastore holds (read-only).

Three findings, each a list and a row of a short table:
  * Nodes in the datastore that are not in the inventory (they may be autoscaled, or left behind);
  * reflectors in the datastore (Nodes with ``spec.bgp.routeReflectorClusterID``) that the plan does
    not have, or has with another cluster ID;
  * BGPPeers nobody manages (no ``kubescale.io/managed-by`` label).
"""

from __future__ import annotations

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError, validate_name
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import MANAGED_BY_LABEL
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore

SHOWN = 3  # names per table row; the full lists are in the result


class DriftError(ValueError):
    """Input the drift report refuses (the message names the option)."""


def check_input(inventory_nodes: list, plan_reflectors: dict | None) -> tuple[set[str], dict[str, str]]:
    """Validate the module input before etcd is contacted."""
    names = set()
    for index, name in enumerate(inventory_nodes):
        try:
            names.add(validate_name(str(name), f"inventory_nodes[{index}]"))
        except ValidationError as exc:
            raise DriftError(str(exc)) from None
    reflectors = {str(k): str(v) for k, v in (plan_reflectors or {}).items()}
    return names, reflectors


def _cluster_id(node: dict) -> str | None:
    return ((node.get("spec") or {}).get("bgp") or {}).get("routeReflectorClusterID")


def _row(title: str, items: list[str]) -> list[str]:
    shown = ", ".join(items[:SHOWN]) + (f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else "")
    return [title, str(len(items)), shown or "-"]


def _table(rows: list[list[str]]) -> list[str]:
    header = ["drift", "count", "first"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in [header, *rows]]


def drift_report(store: CalicoStore, inventory_nodes: set[str], plan_reflectors: dict[str, str]) -> dict:
    """The module result: the three findings, their counts and the table."""
    nodes = store.list("Node", page_size=1000)
    peers = store.list("BGPPeer", page_size=1000)
    not_in_inventory = sorted(n["metadata"]["name"] for n in nodes if n["metadata"]["name"] not in inventory_nodes)
    reflectors = []
    for node in nodes:
        name, cid = node["metadata"]["name"], _cluster_id(node)
        if cid and plan_reflectors.get(name) != cid:
            planned = plan_reflectors.get(name)
            reflectors.append({"name": name, "cluster_id": cid, "planned_cluster_id": planned})
    reflectors.sort(key=lambda r: r["name"])
    unmanaged = sorted(p["metadata"]["name"] for p in peers
                       if not ((p["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL)))
    rows = [
        _row("Nodes not in the inventory", not_in_inventory),
        _row("reflectors not in the plan", [f"{r['name']} ({r['cluster_id']}"
                                            + (f", plan: {r['planned_cluster_id']})" if r["planned_cluster_id"]
                                               else ")") for r in reflectors]),
        _row("BGPPeers nobody manages", unmanaged),
    ]
    return {
        "changed": False,
        "nodes_not_in_inventory": not_in_inventory,
        "reflectors_not_in_plan": reflectors,
        "unmanaged_peers": unmanaged,
        "counts": {"nodes_not_in_inventory": len(not_in_inventory), "reflectors_not_in_plan": len(reflectors),
                   "unmanaged_peers": len(unmanaged), "nodes": len(nodes), "peers": len(peers)},
        "drift": bool(not_in_inventory or reflectors or unmanaged),
        "table": _table(rows),
    }
