# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Calico v3 datastore in etcd: validate, diff, apply in guarded batches, list in pages.

Every write goes through :meth:`CalicoStore._write`, the one check-mode guard. A write is a
compare-and-swap (create: the key must not exist; update/delete: its mod_revision must be the one
read); a batch that loses a race is re-read, re-planned and retried.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import (
    ValidationError,
    validate_label_name,
    validate_name,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    check_immutable,
    deserialize,
    key_for,
    key_of,
    resource_kind,
    serialize,
    storage_name,
    validate,
    validate_identity,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.selector import parse_selector, selector_matches
from ansible_collections.kubescale.calico.plugins.module_utils.calico.validate import check_pool_overlaps
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, EtcdClient, EtcdError, Op

MAX_ATTEMPTS = 5
PREFIX_READ_MIN = 256  # wanted keys under one prefix before a paged range replaces batched gets
PREFIX_READ_SLACK = 4  # ... as long as the prefix holds at most this many times the wanted keys
COMPARED_META = ("labels", "annotations")


class StoreError(Exception):
    """A datastore operation that could not be completed (message is for humans)."""


@dataclass
class ApplyResult:
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    diff: dict = field(default_factory=lambda: {"before": {}, "after": {}})
    retries: int = 0

    def merge(self, other: ApplyResult) -> ApplyResult:
        self.changed = self.changed or other.changed
        for name in ("actions", "created", "updated", "deleted", "unchanged"):
            getattr(self, name).extend(getattr(other, name))
        self.diff["before"].update(other.diff["before"])
        self.diff["after"].update(other.diff["after"])
        self.retries += other.retries
        return self

    def as_dict(self, with_diff: bool = False) -> dict:
        out = {"changed": self.changed, "actions": self.actions, "created": self.created,
               "updated": self.updated, "deleted": self.deleted, "unchanged": len(self.unchanged),
               "retries": self.retries}
        if with_diff:
            out["diff"] = self.diff
        return out


_CLOCK: list = [None, ""]  # (second, its RFC 3339 text): thousands of creates share a handful of seconds


def now_rfc3339() -> str:
    """The current UTC time in RFC 3339 with seconds, as Kubernetes metadata timestamps are written."""
    now = int(time.time())  # whole seconds since the epoch: one cheap call per object created
    if _CLOCK[0] != now:
        _CLOCK[:] = [now, datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return _CLOCK[1]


def new_object(desired: dict) -> dict:
    """What is stored on create: a copy without removal markers (None), a fresh uid and creationTimestamp."""
    body = dict(desired, metadata=dict(desired["metadata"]))
    body["spec"] = deep_merge({}, desired.get("spec") or {})
    for key in COMPARED_META:
        if key in body["metadata"]:
            body["metadata"][key] = {k: v for k, v in body["metadata"][key].items() if v is not None}
    body["metadata"]["uid"] = str(uuid.uuid4())
    body["metadata"]["creationTimestamp"] = now_rfc3339()
    return body


_IMMUTABLE = (str, int, float, bool, type(None))


def _copy(value):
    """A deep copy; JSON's types (what resources hold) without deepcopy's bookkeeping, anything else with it."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    return copy.deepcopy(value)


def deep_merge(base: dict, update: dict) -> dict:
    """``update`` laid over ``base``: mappings merge key by key, None removes, anything else replaces."""
    out = _copy(base)
    for key, value in update.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):  # also into a missing mapping, so nested None markers are dropped
            out[key] = deep_merge(out[key] if isinstance(out.get(key), dict) else {}, value)
        else:
            out[key] = _copy(value)
    return out


def comparable(resource: dict | None) -> dict | None:
    """What 'changed' is judged on: spec plus labels and annotations."""
    if resource is None:
        return None
    meta = resource.get("metadata", {})
    return {"spec": resource.get("spec") or {}, **{k: meta.get(k) or {} for k in COMPARED_META}}


def describe(resource: dict) -> str:
    meta = resource["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{resource['kind']} {where}{meta['name']}"


def _changed_fields(before: dict, after: dict, prefix: str = "") -> list[str]:
    fields = []
    for key in sorted(set(before) | set(after)):
        left, right = before.get(key), after.get(key)
        if left == right:
            continue
        if isinstance(left, dict) and isinstance(right, dict):
            fields.extend(_changed_fields(left, right, f"{prefix}{key}."))
        else:
            fields.append(f"{prefix}{key}")
    return fields


class CalicoStore:
    """Calico v3 resources in one etcd cluster."""

    def __init__(self, client: EtcdClient, check_mode: bool = False, want_diff: bool = True) -> None:
        self.client = client
        self.check_mode = check_mode
        self.want_diff = want_diff

    # -- reads -----------------------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        kv = self.client.get(key_for(kind, name, namespace))
        return deserialize(kv.value, kv.mod_revision) if kv else None

    def list(self, kind: str, namespace: str | None = None, labels: dict | None = None,
             selector: str | None = None, page_size: int = 500) -> list[dict]:
        """Objects of one kind (optionally one namespace), filtered by exact labels and/or a selector."""
        info = resource_kind(kind)
        tree = parse_selector(selector, "label_selector") if selector else None
        out = []
        for kv in self.client.range(info.prefix(namespace), page_size=page_size):
            obj = deserialize(kv.value, kv.mod_revision)
            obj_labels = obj.get("metadata", {}).get("labels") or {}
            if labels and any(obj_labels.get(k) != v for k, v in labels.items()):
                continue
            if tree is not None and not selector_matches(tree, obj_labels):
                continue
            out.append(obj)
        return out

    # -- planning --------------------------------------------------------------------------------
    @staticmethod
    def _desired_state(current: dict | None, desired: dict, merge: bool) -> dict:
        """The object that should be stored, given what is stored now."""
        if current is None:
            return new_object(desired)
        body = _copy(current)
        body["metadata"].pop("resourceVersion", None)
        if merge:
            body["spec"] = deep_merge(current.get("spec") or {}, desired.get("spec") or {})
            for key in COMPARED_META:
                if desired["metadata"].get(key):
                    merged = {**(current["metadata"].get(key) or {}), **desired["metadata"][key]}
                    body["metadata"][key] = {k: v for k, v in merged.items() if v is not None}
        else:
            body["spec"] = deep_merge({}, desired.get("spec") or {})  # drop removal markers (None)
            for key in COMPARED_META:
                wanted = {k: v for k, v in (desired["metadata"].get(key) or {}).items() if v is not None}
                if wanted:
                    body["metadata"][key] = wanted
                else:
                    body["metadata"].pop(key, None)
        body["kind"], body["apiVersion"] = desired["kind"], desired["apiVersion"]
        return body

    def _validate_all(self, resources: Iterable[dict], merge: bool,
                      judged: dict[str, dict] | None = None) -> list[tuple[str, dict]]:
        """Check every resource before anything is read or written.

        Here: what names each object (so keys and duplicates are known). Each object is then
        judged whole as it would be stored, once the stored one is read and still before any
        write, since a merge's partial spec may rely on stored fields. A body whose key is in
        ``judged`` was built by the caller and its stored form already judged whole.
        """
        seen: dict[str, int] = {}
        out = []
        for index, resource in enumerate(resources):
            try:
                clean = self._identity(resource, judged)
            except ValidationError as exc:
                raise ValidationError(f"resources[{index}]: {exc}") from None
            key = key_of(clean)
            if key in seen:
                raise ValidationError(f"resources[{index}]: {describe(clean)} appears twice "
                                      f"(also resources[{seen[key]}])")
            seen[key] = index
            out.append((key, clean))
        return out

    @staticmethod
    def _identity(resource: dict, judged: dict[str, dict] | None) -> dict:
        if judged and isinstance(resource, dict) and resource.get("kind") == "Node":
            try:
                if key_of(resource) in judged:
                    return resource
            except (KeyError, TypeError, ValidationError):
                pass
        return validate_identity(resource)

    # -- writes ---------------------------------------------------------------------------------
    def apply(self, resources: Iterable[dict], merge: bool = True,
              known: dict[str, dict | None] | None = None, judged: dict[str, dict] | None = None) -> ApplyResult:
        """Create or update resources so that the store holds them; write only what differs.

        ``known``: objects the caller has just read (from :meth:`get`/:meth:`list`, keyed by etcd
        key; None = known absent). They stand in for the first read; compare-and-swap still guards
        every write, so a stale entry only costs a retry.
        ``judged``: for keys in ``known``, the object to store as the caller built it from that
        entry and judged with :func:`validate` (Node merges only); used as is on the first attempt,
        a retry builds and judges it again from what it re-reads.
        """
        judged = {key: body for key, body in (judged or {}).items() if known and key in known}
        pending = self._validate_all(resources, merge, judged)
        index_of = {key: index for index, (key, _unused) in enumerate(pending)}
        result = ApplyResult()
        for attempt in range(MAX_ATTEMPTS):
            current = self._current([key for key, _unused in pending], known if attempt == 0 else None)
            ops, plan = [], {}
            for key, desired in pending:
                stored, revision = current.get(key, (None, 0))
                try:
                    if attempt == 0 and key in judged:
                        body = judged[key]
                    else:
                        body = self._desired_state(stored, desired, merge)
                        if stored is not None and comparable(stored) == comparable(body):
                            result.unchanged.append(key)  # nothing would change: no need to judge it again
                            continue
                        body = validate(body, _owned=True)
                    check_immutable(stored, body)
                except ValidationError as exc:
                    raise ValidationError(f"resources[{index_of[key]}]: {exc}") from None
                if stored is not None and comparable(stored) == comparable(body):
                    result.unchanged.append(key)
                    continue
                ops.append(Op.put(key, serialize(body), revision))
                plan[key] = (stored, body)
            self._check_cross_object(plan, index_of)
            lost = self._write(ops)
            lost_keys = {op.key for op in lost}
            for key, (stored, body) in plan.items():
                if key not in lost_keys:
                    self._record(result, key, stored, body)
            if not lost:
                return result
            result.retries += 1
            pending = [(key, desired) for key, desired in pending if key in lost_keys]
        raise StoreError(f"gave up after {MAX_ATTEMPTS} attempts: {len(pending)} object(s) kept changing "
                         f"under us (first: {pending[0][0]})")

    def _check_cross_object(self, plan: dict[str, tuple[dict | None, dict]], index_of: dict[str, int]) -> None:
        """Rules between objects, against what is stored, before the batch is written (IP pool overlap)."""
        pools = [(index_of[key], body) for key, (_unused, body) in plan.items() if body["kind"] == "IPPool"]
        if pools:
            try:
                stored = self.list("IPPool")
            except EtcdError as exc:
                raise StoreError(str(exc)) from None
            check_pool_overlaps(sorted(pools, key=lambda item: item[0]), stored)

    def delete(self, refs: Iterable[tuple[str, str, str | None]]) -> ApplyResult:
        """Delete resources given as (kind, name, namespace); absent ones are left alone."""
        keys = []
        for index, (kind, name, namespace) in enumerate(refs):
            try:
                validate_name(name, f"{kind}.metadata.name")
                keys.append(key_for(kind, name, namespace))
            except ValidationError as exc:
                raise ValidationError(f"resources[{index}]: {exc}") from None
        return self._delete_keys(keys)

    def prune(self, kind: str, labels: dict, keep: set[str]) -> ApplyResult:
        """Delete objects of ``kind`` carrying ``labels`` whose names are not in ``keep``.

        Only objects this collection manages (``MANAGED_BY_LABEL``) are ever candidates, whatever
        ``labels`` says; ``keep`` holds names as given to :meth:`apply` (policy tier prefix optional).
        """
        labels = dict(labels or {})
        if labels.get(MANAGED_BY_LABEL, MANAGED_BY_VALUE) != MANAGED_BY_VALUE:
            raise ValidationError(f"labels.{MANAGED_BY_LABEL}: prune only deletes objects labelled "
                                  f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}, not {labels[MANAGED_BY_LABEL]!r}")
        labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
        kept = {storage_name(kind, name) for name in keep}
        doomed = [key_of(obj) for obj in self.list(kind, labels=labels) if obj["metadata"]["name"] not in kept]
        return self._delete_keys(doomed)

    def _delete_keys(self, keys: list[str]) -> ApplyResult:
        result = ApplyResult()
        pending = list(dict.fromkeys(keys))
        for _unused in range(MAX_ATTEMPTS):
            current = self._current(pending)
            ops, plan = [], {}
            for key in pending:
                if key not in current:
                    continue
                stored, revision = current[key]
                ops.append(Op.delete(key, revision))
                plan[key] = stored
            lost = {op.key for op in self._write(ops)}
            for key, stored in plan.items():
                if key not in lost:
                    self._record(result, key, stored, None)
            if not lost:
                return result
            result.retries += 1
            pending = [key for key in pending if key in lost]
        raise StoreError(f"gave up deleting after {MAX_ATTEMPTS} attempts (first: {pending[0]})")

    def _current(self, keys: list[str], known: dict[str, dict | None] | None = None) -> dict[str, tuple[dict, int]]:
        """Stored object and mod_revision of each key that exists (``known`` entries are trusted)."""
        current: dict[str, tuple[dict, int]] = {}
        unknown = []
        for key in keys:
            if known is not None and key in known:
                obj = known[key]
                if obj is not None:
                    meta = dict(obj["metadata"])
                    revision = int(meta.pop("resourceVersion"))
                    current[key] = (dict(obj, metadata=meta), revision)
            else:
                unknown.append(key)
        try:
            for kv in self._read(unknown):
                current[kv.key] = (deserialize(kv.value), kv.mod_revision)
        except EtcdError as exc:
            raise StoreError(str(exc)) from None
        return current

    def _read(self, keys: list[str]) -> Iterable:
        """Read exact keys: by paged range where many share a prefix, else in batched gets."""
        by_prefix: dict[str, list[str]] = {}
        for key in keys:
            by_prefix.setdefault(key.rsplit("/", 1)[0] + "/", []).append(key)
        singles: list[str] = []
        for prefix, group in by_prefix.items():
            # One page of a range costs about what one 128-get transaction does: range when the
            # prefix holds not much more than the wanted keys (counting is one cheap request).
            if len(group) >= PREFIX_READ_MIN and self.client.count(prefix) <= PREFIX_READ_SLACK * len(group):
                wanted = set(group)
                yield from (kv for kv in self.client.range(prefix, page_size=1000) if kv.key in wanted)
            else:
                singles.extend(group)
        if singles:
            yield from self.client.get_many(sorted(singles)).values()

    def _write(self, ops: list[Op]) -> list[Op]:
        """The one place that writes: nothing in check mode (every guard is assumed to hold)."""
        if self.check_mode or not ops:
            return []
        try:
            return self.client.apply(ops, max_ops=MAX_TXN_OPS)
        except EtcdError as exc:
            raise StoreError(str(exc)) from None

    def _record(self, result: ApplyResult, key: str, before: dict | None, after: dict | None) -> None:
        result.changed = True
        if before is None:
            result.created.append(key)
            result.actions.append(f"created {describe(after)}")
        elif after is None:
            result.deleted.append(key)
            result.actions.append(f"deleted {describe(before)}")
        else:
            result.updated.append(key)
            fields = _changed_fields(comparable(before), comparable(after))
            result.actions.append(f"updated {describe(after)} ({', '.join(fields)})")
        if self.want_diff:
            result.diff["before"][key] = before
            result.diff["after"][key] = after


def read_resources(client: EtcdClient, kind: str, name: str | None = None, namespace: str | None = None,
                   labels: dict | None = None, selector: str | None = None, page_size: int = 500) -> dict:
    """The result of an info query: one object by name, or a (filtered, paged) list of a kind."""
    info = resource_kind(kind)
    if namespace is not None and not info.namespaced:
        raise ValidationError(f"{kind}.metadata.namespace: {kind} is cluster-scoped and takes no namespace")
    if namespace is not None:
        validate_label_name(namespace, f"{kind}.metadata.namespace")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValidationError(f"page_size: {page_size!r} must be a positive integer")
    store = CalicoStore(client, check_mode=True)
    if name:
        validate_name(name, f"{kind}.metadata.name")
        found = store.get(kind, name, namespace)
        tree_ok = found is not None and (not selector or selector_matches(
            parse_selector(selector, "label_selector"), found["metadata"].get("labels") or {}))
        label_ok = found is not None and all((found["metadata"].get("labels") or {}).get(k) == v
                                             for k, v in (labels or {}).items())
        items = [found] if tree_ok and label_ok else []
    else:
        items = store.list(kind, namespace, labels=labels, selector=selector, page_size=page_size)
    return {"changed": False, "resources": items, "count": len(items)}


def ensure_node(store: CalicoStore, name: str, bgp: dict, labels: dict | None = None,
                purge_labels: bool = False, create: bool = True) -> ApplyResult:
    """Set BGP fields and labels of one Node, keeping what calico-node owns.

    In ``bgp`` None means "leave as is" and "" means "remove the field".
    """
    validate_name(name, "Node.metadata.name")
    spec_bgp = {key: (None if value == "" else value) for key, value in bgp.items() if value is not None}
    current = store.get("Node", name)
    if current is None and not create:
        raise StoreError(f"Node {name}: does not exist and create is false")
    wanted_labels = dict(labels or {})
    if purge_labels and current is not None:
        for key in (current["metadata"].get("labels") or {}):
            wanted_labels.setdefault(key, None)
    body = {"kind": "Node", "apiVersion": "projectcalico.org/v3", "metadata": {"name": name}, "spec": {}}
    if spec_bgp:
        body["spec"]["bgp"] = spec_bgp
    if wanted_labels:
        body["metadata"]["labels"] = wanted_labels
    return store.apply([body], merge=True)
