# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply a BGP topology plan (from ``topology.plan_topology``) to the Calico v3 datastore, safely ordered.

Ownership: in Node objects this code owns the ``kubescale.io/`` labels the planner writes and
``spec.bgp.ipv4Address`` / ``asNumber`` / ``routeReflectorClusterID``; everything else (labels of
others, orchRefs, tunnel addresses, calico-node's own fields) is kept. It owns the BGPPeers labelled
``kubescale.io/managed-by=kubescale.calico`` (and prunes only those), and in BGPConfiguration
``default`` the fields ``nodeToNodeMeshEnabled`` and ``asNumber``.

Order, so that at every etcd revision in between each node that had routes to every node keeps
them (proved against the session model, topology/sessions.py, by replaying the etcd history in
tests/integration/test_bgp_topology_history.py). Node writes fall in three kinds: *promotions* (a
cluster ID set or changed), *demotions* (a cluster ID removed) and *the rest* (labels, addresses).
  to route reflectors: BGPPeers -> updates (client labels) -> promotions, in ONE transaction ->
                       new Nodes -> mesh off -> demotions, in one transaction -> prune old peers
  to full mesh:        mesh on -> BGPPeers -> demotions, in one transaction -> updates -> new Nodes -> prune
Peers before labels: a selector peering exists before anything matches it. All promotions at once:
a reflector with a cluster ID leaves the mesh and reaches the other clusters only through their
reflectors, which must reflect at that same revision. ``phase='prepare'`` stops before the
subtractive steps (mesh off, demotions, removals) so that a playbook can check the BGP sessions in
between; ``phase='finish'`` runs everything (idempotently).

Stable assignment: by default the plan is made again from its own inputs (``plan['inputs']``)
with the assignment the datastore holds (the labels written by earlier runs) as ``previous``,
so that reflectors and clients stay where they are and a change of k nodes re-peers at most those k.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
import time
from collections.abc import Callable

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    key_for,
    validate,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import (
    ApplyResult,
    CalicoStore,
    StoreError,
    comparable,
)
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, EtcdError
from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import (
    LABEL_GROUP,
    LABEL_RACK,
    LABEL_RR,
    LABEL_RR_CLIENT_OF,
    LABEL_RR_CLUSTER,
    LABEL_ZONE,
    TopologyError,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.marker import AppliedMarker
from ansible_collections.kubescale.calico.plugins.module_utils.topology.plan_shape import (
    validate_plan_shape,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import replan, stored_assignment
from ansible_collections.kubescale.calico.plugins.module_utils.topology.report import apply_summary, write_apply_report

OWNED_NODE_LABELS = (LABEL_GROUP, LABEL_RACK, LABEL_ZONE, LABEL_RR, LABEL_RR_CLUSTER, LABEL_RR_CLIENT_OF)
OWNED_BGP_FIELDS = ("asNumber", "routeReflectorClusterID")
PHASES = ("all", "prepare", "finish")
PLAN_KEYS = ("mode", "resources", "nodes", "reflectors")
UNPLANNED_SHOWN = 10
MAX_ATOMIC_NODES = 128  # etcd's default --max-txn-ops: promotions/demotions beyond it span transactions


class TopologyApplyError(ValueError):
    """A plan that cannot be applied; the message names the field and the rule."""


def _describe_node(kind: str, body: dict) -> str:
    return f"Node {body['metadata']['name']} ({kind})"


def _check_plan(plan) -> None:
    try:
        validate_plan_shape(plan)  # the shape: mappings, lists and keys where applying needs them
    except ValidationError as exc:
        raise TopologyApplyError(str(exc)) from None
    resources = plan["resources"]
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


class ProgressFile:
    """One JSON line per apply step (objects done/total, objects per second) in ``path``, rewritten per run."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.started = time.monotonic()
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w", encoding="utf-8"):
                pass  # a new run starts a new file: its lines never mix with an earlier run's

    def __call__(self, step: str, **info) -> None:
        if not self.path:
            return
        seconds = time.monotonic() - self.started
        event = {"t": round(seconds, 3), "step": step, **info}
        if "done" in info:
            event["rate"] = round(info["done"] / seconds, 1) if seconds > 0 else 0.0
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")


class _Run:
    """One apply: reads the current state once, then writes only what differs, step by step."""

    def __init__(self, store: CalicoStore, plan: dict, progress: Callable[..., None] | None = None) -> None:
        self.progress = progress or (lambda step, **info: None)
        self.store = store
        self.plan = plan
        self.result = ApplyResult()
        self.nodes = {n["metadata"]["name"]: n for n in store.list("Node", page_size=1000)}
        peers = store.list("BGPPeer")  # all of them, so that the marker can count the range read
        self.peer_count = len(peers)
        self.peers = {
            p["metadata"]["name"]: p
            for p in peers
            if (p["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        }
        self.config = store.get("BGPConfiguration", "default")
        self.written: set[str] = set()
        self.judged: dict[str, dict] = {}  # Node key -> the object to store, judged by validate_all
        self.steps: list[dict] = []
        self.warnings: list[str] = []
        self.use(plan)

    def use(self, plan: dict) -> None:
        """Apply ``plan`` (the one given, or the one made again from stored state)."""
        if plan is self.plan and hasattr(self, "bodies"):
            return  # the plan kept the stored assignment as it was: its bodies are already made
        self.plan = plan
        self.planned_nodes = [n["metadata"]["name"] for n in plan["resources"]["nodes"]]
        self.bodies = self.node_bodies()

    def counts(self) -> list[int]:
        """Keys read per managed range (marker.managed_ranges): Nodes, BGPPeers, BGPConfiguration default."""
        return [len(self.nodes), self.peer_count, 0 if self.config is None else 1]

    def unplanned_nodes(self) -> list[str]:
        """Nodes in the datastore that the plan does not list (autoscaled, or gone from the inventory)."""
        planned = set(self.planned_nodes)
        return sorted(name for name in self.nodes if name not in planned)

    def _log(self, step: str, done: ApplyResult | None) -> None:
        written = len(done.created) + len(done.updated) + len(done.deleted) if done else 0
        self.steps.append({"step": step, "written": written})

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

    def _apply(self, step: str, resources: list[dict], merge: bool) -> None:
        done = None
        if resources:
            done = self.store.apply(resources, merge=merge, known=self._known(), judged=self.judged)
            self.written.update(done.created + done.updated)
            self.result.merge(done)
        self._log(step, done)

    def node_bodies(self) -> dict[str, list[dict]]:
        """Node merge bodies that change something, by kind: promote, demote, create, rest (updates)."""
        out: dict[str, list[dict]] = {"promote": [], "demote": [], "create": [], "rest": []}
        for planned in self.plan["resources"]["nodes"]:
            current = self.nodes.get(planned["metadata"]["name"])
            if current is not None and _node_is_current(current, planned):
                continue
            body = _node_update(current, planned)
            if _merge_is_noop(current, body):
                continue
            want = (planned.get("spec") or {}).get("bgp", {}).get("routeReflectorClusterID")
            have = ((current or {}).get("spec") or {}).get("bgp", {}).get("routeReflectorClusterID")
            if want and want != have:
                kind = "promote"
            elif have and not want:
                kind = "demote"
            else:
                kind = "create" if current is None else "rest"
            out[kind].append(body)
        return out

    def validate_all(self) -> None:
        """Judge every object this run may write, as it would be stored, before the first write (the
        steps write in several calls, so the store's own check per call would come too late).
        The judged Nodes are kept for the store, which then need not build and judge them again."""
        self.judged = {}
        for kind, bodies in self.bodies.items():
            for body in bodies:
                name = body["metadata"]["name"]
                stored = CalicoStore._desired_state(self.nodes.get(name), body, merge=True)
                try:
                    self.judged[key_for("Node", name)] = validate(stored, _owned=True)
                except ValidationError as exc:
                    raise TopologyApplyError(f"{_describe_node(kind, body)}: {exc}") from None
        for key in ("bgpconfigurations", "bgppeers"):
            for index, item in enumerate(self.plan["resources"][key]):
                try:
                    validate(item, _owned=True)
                except ValidationError as exc:
                    raise TopologyApplyError(f"plan.resources.{key}[{index}]: {exc}") from None

    def nodes_step(self, kind: str) -> None:
        bodies = self.bodies[kind]
        if kind in ("promote", "demote") and len(bodies) > MAX_ATOMIC_NODES:
            self.warnings.append(
                f"{len(bodies)} reflector {kind}s span several transactions (at most {MAX_ATOMIC_NODES} per "
                "transaction): reachability may drop in between"
            )
        names = {"promote": "Nodes: reflectors promoted (one transaction)",
                 "demote": "Nodes: reflectors demoted (one transaction)", "create": "Nodes: created",
                 "rest": "Nodes: labels and addresses"}
        self._apply(names[kind], bodies, merge=True)

    def peers_step(self) -> None:
        bodies = [
            p
            for p in self.plan["resources"]["bgppeers"]
            if not _replace_is_noop(self.peers.get(p["metadata"]["name"]), p)
        ]
        self._apply("BGPPeers created or updated", bodies, merge=False)

    def prune_step(self) -> None:
        keep = {p["metadata"]["name"] for p in self.plan["resources"]["bgppeers"]}
        stale = [("BGPPeer", name, None) for name in sorted(self.peers) if name not in keep]
        done = self.store.delete(stale) if stale else None
        if done:
            self.result.merge(done)
        self._log("BGPPeers pruned", done)

    def config_step(self) -> None:
        bodies = [c for c in self.plan["resources"]["bgpconfigurations"] if not _merge_is_noop(self.config, c)]
        mesh = self.plan["mode"] == "mesh"
        self._apply(f"BGPConfiguration: mesh {'on' if mesh else 'off'}", bodies, merge=True)


def apply_plan(
    store: CalicoStore, plan: dict, phase: str = "all", prune: bool = True, keep_assignment: bool = True,
    progress: Callable[..., None] | None = None,
) -> dict:
    """Apply ``plan`` through ``store`` in the safe order; returns the module result fields.

    A reapply that the applied-topology marker proves a no-op returns the recorded result after one
    small request (topology/marker.py); any other run reads everything, and one that wrote records
    the marker."""
    if phase not in PHASES:
        raise TopologyApplyError(f"phase: {phase!r} must be one of {', '.join(PHASES)}")
    client = getattr(store, "client", None)
    marker = AppliedMarker(client if isinstance(client, EtcdClient) else None, plan, (phase, prune, keep_assignment))
    cached = marker.cached_result()  # the same plan bytes as a run that passed every check below
    if cached is not None:
        if store.want_diff:
            cached["diff"] = {"before": {}, "after": {}}
        return cached
    _check_plan(plan)
    if keep_assignment and not isinstance(plan.get("inputs"), dict):
        raise TopologyApplyError(
            "plan.inputs: missing, so the stored assignment cannot be kept; make the plan with this "
            "collection's bgp_topology_plan filter, or set keep_assignment: false"
        )
    # Thousands of short-lived objects and no reference cycles: the cyclic collector only re-scans
    # the plan over and over (about 15% of a 5,000-node first apply).
    collecting = gc.isenabled()
    gc.disable()
    try:
        out = _apply(store, plan, phase, prune, keep_assignment, progress)[1]
        if not store.check_mode:
            _record_noop(store, marker, out, (plan, phase, prune, keep_assignment))
        return out
    finally:
        if collecting:
            gc.enable()


def _record_noop(store: CalicoStore, marker: AppliedMarker, out: dict, args: tuple) -> None:
    """After a run that wrote: prove the new state a no-op with a check-mode run from a fresh read,
    and record that run's result in the marker for the next reapply. A run that wrote nothing
    writes nothing, not even the marker (a no-op leaves the etcd revision where it was)."""
    if marker.digest is None or not out["changed"]:
        return
    marker.take_revision()
    try:
        run, again = _apply(CalicoStore(store.client, check_mode=True, want_diff=False), *args)
    except (EtcdError, StoreError, ValueError):  # the apply itself succeeded: only the marker is missed
        return
    if not again["changed"] and not again["retries"]:
        marker.record(run.counts(), again)


def _disagreements(plan: dict, previous: dict) -> int:
    """Hosts whose stored role or cluster differs from the plan's."""
    planned = {n["host"]: (n["route_reflector"], n["cluster_id"]) for n in plan["nodes"]}
    if plan.get("reflector_kind") == "external":
        planned.update({r["host"]: (True, r["cluster_id"]) for r in plan["reflectors"]})
    stored = {r["host"]: (True, r["cluster_id"]) for r in previous["reflectors"]}
    stored.update({n["host"]: (False, n["cluster_id"]) for n in previous["nodes"]})
    return sum(1 for host, role in stored.items() if host in planned and planned[host] != role)


def _kept_plan(run: _Run, plan: dict) -> tuple[dict, dict]:
    """The plan, made again with the stored assignment as ``previous`` where they disagree; what was kept."""
    previous = stored_assignment(run.nodes.values(), plan)
    differ = _disagreements(plan, previous)
    kept = {
        "source": "datastore" if differ else "plan",
        "reflectors": len(previous["reflectors"]),
        "clients": len(previous["nodes"]),
        "disagreed": differ,
    }
    if not differ:  # the plan already keeps what is stored (or nothing is): no need to plan again
        return plan, kept
    try:
        return replan(plan, previous), kept
    except TopologyError as exc:
        raise TopologyApplyError(str(exc)) from None


def _refuse_unspread(plan: dict) -> None:
    settings = plan.get("settings") or {}
    spread = plan.get("spread") or {}
    if settings.get("rr_require_spread") and spread.get("ok") is False:
        problem = next((w for w in plan.get("warnings", []) if "reflector" in w), "reflectors in one failure domain")
        raise TopologyApplyError(f"calico_rr_require_spread: {problem}")


def _steps(run: _Run, phase: str, prune: bool) -> list[str]:
    """The write steps, in their safe order (see the module docstring)."""
    subtractive = phase in ("all", "finish")
    if run.plan["mode"] == "route_reflector":
        steps = ["peers",  # selector peerings exist before anything matches them
                 "rest",  # client labels: with the mesh still on, extra sessions only
                 "promote",  # every new reflector at one revision (it leaves the mesh)
                 "create"]  # new Nodes: their cluster's reflectors already reflect
        if subtractive:
            steps += ["config",  # mesh off: every client already has its reflectors
                      "demote"]  # old reflectors become clients once their replacements reflect
    else:
        steps = ["config",  # mesh on first: clients mesh while the reflectors still reflect
                 "peers"]  # router peers stay or appear before reflector peers go
        if subtractive:
            steps += ["demote",  # every reflector rejoins the mesh at one revision
                      "rest",  # labels go; selector peers stop matching
                      "create"]
    if subtractive and prune:
        steps.append("prune")
    return steps


def _step_size(run: _Run, step: str) -> int:
    """Objects a step looks at (writes or finds in place): the unit of the progress lines."""
    if step == "peers":
        return len(run.plan["resources"]["bgppeers"])
    if step == "config":
        return len(run.plan["resources"]["bgpconfigurations"])
    if step == "prune":
        keep = {p["metadata"]["name"] for p in run.plan["resources"]["bgppeers"]}
        return sum(1 for name in run.peers if name not in keep)
    return len(run.bodies[step])


def _run_steps(run: _Run, phase: str, prune: bool) -> None:
    steps = _steps(run, phase, prune)
    sizes = [_step_size(run, step) for step in steps]
    total, done = sum(sizes), 0
    run.progress("planned", total=total, unit="objects")
    for step, size in zip(steps, sizes):
        if step == "peers":
            run.peers_step()
        elif step == "config":
            run.config_step()
        elif step == "prune":
            run.prune_step()
        else:
            run.nodes_step(step)
        done += size
        run.progress(run.steps[-1]["step"], done=done, total=total, unit="objects")


def _apply(store: CalicoStore, plan: dict, phase: str, prune: bool, keep_assignment: bool,
           progress: Callable[..., None] | None = None) -> tuple[_Run, dict]:
    run = _Run(store, plan, progress)
    kept = {"source": "plan", "reflectors": 0, "clients": 0, "disagreed": 0}
    if keep_assignment and plan["mode"] == "route_reflector":  # a mesh has no assignment to keep
        again, kept = _kept_plan(run, plan)
        run.use(again)
    _refuse_unspread(run.plan)
    before = run.current_reflectors()
    mesh_now = (run.config or {}).get("spec", {}).get("nodeToNodeMeshEnabled", True) is not False
    run.validate_all()
    try:
        _run_steps(run, phase, prune)
    except ValidationError as exc:
        raise TopologyApplyError(str(exc)) from None
    plan = run.plan
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
            "steps": run.steps,
            "assignment": kept,
            "plan_warnings": list(plan.get("warnings", [])) + run.warnings,
            "default_cluster": plan.get("default_cluster"),
        }
    )
    unplanned = run.unplanned_nodes()
    out["unplanned_nodes"] = {"count": len(unplanned), "names": unplanned[:UNPLANNED_SHOWN]}
    return run, out


ACTIONS_SHOWN = 20


def _check_report_file(path: str) -> None:
    """Refuse, before any write to etcd, a report file that could not be written afterwards."""
    if os.path.isdir(path):
        raise TopologyApplyError(f"report_file: {path} is a directory; give a file path")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise TopologyApplyError(f"report_file: {path} is not writable")
        return
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise TopologyApplyError(f"report_file: cannot create {path}: {parent} is not a writable directory")


def apply_and_report(
    store: CalicoStore,
    plan: dict,
    phase: str = "all",
    prune: bool = True,
    keep_assignment: bool = True,
    report_file: str | None = None,
    progress_file: str | None = None,
) -> dict:
    """:func:`apply_plan` plus a short ``summary``; with ``report_file`` every action goes to that file
    and the result keeps the first ACTIONS_SHOWN of them (``actions_total`` counts them all).
    ``progress_file``: one JSON line per write step (objects done/total), for a progress line while it runs."""
    if report_file:
        _check_report_file(report_file)
    progress = None
    if progress_file and not store.check_mode:
        try:
            progress = ProgressFile(progress_file)
        except OSError as exc:
            raise TopologyApplyError(f"progress_file: cannot write {progress_file}: {exc.strerror}") from None
    out = apply_plan(store, plan, phase, prune, keep_assignment, progress)
    if progress:
        progress("applied")
    out["actions_total"] = len(out["actions"])
    if report_file:
        out["report_file"] = report_file
        try:
            write_apply_report(report_file, out)
        except OSError as exc:
            raise TopologyApplyError(f"report_file: cannot write {report_file}: {exc.strerror}") from None
        out["actions"] = out["actions"][:ACTIONS_SHOWN]
    out["summary"] = apply_summary(out)
    return out
