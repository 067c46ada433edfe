# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply a BGP topology plan (from ``topology.plan_topology``) to the Calico v3 datastore, safely ordered.

Ownership: in Node objects this code owns the ``kubescale.io/`` labels the planner writes and
``spec.bgp.ipv4Address`` / ``asNumber`` / ``routeReflectorClusterID``; everything else (labels of
others, orchRefs, tunnel addresses, calico-node's own fields) is kept. It owns the BGPPeers labelled
``kubescale.io/managed-by=kubescale.calico`` (and prunes only those), and in BGPConfiguration
``default`` the fields ``nodeToNodeMeshEnabled`` and ``asNumber``.

Order, so that no node is left without routes:
  to route reflectors: Nodes (reflector cluster IDs, labels) -> BGPPeers -> mesh off -> prune old peers
  to full mesh:        mesh on -> Nodes (cluster IDs and labels removed) -> prune reflector peers
(Nodes before the prune: a node that still has a cluster ID ignores the mesh setting, so reflectors
rejoin the mesh before their peers go, and clients already have their mesh sessions.)
``phase='prepare'`` stops before the subtractive steps (mesh off / peer and field removal) so that a
playbook can check the BGP sessions in between; ``phase='finish'`` runs everything (idempotently).
"""

from __future__ import annotations

import gc
import ipaddress

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    key_for,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import (
    ApplyResult,
    CalicoStore,
    comparable,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    LABEL_GROUP,
    LABEL_RACK,
    LABEL_RR,
    LABEL_RR_CLIENT_OF,
    LABEL_RR_CLUSTER,
    LABEL_ZONE,
)

OWNED_NODE_LABELS = (LABEL_GROUP, LABEL_RACK, LABEL_ZONE, LABEL_RR, LABEL_RR_CLUSTER, LABEL_RR_CLIENT_OF)
OWNED_BGP_FIELDS = ("asNumber", "routeReflectorClusterID")
PHASES = ("all", "prepare", "finish")
PLAN_KEYS = ("mode", "resources", "nodes", "reflectors")


class TopologyApplyError(ValueError):
    """A plan that cannot be applied; the message names the field and the rule."""


def _check_plan(plan) -> None:
    if not isinstance(plan, dict) or any(k not in plan for k in PLAN_KEYS):
        raise TopologyApplyError(
            f"plan: must be the dict returned by the bgp_topology_plan filter (with {', '.join(PLAN_KEYS)})"
        )
    if plan["mode"] not in ("mesh", "route_reflector"):
        raise TopologyApplyError(f"plan.mode: {plan['mode']!r} must be mesh or route_reflector")
    resources = plan["resources"]
    for kind in ("bgpconfigurations", "nodes", "bgppeers"):
        if not isinstance(resources.get(kind), list):
            raise TopologyApplyError(f"plan.resources.{kind}: must be a list of Calico objects")
    for kind, items in resources.items():
        for index, item in enumerate(items):
            labels = (item.get("metadata") or {}).get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                raise TopologyApplyError(
                    f"plan.resources.{kind}[{index}].metadata.labels: must carry {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
                )


def _same_ip(stored: str | None, wanted: str) -> bool:
    if not isinstance(stored, str):
        return False
    if stored.split("/", 1)[0] == wanted.split("/", 1)[0]:
        return True
    try:
        return ipaddress.ip_interface(stored).ip == ipaddress.ip_interface(wanted).ip
    except ValueError:
        return False


def _node_update(current: dict | None, planned: dict) -> dict:
    """The merge body for one Node: owned fields set or removed (None), the rest left alone."""
    if current is None:  # nothing to remove from an object that does not exist yet
        return planned
    labels = dict.fromkeys(OWNED_NODE_LABELS)
    labels.update(planned["metadata"].get("labels") or {})
    bgp = dict.fromkeys(OWNED_BGP_FIELDS)
    bgp.update((planned.get("spec") or {}).get("bgp") or {})
    stored_bgp = (current.get("spec") or {}).get("bgp") or {}
    if _same_ip(stored_bgp.get("ipv4Address"), bgp["ipv4Address"]):
        bgp["ipv4Address"] = stored_bgp["ipv4Address"]  # keep the prefix length calico-node detected
    return {
        "kind": planned["kind"],
        "apiVersion": planned["apiVersion"],
        "metadata": {"name": planned["metadata"]["name"], "labels": labels},
        "spec": {"bgp": bgp},
    }


def _node_is_current(current: dict, planned: dict) -> bool:
    """Fast no-op check for one Node: every owned label and BGP field already as planned."""
    have = current["metadata"].get("labels") or {}
    want = planned["metadata"]["labels"]
    if not have.items() >= want.items():  # every planned label stored with its value (one C-level pass)
        return False
    for key in OWNED_NODE_LABELS:  # and no owned label that the plan drops
        if key in have and key not in want:
            return False
    have_bgp = (current.get("spec") or {}).get("bgp") or {}
    want_bgp = planned["spec"]["bgp"]
    return (
        have_bgp.get("asNumber") == want_bgp.get("asNumber")
        and have_bgp.get("routeReflectorClusterID") == want_bgp.get("routeReflectorClusterID")
        and _same_ip(have_bgp.get("ipv4Address"), want_bgp["ipv4Address"])
    )


def _holds(stored: dict, wanted: dict) -> bool:
    """Does ``stored`` already have every ``wanted`` value (None: the key is absent)?"""
    for key, value in wanted.items():
        if value is None:
            if key in stored:
                return False
        elif isinstance(value, dict):
            inner = stored.get(key)
            if not isinstance(inner, dict) or not _holds(inner, value):
                return False
        elif stored.get(key) != value:
            return False
    return True


def _merge_is_noop(current: dict | None, body: dict) -> bool:
    """Would a merge of ``body`` into ``current`` leave spec, labels and annotations as they are?"""
    if current is None:
        return False
    return _holds(current["metadata"].get("labels") or {}, body["metadata"].get("labels") or {}) and _holds(
        current.get("spec") or {}, body.get("spec") or {}
    )


def _replace_is_noop(current: dict | None, body: dict) -> bool:
    return current is not None and comparable(current) == comparable(body)


class _Run:
    """One apply: reads the current state once, then writes only what differs, step by step."""

    def __init__(self, store: CalicoStore, plan: dict) -> None:
        self.store = store
        self.plan = plan
        self.result = ApplyResult()
        self.nodes = {n["metadata"]["name"]: n for n in store.list("Node", page_size=1000)}
        self.peers = {
            p["metadata"]["name"]: p for p in store.list("BGPPeer", labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE})
        }
        self.config = store.get("BGPConfiguration", "default")
        self.planned_nodes = [n["metadata"]["name"] for n in plan["resources"]["nodes"]]
        self.written: set[str] = set()

    def current_reflectors(self) -> dict[str, str]:
        return {
            name: (n.get("spec") or {}).get("bgp", {}).get("routeReflectorClusterID")
            for name, n in sorted(self.nodes.items())
            if ((n.get("spec") or {}).get("bgp") or {}).get("routeReflectorClusterID")
        }

    def _known(self) -> dict[str, dict | None]:
        """What this run read at its start, keyed by etcd key, so the store need not read it again.

        Every Node was listed, so an unlisted Node is known absent; only managed peers were listed,
        so other peers are left for the store to read.
        """
        known: dict[str, dict | None] = {key_for("Node", name): None for name in self.planned_nodes}
        known.update({key_for("Node", name): node for name, node in self.nodes.items()})
        known.update({key_for("BGPPeer", name): peer for name, peer in self.peers.items()})
        known[key_for("BGPConfiguration", "default")] = self.config
        for key in self.written:  # changed since it was read: let the store read it again
            known.pop(key, None)
        return known

    def _apply(self, resources: list[dict], merge: bool) -> None:
        if resources:
            done = self.store.apply(resources, merge=merge, known=self._known())
            self.written.update(done.created + done.updated)
            self.result.merge(done)

    def nodes_step(self) -> None:
        bodies = []
        for planned in self.plan["resources"]["nodes"]:
            current = self.nodes.get(planned["metadata"]["name"])
            if current is not None and _node_is_current(current, planned):
                continue
            body = _node_update(current, planned)
            if not _merge_is_noop(current, body):
                bodies.append(body)
        self._apply(bodies, merge=True)

    def peers_step(self) -> None:
        bodies = [
            p
            for p in self.plan["resources"]["bgppeers"]
            if not _replace_is_noop(self.peers.get(p["metadata"]["name"]), p)
        ]
        self._apply(bodies, merge=False)

    def prune_step(self) -> None:
        keep = {p["metadata"]["name"] for p in self.plan["resources"]["bgppeers"]}
        stale = [("BGPPeer", name, None) for name in sorted(self.peers) if name not in keep]
        if stale:
            self.result.merge(self.store.delete(stale))

    def config_step(self) -> None:
        bodies = [c for c in self.plan["resources"]["bgpconfigurations"] if not _merge_is_noop(self.config, c)]
        self._apply(bodies, merge=True)


def apply_plan(store: CalicoStore, plan: dict, phase: str = "all", prune: bool = True) -> dict:
    """Apply ``plan`` through ``store`` in the safe order; returns the module result fields."""
    _check_plan(plan)
    if phase not in PHASES:
        raise TopologyApplyError(f"phase: {phase!r} must be one of {', '.join(PHASES)}")
    # Thousands of short-lived objects and no reference cycles: the cyclic collector only re-scans
    # the plan over and over (about 15% of a 5,000-node first apply).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _apply(store, plan, phase, prune)
    finally:
        if collecting:
            gc.enable()


def _apply(store: CalicoStore, plan: dict, phase: str, prune: bool) -> dict:
    run = _Run(store, plan)
    before = run.current_reflectors()
    mesh_now = (run.config or {}).get("spec", {}).get("nodeToNodeMeshEnabled", True) is not False
    subtractive = phase in ("all", "finish")
    try:
        if plan["mode"] == "route_reflector":
            run.nodes_step()
            run.peers_step()
            if subtractive:
                run.config_step()
                if prune:
                    run.prune_step()
        else:
            run.config_step()
            run.peers_step()  # router peers stay or appear before reflector peers go
            if subtractive:
                run.nodes_step()  # reflectors rejoin the mesh; selector peers stop matching
                if prune:
                    run.prune_step()
    except ValidationError as exc:
        raise TopologyApplyError(str(exc)) from None
    out = run.result.as_dict(with_diff=store.want_diff)
    planned = sum(len(items) for items in plan["resources"].values())
    out["unchanged"] = planned - len(set(run.result.created) | set(run.result.updated))
    out.update(
        {
            "mode": plan["mode"],
            "mesh_before": mesh_now,
            "reflectors_before": before,
            "reflectors": {
                r["name"]: r["cluster_id"]
                for r in plan["reflectors"]
                if plan.get("reflector_kind", "in_cluster") == "in_cluster"
            },
            "phase": phase,
        }
    )
    return out
