# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico v1 (etcd v2) → v3 (etcd v3) migration: calico-upgrade's phases, made resumable.

Phases (reference calico-datastore.md §4.1):

``validate``  read and convert, report; never writes.
``start``     convert (refuse on any error, before any write) → lock the target → snapshot the
              target → write a progress marker → v1 ``Ready=false`` → settle → re-read and convert
              the paused source → write resources (calico-upgrade's order) and IPAM keys,
              reconciling by content → prune leftovers of earlier runs → verify counts and
              hashes → marker ``written``.
``complete``  ClusterInformation ``datastoreReady=true``.
``abort``     v1 ``Ready=true`` (the v3 data stays, as with calico-upgrade).

Resumable: the marker key (outside ``/calico/``) says the target holds this run's own partial
output, so a rerun skips the emptiness check and the snapshot, accepts ``Ready=false``, and
reconciles: objects already stored with the same content are left alone (uid and
creationTimestamp kept), missing ones are created, differing ones updated.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    KEY_ROOT,
    key_of,
    serialize,
    validate,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import (
    CalicoStore,
    comparable,
    new_object,
    now_rfc3339,
)
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, EtcdClient, EtcdError, Op
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.pipeline import TxnPipeline, prefetched
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client
from ansible_collections.kubescale.calico.plugins.module_utils.migration import v1_convert, v1_model

STATE_KEY = "/kubescale/calico-migration/state"
LOCK_KEY = "/kubescale/calico-migration/lock"
CALICO_PREFIX = "/calico/"
IPAM_PREFIX = v1_model.IPAM_ROOT
# v2 prefixes read, and the depth below each at which subtrees are read in one request
SOURCE_PREFIXES = (("/calico/v1", 1), ("/calico/bgp/v1", 1), ("/calico/ipam/v2", 1))


class MigrationError(Exception):
    """The migration refused or failed; the message says why and what to do."""

    def __init__(self, msg: str, report: dict | None = None, **extra) -> None:
        super().__init__(msg)
        self.report = report
        self.extra = extra


@dataclass
class Options:
    allow_existing_v3_data: bool = False
    snapshot_dir: str | None = None
    settle_time: float = 15.0
    lock_ttl: int = 60
    batch_size: int = 500
    report_limit: int = 100
    report_file: str | None = None
    check_mode: bool = False
    fail_on_problems: bool = True


def check_options(opts: Options, progress_file: str | None = None) -> None:
    """Refuse option values that are wrong whatever the data, before anything is read or written."""
    for name in ("lock_ttl", "batch_size"):
        if getattr(opts, name) < 1:
            raise MigrationError(f"{name}: must be at least 1, got {getattr(opts, name)}")
    if opts.settle_time < 0:
        raise MigrationError(f"settle_time: must not be negative, got {opts.settle_time}")
    if opts.report_limit < 0:
        raise MigrationError(f"report_limit: must not be negative, got {opts.report_limit}")
    for name, path in (("progress_file", progress_file), ("report_file", opts.report_file)):
        if path and not os.path.isdir(os.path.dirname(path) or "."):
            raise MigrationError(f"{name}: directory {os.path.dirname(path)} of {path} does not exist")
        if path and os.path.isdir(path):
            raise MigrationError(f"{name}: {path} is a directory, not a file")
    if opts.snapshot_dir and os.path.exists(opts.snapshot_dir) and not os.path.isdir(opts.snapshot_dir):
        raise MigrationError(f"snapshot_dir: {opts.snapshot_dir} exists and is not a directory")


@dataclass
class Progress:
    """Progress events: appended to a JSON-lines file and passed to an optional callback."""

    path: str | None = None
    callback: Callable[[dict], None] | None = None
    events: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    idle: float = 0.0  # seconds spent waiting on purpose (settle_time), left out of the rate

    def busy(self) -> float:
        """Seconds since the start, without the deliberate waits."""
        return time.monotonic() - self.started - self.idle

    def __call__(self, step: str, **info) -> None:
        event = {"t": round(time.monotonic() - self.started, 3), "cpu": round(time.process_time(), 3), "step": step,
                 **info}
        if step in ("resources", "ipam") and self.events and self.events[-1]["step"] == step:
            self.events[-1] = event  # keep the summary short: last batch of a run of batches
        else:
            self.events.append(event)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event) + "\n")
        if self.callback:
            self.callback(event)


def rate(count: int, seconds: float) -> float:
    """Keys per second (0 before any time has passed)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- source ----------------------------------------------------------------------------------

def read_source(source: EtcdV2Client) -> v1_model.V1Data:
    """Read the Calico v1 keyspace into a V1Data.

    The prefixes are fetched together (etcd renders one while this process parses another) and
    added in a fixed order, so the data (and the conversion's order) does not depend on timing.
    """
    data = v1_model.V1Data()

    def fetch(prefix: str, depth: int) -> list[tuple[str, str]]:
        return [(node.key, node.value) for node in source.walk(prefix, split_depth=depth)]

    with ThreadPoolExecutor(max_workers=len(SOURCE_PREFIXES), thread_name_prefix="v2-read") as pool:
        reads = [pool.submit(fetch, prefix, depth) for prefix, depth in SOURCE_PREFIXES]
        for read in reads:
            for key, value in read.result():
                data.add(key, value)
    return data


def conversion_digest(conv: v1_model.Conversion) -> str:
    """sha256 over what will be stored (without uid/creationTimestamp), in write order."""
    h = hashlib.sha256()
    for _kind, obj in conv.resources:
        h.update(serialize(obj))
        h.update(b"\n")
    for key, value in conv.ipam:
        h.update(key.encode() + b"\0" + value + b"\n")
    return h.hexdigest()


def _content_hash(obj: dict) -> str:
    return hashlib.sha256(json.dumps(comparable(obj), sort_keys=True).encode()).hexdigest()


# -- target state ----------------------------------------------------------------------------

def read_state(target: EtcdClient) -> dict | None:
    kv = target.get(STATE_KEY)
    return json.loads(kv.value) if kv else None


def write_state(target: EtcdClient, state: dict) -> None:
    target.put(STATE_KEY, json.dumps(state, sort_keys=True))


def lock_owner() -> str:
    """What the lock key says about its holder: the module, the host and the process."""
    return f"calico_datastore_migrate on {socket.gethostname()} pid {os.getpid()}"


@contextmanager
def migration_lock(target: EtcdClient, opts: Options):
    """Hold the migration lock; in check mode take nothing, but refuse as a real run would if it is held."""
    if not opts.check_mode:
        with target.lock(LOCK_KEY, ttl=opts.lock_ttl, owner=lock_owner()):
            yield
        return
    holder = target.get(LOCK_KEY)
    if holder is not None:
        raise MigrationError(_held_message(holder.value))
    yield


def _held_message(holder: bytes) -> str:
    return (f"a migration run is in progress (lock {LOCK_KEY} held by {holder.decode('utf-8', 'replace')}): "
            "rerun when it has finished or stopped (its lock expires lock_ttl seconds after it stops); "
            "nothing was written")


def _report(conv: v1_model.Conversion, opts: Options) -> dict:
    if opts.report_file:
        fd = os.open(opts.report_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(conv.report.as_dict(), handle, indent=1)
    return conv.report.as_dict(limit=opts.report_limit)


def _refuse_errors(conv: v1_model.Conversion, opts: Options) -> None:
    if not conv.report.ok:
        rep = conv.report
        first = (rep.conversion_errors or rep.validation_errors or rep.name_clashes)[0]
        raise MigrationError(
            f"the v1 data cannot be migrated: {len(rep.conversion_errors)} conversion error(s), "
            f"{len(rep.validation_errors)} validation error(s), {len(rep.name_clashes)} name clash(es); "
            f"first: {first}. Fix the v1 data (see report) and rerun; nothing was written.",
            report=_report(conv, opts))
    if not conv.resources:
        raise MigrationError("no v1 resources found: is the source the Calico 2.x etcd (v2 API enabled)?",
                             report=_report(conv, opts))


def summary(conv: v1_model.Conversion) -> dict:
    return {"counts": dict(conv.report.counts), "total": sum(conv.report.counts.values()),
            "filtered": len(conv.report.filtered), "renamed": len(conv.report.converted_names)}


# -- phases ----------------------------------------------------------------------------------

def validate_phase(source: EtcdV2Client, target: EtcdClient, opts: Options, progress: Progress) -> dict:
    """Dry run: the full report, the target's state, what start would write. Never writes.

    Fails on problems (what start would refuse) unless ``opts.fail_on_problems`` is off.
    """
    result = _dry_run(source, target, opts, progress)
    problems = result["problems"]
    if problems and opts.fail_on_problems:
        extra = {k: v for k, v in result.items() if k not in ("changed", "report")}
        raise MigrationError(f"validate found {len(problems)} problem(s) that would refuse start: "
                             + "; ".join(problems) + " (set fail_on_problems: false only to report)",
                             report=result["report"], **extra)
    return result


def _dry_run(source: EtcdV2Client, target: EtcdClient, opts: Options, progress: Progress) -> dict:
    """The dry run's result with its ``problems`` (what start would refuse); never writes, never fails on them."""
    conv = read_and_convert(source).conv
    progress("converted", total=len(conv.resources) + len(conv.ipam))
    state = read_state(target)
    existing = target.count(CALICO_PREFIX)
    result = {"changed": False, "phase": "validate", "report": _report(conv, opts), "summary": summary(conv),
              "ready_v1": _ready(source), "target_keys": existing, "state": state,
              "conversion_sha256": conversion_digest(conv)}
    problems = []
    if not conv.report.ok:
        problems.append("the v1 data has conversion/validation errors or name clashes (see report)")
    if existing and state is None and not opts.allow_existing_v3_data:
        problems.append(f"the target holds {existing} keys under /calico/ (allow_existing_v3_data not set)")
    if result["ready_v1"] == "false" and state is None:
        problems.append("v1 Ready is already false: Calico networking is paused by someone else")
    result["problems"] = problems
    result["would_write"] = _plan_counts(target, conv) if conv.report.ok else None
    return result


def _ready(source: EtcdV2Client) -> str | None:
    node = source.get(v1_model.READY_KEY)
    return node.value if node else None


def _plan_counts(target: EtcdClient, conv: v1_model.Conversion) -> dict:
    """How many objects start would create / update / leave, from one read of the target."""
    return _plan(conv, read_stored(target))


def _plan(conv: v1_model.Conversion, stored: dict[str, tuple[int, str]]) -> dict:
    """How many objects of ``conv`` the target (``stored``, see read_stored) lacks, holds differently or holds."""
    out = {"create": 0, "update": 0, "unchanged": 0}
    wanted = [(key_of(obj), _content_hash(obj)) for _kind, obj in conv.resources]
    wanted += [(key, hashlib.sha256(value).hexdigest()) for key, value in conv.ipam]
    for key, digest in wanted:
        have = stored.get(key)
        out["create" if have is None else ("unchanged" if have[1] == digest else "update")] += 1
    return out


@dataclass
class SourceRead:
    """A conversion of the source and the v2 index it is consistent at (None: writes happened during the read)."""

    conv: v1_model.Conversion
    index: int | None
    ready: str | None


@contextmanager
def _gc_paused():
    """Cyclic GC off while tens of thousands of long-lived objects are built (they hold no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _validate_owned(obj: dict) -> dict:
    """The v3 validator on an object the converter has just built: no defensive deep copy of it."""
    return validate(obj, _owned=True)


def read_and_convert(source: EtcdV2Client) -> SourceRead:
    """Read and convert the source; the conversion is then frozen out of the cyclic GC's way.

    Without gc.freeze() every full collection triggered by the protobuf objects of the writes walks
    the whole conversion again: at seed scale that is ~45 % of the write and verify CPU.
    """
    with _gc_paused():
        start = source.index()
        data = read_source(source)
        end = source.index()
        ready = data.ready
        conv = v1_convert.convert(data, validate=_validate_owned)
        del data
    gc.freeze()
    return SourceRead(conv, start if start == end else None, ready)


def start_phase(source: EtcdV2Client, target: EtcdClient, opts: Options, progress: Progress) -> dict:
    if opts.check_mode:
        result = _dry_run(source, target, opts, progress)
        result["phase"] = "start"
        if result["problems"]:
            raise MigrationError("start would be refused: " + "; ".join(result["problems"]), report=result["report"])
        with migration_lock(target, opts):
            pass  # a run in progress would refuse a real start too
        result["changed"] = _start_would_change(result)
        return result
    version = source.get(v1_model.VERSION_KEY)
    try:
        v1_convert.check_version(version.value if version else None)
    except v1_model.V1Error as exc:
        raise MigrationError(str(exc)) from None
    first = read_and_convert(source)  # refuse bad data before the first write
    progress("converted", total=len(first.conv.resources) + len(first.conv.ipam))
    _refuse_errors(first.conv, opts)
    _refuse_target(target, source, opts, read_state(target))  # before the lock: a refusal writes nothing
    with migration_lock(target, opts):
        progress("locked")
        return _start_locked(source, target, opts, progress, first)


def _start_would_change(dry: dict) -> bool:
    """Whether a real start would write anything (objects, the Ready flag or the marker)."""
    state = dry["state"] or {}
    if state.get("phase") == "complete":
        return False
    would = dry["would_write"] or {}
    return bool(would.get("create") or would.get("update") or dry["ready_v1"] != "false"
                or state.get("phase") != "written" or state.get("conversion_sha256") != dry["conversion_sha256"])


def _paused_conversion(source: EtcdV2Client, opts: Options, progress: Progress, first: SourceRead,
                       actions: list[str]) -> v1_model.Conversion:
    """Pause Calico 2.x (Ready=false) and return the conversion of the paused source.

    The first conversion is reused when the v2 index proves nothing was written since it was read
    (the Ready write itself aside); otherwise the source is read again, as calico-upgrade does.
    """
    if first.ready != "false" or _ready(source) != "false":
        node = source.set(v1_model.READY_KEY, "false")["node"]
        actions.append("set v1 Ready=false (Calico 2.x networking paused)")
        progress("paused")
        if opts.settle_time > 0:
            time.sleep(opts.settle_time)
            progress.idle += opts.settle_time
        unchanged = first.index is not None and node["modifiedIndex"] == first.index + 1
        unchanged = unchanged and source.index() == node["modifiedIndex"]
    else:
        unchanged = first.index is not None and source.index() == first.index
    if unchanged:
        progress("source-unchanged")
        return first.conv
    try:
        conv = read_and_convert(source).conv
        _refuse_errors(conv, opts)
    except MigrationError:
        source.set(v1_model.READY_KEY, "true")
        actions.append("set v1 Ready=true again after the refusal")
        raise
    progress("source-reread", total=len(conv.resources) + len(conv.ipam))
    return conv


def _start_locked(source, target, opts, progress, first: SourceRead) -> dict:
    actions: list[str] = []
    state = read_state(target)
    if state and state.get("phase") == "complete":
        return {"changed": False, "phase": "start", "state": state, "actions": [],
                "msg": "the migration is already complete (ClusterInformation datastoreReady=true)",
                "snapshot": state.get("snapshot"), "summary": summary(first.conv),
                "report": _report(first.conv, opts)}
    resumed = state is not None
    fresh_target = False
    if state is None:
        existing = _refuse_target(target, source, opts, state)
        fresh_target = existing == 0
        snap = take_snapshot(target, opts.snapshot_dir)
        progress("snapshot", path=snap["path"] if snap else None)
        state = {"phase": "started", "started": _now(), "snapshot": snap, "target_was_empty": existing == 0}
        write_state(target, state)
        actions.append(f"took a snapshot of the target at {snap['path']}" if snap else "no snapshot requested")
        progress("marker")
    conv = _paused_conversion(source, opts, progress, first, actions)
    digest = conversion_digest(conv)
    # What the target holds already: nothing if it was empty when this run took the lock.
    stored = {} if fresh_target else read_stored(target)
    prunable = resumed and state.get("target_was_empty")
    pending = _plan(conv, stored)
    in_place = (not actions and state.get("phase") == "written" and state.get("conversion_sha256") == digest
                and not pending["create"] and not pending["update"] and not (prunable and _leftovers(conv, stored)))
    if not in_place:  # a rerun that finds everything in place leaves the marker alone
        if resumed:
            actions.insert(0, f"resumed the migration started at {state.get('started')} (phase {state.get('phase')})")
        state.update({"phase": "writing", "conversion_sha256": digest})
        write_state(target, state)
    writing = time.monotonic()
    bodies: dict[str, str] = {}
    revisions: dict[str, int] = {}
    written = write_resources(target, conv, opts, progress, stored, bodies, fresh=fresh_target, revisions=revisions)
    written_ipam = write_ipam(target, conv, progress, stored, batch=max(1, opts.batch_size), fresh=fresh_target,
                              revisions=revisions)
    write_seconds = time.monotonic() - writing
    pruned = prune(target, conv, stored) if prunable else 0
    progress("pruned", deleted=pruned)
    verification = verify(target, conv, bodies, revisions)
    del bodies, revisions
    progress("verified", ok=verification["ok"])
    if not verification["ok"]:
        raise MigrationError(f"verification failed: {verification['mismatches'][:5]} "
                             f"({verification['mismatch_total']} mismatches); rerun start to reconcile",
                             verification=verification)
    keys, busy = len(conv.resources) + len(conv.ipam), progress.busy()
    speed = {"keys": keys, "seconds": round(busy, 2), "keys_per_second": rate(keys, busy),
             "write_keys_per_second": rate(keys, write_seconds)}
    changed_objects = written["created"] + written["updated"] + written_ipam["created"] + written_ipam["updated"]
    if not in_place or changed_objects or pruned:
        state.update({"phase": "written", "written": _now(), "counts": summary(conv)["counts"]})
        write_state(target, state)
        actions.append(f"wrote {changed_objects} objects ({written['created'] + written_ipam['created']} created, "
                       f"{written['updated'] + written_ipam['updated']} updated, "
                       f"{written['unchanged'] + written_ipam['unchanged']} already in place)")
        actions.append(f"migrated {keys} keys in {busy:.1f} s: {speed['keys_per_second']:g} keys/s "
                       f"(writing {speed['write_keys_per_second']:g} keys/s; settle time not counted)")
    progress("done", keys=keys, rate=speed["keys_per_second"])
    if pruned:
        actions.append(f"deleted {pruned} leftover keys of an earlier run")
    return {"changed": bool(actions), "phase": "start", "actions": actions, "snapshot": state.get("snapshot"),
            "summary": summary(conv), "report": _report(conv, opts), "verification": verification,
            "written": {"resources": written, "ipam": written_ipam, "pruned": pruned},
            "conversion_sha256": digest, "state": state, "rate": speed}


def _refuse_target(target: EtcdClient, source: EtcdV2Client, opts: Options, state: dict | None) -> int:
    """Without this module's marker: refuse a non-empty target and a source paused by someone else."""
    if state is not None:
        return 0
    existing = target.count(CALICO_PREFIX)
    if existing and not opts.allow_existing_v3_data:
        raise MigrationError(f"the target etcd already holds {existing} keys under /calico/; refusing to mix "
                             "them with migrated data (set allow_existing_v3_data: true to proceed anyway)")
    if _ready(source) == "false":
        raise MigrationError("v1 Ready is already false: Calico networking is paused, but not by this module "
                             "(no migration marker in the target); resume it with phase=abort first")
    return existing


def take_snapshot(target: EtcdClient, snapshot_dir: str | None) -> dict | None:
    if not snapshot_dir:
        return None
    os.makedirs(snapshot_dir, mode=0o700, exist_ok=True)
    path = os.path.join(snapshot_dir, f"calico-v3-before-migration-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.db")
    return target.snapshot(path)


PAGE_SIZE = 2000  # kvs per range page: fewer round trips; retried with SMALL_PAGE if a page exceeds 4 MiB
SMALL_PAGE = 200
KEYS_PAGE_SIZE = 10000  # keys-only pages: a key and its revisions, ~100 bytes each


def _with_page_fallback(fn):
    """Run ``fn(page_size)``; if a page of large values exceeded gRPC's message limit, rerun with small pages."""
    try:
        return fn(PAGE_SIZE)
    except EtcdError as exc:
        if "RESOURCE_EXHAUSTED" not in str(exc) and "larger than max" not in str(exc):
            raise
        return fn(SMALL_PAGE)


def read_stored(target: EtcdClient) -> dict[str, tuple[int, str]]:
    """key → (mod_revision, content digest) of what the target holds in the migrated areas."""
    return _with_page_fallback(lambda page: _read_stored(target, page))


def _read_stored(target: EtcdClient, page: int) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for kv in target.range(KEY_ROOT, page_size=page):
        try:
            out[kv.key] = (kv.mod_revision, _content_hash(json.loads(kv.value)))
        except (ValueError, TypeError, AttributeError):
            out[kv.key] = (kv.mod_revision, "")
    for kv in target.range(IPAM_PREFIX, page_size=page):
        out[kv.key] = (kv.mod_revision, hashlib.sha256(kv.value).hexdigest())
    return out


def _new_body(obj: dict) -> bytes:
    """The stored JSON of a new object: what CalicoStore writes on create (fresh uid, creationTimestamp).

    A validated conversion normally holds no None (the removal marker new_object strips with a deep
    copy), so it is serialised as it is; any ``null`` in the JSON falls back to new_object.
    """
    meta = {**obj["metadata"], "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339()}
    body = serialize({**obj, "metadata": meta})
    return serialize(new_object(obj)) if b"null" in body else body


def _kind_prefix(key: str) -> str:
    """The part of a key that names its kind: /calico/resources/v3/projectcalico.org/<plural> or /calico/ipam/v2/<x>."""
    parts = key.split("/")
    return "/".join(parts[:6] if parts[2] == "resources" else parts[:5])


def sorted_within_kinds(items: list, key) -> list:
    """``items`` with each run of one kind sorted by etcd key (the runs keep calico-upgrade's order)."""
    out: list = []
    run: list = []
    for item in items:
        if run and _kind_prefix(key(run[-1])) != _kind_prefix(key(item)):
            out += sorted(run, key=key)
            run = []
        run.append(item)
    return out + sorted(run, key=key)


def _create(target: EtcdClient, ops: list[Op], fresh: bool) -> tuple[set[str], dict[str, int]]:
    """Write guarded puts; return the keys whose transaction lost its guard, and key → revision of the rest.

    ``fresh``: the keys are sorted within kinds and the target held none of them when the lock was
    taken, so each transaction is guarded by one range compare; otherwise each op carries its own
    guard (version 0 to create, the mod_revision read to update).
    """
    lost: set[str] = set()
    revisions: dict[str, int] = {}
    if not fresh:
        for start in range(0, len(ops), MAX_TXN_OPS):
            batch = ops[start:start + MAX_TXN_OPS]
            ok, revision = target.txn(batch)
            _record(batch, revision if ok else 0, lost, revisions)
        return lost, revisions
    chunk: list[Op] = []

    def flush() -> None:
        if chunk:
            _record(chunk, target.create_range([(op.key, op.value) for op in chunk]), lost, revisions)
        chunk.clear()

    for op in ops:
        if chunk and (len(chunk) == MAX_TXN_OPS or _kind_prefix(chunk[-1].key) != _kind_prefix(op.key)
                      or op.key <= chunk[-1].key):
            flush()
        chunk.append(op)
    flush()
    return lost, revisions


def _record(ops: list[Op], revision: int, lost: set[str], revisions: dict[str, int]) -> None:
    """Note where one transaction's keys went: written at ``revision``, or lost (0)."""
    if revision:
        revisions.update((op.key, revision) for op in ops)
    else:
        lost.update(op.key for op in ops)


def _kinds(keys: list[str]) -> set[str]:
    return {_kind_prefix(k) for k in keys}


def _barrier(pipe: TxnPipeline, keys: list[str], last: list[str]) -> None:
    """Keep calico-upgrade's kind order: a batch that starts a kind waits until earlier kinds are stored."""
    if keys and _kinds(keys) != _kinds(last[-1:]):
        pipe.drain()
    if keys:
        last[:] = keys[-1:]


def write_resources(target: EtcdClient, conv: v1_model.Conversion, opts: Options, progress: Progress,
                    stored: dict[str, tuple[int, str]], written: dict[str, str] | None = None,
                    fresh: bool = False, revisions: dict[str, int] | None = None) -> dict:
    """Store the v3 resources in order, reconciling by content.

    Objects the target lacks are created in guarded transactions (the key must not exist); objects
    that differ, and creates that lost their guard, go through CalicoStore.apply, which re-reads,
    keeps uid/creationTimestamp and replaces spec and labels. Equal objects are left alone.
    ``written`` collects key → sha256 of the exact bytes created, ``revisions`` key → the revision
    they were created at, for a cheap verification.
    ``fresh``: the target held none of these keys when the lock was taken; each kind is then
    written in key order under one range guard per transaction.
    Pipelined: while the creates of one batch are in flight the next batch is built.
    """
    store = CalicoStore(target, check_mode=False, want_diff=False)
    objs = sorted_within_kinds(conv.resources, key=lambda item: key_of(item[1])) if fresh else conv.resources
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    size = max(1, opts.batch_size)
    last: list[str] = []
    started = time.monotonic()

    def done(ops: list[Op], creates: list, reconcile: list, end: int,
             outcome: tuple[set[str], dict[str, int]]) -> None:
        lost, created_at = outcome
        if revisions is not None:
            revisions.update(created_at)
        counts["created"] += len(ops) - len(lost)
        if written is not None:
            written.update((op.key, hashlib.sha256(op.value).hexdigest()) for op in ops if op.key not in lost)
        reconcile += [o for k, o in creates if k in lost]
        if reconcile:
            res = store.apply(reconcile, merge=False)
            counts["created"] += len(res.created)
            counts["updated"] += len(res.updated)
            counts["unchanged"] += len(res.unchanged)
        progress("resources", done=end, total=len(objs), rate=rate(end, time.monotonic() - started))

    with TxnPipeline(target) as pipe:
        for start in range(0, len(objs), size):
            creates, reconcile = [], []
            for _kind, obj in objs[start:start + size]:
                key = key_of(obj)
                if key not in stored:
                    creates.append((key, obj))
                elif stored[key][1] != _content_hash(obj):
                    reconcile.append(obj)
                else:
                    counts["unchanged"] += 1
            ops = [Op.put(k, _new_body(o), 0) for k, o in creates]
            _barrier(pipe, [k for k, _o in creates] + [key_of(o) for o in reconcile], last)
            pipe.submit(functools.partial(_create, ops=ops, fresh=fresh),
                        functools.partial(done, ops, creates, reconcile, min(start + size, len(objs))))
    return counts


def write_ipam(target: EtcdClient, conv: v1_model.Conversion, progress: Progress,
               stored: dict[str, tuple[int, str]], batch: int = 1024, fresh: bool = False,
               revisions: dict[str, int] | None = None) -> dict:
    """Write the IPAM keys as they are where the stored bytes differ, guarded by mod_revision.

    ``revisions`` collects key → the revision each key was written at.

    Pipelined like :func:`write_resources`: batches in flight while the next one is built.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    items = conv.ipam
    last: list[str] = []
    started = time.monotonic()

    def done(end: int, outcome: tuple[dict[str, str], dict[str, int]]) -> None:
        for kind in outcome[0].values():
            counts[kind] += 1
        if revisions is not None:
            revisions.update(outcome[1])
        progress("ipam", done=end, total=len(items), rate=rate(end, time.monotonic() - started))

    with TxnPipeline(target) as pipe:
        for start in range(0, len(items), batch):
            ops, kinds = [], {}
            for key, value in items[start:start + batch]:
                have = stored.get(key)
                if have is not None and have[1] == hashlib.sha256(value).hexdigest():
                    counts["unchanged"] += 1
                    continue
                ops.append(Op.put(key, value, have[0] if have else 0))
                kinds[key] = "updated" if have else "created"
            _barrier(pipe, [op.key for op in ops], last)
            pipe.submit(functools.partial(_put_ipam, ops=ops, kinds=kinds, fresh=fresh),
                        functools.partial(done, min(start + batch, len(items))))
    return counts


def _leftovers(conv: v1_model.Conversion, stored: dict[str, tuple[int, str]]) -> list[tuple[str, int]]:
    """(key, mod_revision) of stored migrated-area keys that the conversion does not produce."""
    wanted = {key_of(obj) for _kind, obj in conv.resources} | {k for k, _value in conv.ipam}
    return [(key, rev) for key, (rev, _digest) in stored.items() if key not in wanted]


def _put_ipam(target: EtcdClient, ops: list[Op], kinds: dict[str, str],
              fresh: bool) -> tuple[dict[str, str], dict[str, int]]:
    """Write one batch of IPAM keys, re-reading and retrying keys that lost a race.

    Returns key → created/updated, and key → the revision it was written at.
    """
    outcome: dict[str, str] = {}
    written_at: dict[str, int] = {}
    for attempt in range(5):
        lost, revisions = _create(target, ops, fresh and attempt == 0)
        written_at.update(revisions)
        outcome.update((op.key, kinds[op.key]) for op in ops if op.key not in lost)
        if not lost:
            return outcome, written_at
        current = target.get_many(sorted(lost))  # lost a race: re-read and retry those keys
        ops = [Op.put(op.key, op.value, current[op.key].mod_revision if op.key in current else 0)
               for op in ops if op.key in lost]
        for op in ops:
            kinds[op.key] = "updated" if op.key in current else "created"
    raise MigrationError(f"IPAM keys kept changing under the migration (first: {ops[0].key})")


def prune(target: EtcdClient, conv: v1_model.Conversion, stored: dict[str, tuple[int, str]]) -> int:
    """Delete migrated-area keys that the conversion does not produce (an earlier run's leftovers)."""
    ops = [Op.delete(key, rev) for key, rev in _leftovers(conv, stored)]
    target.apply(ops)
    return len(ops)


def verify(target: EtcdClient, conv: v1_model.Conversion, bodies: dict[str, str] | None = None,
           revisions: dict[str, int] | None = None) -> dict:
    """Re-read the target; compare per-kind counts and per-object content with the conversion.

    Both areas are read at one revision, in pages fetched ahead on a second connection while this
    thread checks the previous page. When every converted key still has the mod_revision this run
    wrote it at (``revisions``), the stored bytes are the written ones: one keys-only read decides.
    Otherwise values are read: an object this run created is checked against the sha256 of the
    bytes it wrote (``bodies``, no JSON parsing), any other against the content hash (spec,
    labels, annotations) of the converted object.
    """
    reader = target.clone()
    try:
        revision = reader.revision()
        if revisions:
            unchanged = _verify_revisions(reader, conv, revisions, revision)
            if unchanged is not None:
                return unchanged
        return _with_page_fallback(lambda page: _verify(reader, conv, bodies or {}, page, revision))
    finally:
        reader.close()


def _ipam_kind(key: str) -> str:
    return "IPAMBlock" if "/assignment/" in key else ("BlockAffinity" if "/host/" in key else "IPAMHandle")


def _verify_revisions(target: EtcdClient, conv: v1_model.Conversion, revisions: dict[str, int],
                      revision: int) -> dict | None:
    """The verification from one keys-only read at ``revision``, or None if a key is missing or was
    changed since this run wrote it (then the values must be read)."""
    expected = {key_of(obj): kind for kind, obj in conv.resources}
    expected.update((key, _ipam_kind(key)) for key, _value in conv.ipam)
    found: dict[str, int] = {}
    for prefix in (KEY_ROOT, IPAM_PREFIX):
        pages = target.range(prefix, page_size=KEYS_PAGE_SIZE, keys_only=True, revision=revision)
        for kv in prefetched(pages, chunk=KEYS_PAGE_SIZE):
            kind = expected.get(kv.key)
            if kind is None:
                continue
            if revisions.get(kv.key) != kv.mod_revision:
                return None
            found[kind] = found.get(kind, 0) + 1
    if sum(found.values()) != len(expected):
        return None
    counts = {kind: {"expected": n, "found": found.get(kind, 0)} for kind, n in conv.report.counts.items()}
    return {"ok": True, "counts": counts, "mismatches": [], "mismatch_total": 0, "checked": len(expected),
            "revision": revision, "method": "revision"}


def _verify(target: EtcdClient, conv: v1_model.Conversion, bodies: dict[str, str], page: int,
            revision: int) -> dict:
    expected = {key_of(obj): (kind, obj) for kind, obj in conv.resources}
    expected_ipam = {k: hashlib.sha256(v).hexdigest() for k, v in conv.ipam}
    mismatches: list[str] = []
    found: dict[str, int] = {}
    seen = set()
    for kv in prefetched(target.range(KEY_ROOT, page_size=page, revision=revision), chunk=page):
        if kv.key not in expected:
            continue
        kind, obj = expected[kv.key]
        seen.add(kv.key)
        body = bodies.get(kv.key)
        if body is not None:
            if hashlib.sha256(kv.value).hexdigest() != body:
                mismatches.append(f"{kv.key}: bytes differ from what was written")
                continue
        elif _content_hash(json.loads(kv.value)) != _content_hash(obj):
            mismatches.append(f"{kv.key}: content differs")
            continue
        found[kind] = found.get(kind, 0) + 1
    for kv in prefetched(target.range(IPAM_PREFIX, page_size=page, revision=revision), chunk=page):
        if kv.key not in expected_ipam:
            continue
        seen.add(kv.key)
        if hashlib.sha256(kv.value).hexdigest() != expected_ipam[kv.key]:
            mismatches.append(f"{kv.key}: content differs")
            continue
        kind = _ipam_kind(kv.key)
        found[kind] = found.get(kind, 0) + 1
    missing = [k for k in list(expected) + list(expected_ipam) if k not in seen]
    mismatches.extend(f"{k}: missing" for k in missing)
    counts = {kind: {"expected": n, "found": found.get(kind, 0)} for kind, n in conv.report.counts.items()}
    return {"ok": not mismatches, "counts": counts, "mismatches": mismatches[:100],
            "mismatch_total": len(mismatches), "checked": len(seen), "revision": revision, "method": "content"}


def complete_phase(target: EtcdClient, opts: Options, progress: Progress) -> dict:
    """Set ClusterInformation default datastoreReady=true (resumes Calico v3 networking).

    Refusals and a completed migration are answered before the lock is taken (nothing is written),
    and checked again under it.
    """
    store = CalicoStore(target, check_mode=opts.check_mode, want_diff=False)
    state, current = _completable(target, store)
    if current["spec"].get("datastoreReady") is True:
        return {"changed": False, "phase": "complete", "actions": [], "state": state}
    with migration_lock(target, opts):
        state, current = _completable(target, store)
        if current["spec"].get("datastoreReady") is True:
            return {"changed": False, "phase": "complete", "actions": [], "state": state}
        desired = {"kind": "ClusterInformation", "apiVersion": current["apiVersion"],
                   "metadata": {"name": "default"}, "spec": {**current["spec"], "datastoreReady": True}}
        res = store.apply([desired], merge=True)
        if state is not None and not opts.check_mode:
            state.update({"phase": "complete", "completed": _now()})
            write_state(target, state)
        progress("completed")
        return {"changed": res.changed, "phase": "complete", "state": state,
                "actions": ["set ClusterInformation default datastoreReady=true (Calico v3 networking resumed)"]}


def _completable(target: EtcdClient, store: CalicoStore) -> tuple[dict | None, dict]:
    """The marker and the ClusterInformation, or a refusal when the migration cannot be completed."""
    state = read_state(target)
    if state is not None and state.get("phase") not in ("written", "complete"):
        raise MigrationError(f"the migration is in phase {state.get('phase')!r}, not written: rerun phase=start "
                             "until it verifies before completing")
    current = store.get("ClusterInformation", "default")
    if current is None:
        raise MigrationError("no ClusterInformation 'default' in the target: run phase=start first")
    return state, current


def abort_phase(source: EtcdV2Client, target: EtcdClient | None, opts: Options, progress: Progress) -> dict:
    """Set v1 Ready=true again (resumes Calico 2.x networking); the v3 data stays.

    Under the migration lock, so that it cannot interleave with a start (a start in its settle
    pause would otherwise carry on and mark the migration written): while a run holds the lock,
    abort is refused if Calico 2.x is paused, and warns if it is not (nothing to undo yet). An
    unreachable target does not stop it: resuming Calico 2.x must not depend on it.
    """
    holder = unreachable = None
    try:
        holder = target.get(LOCK_KEY) if target is not None else None
    except EtcdError as exc:
        unreachable = exc
    if _ready(source) == "true":  # nothing to undo: answered without taking the lock
        warnings = [] if holder is None else [
            f"v1 Ready is true, but a migration run holds the lock ({holder.value.decode('utf-8', 'replace')}) "
            "and may pause Calico 2.x: run phase=abort again when it has finished or stopped"]
        return {"changed": False, "phase": "abort", "actions": [], "ready_v1": "true", "warnings": warnings}
    if holder is not None:
        raise MigrationError(_held_message(holder.value))
    if unreachable is not None or target is None:
        return _abort(source, None, opts, progress, unreachable)
    with migration_lock(target, opts):
        return _abort(source, target, opts, progress, None)


def _abort(source: EtcdV2Client, target: EtcdClient | None, opts: Options, progress: Progress,
           unreachable: EtcdError | None) -> dict:
    """Set Ready=true and mark the marker aborted; ``unreachable``: why the target is not used."""
    ready = _ready(source)
    if ready == "true":
        return {"changed": False, "phase": "abort", "actions": [], "ready_v1": ready}
    warnings = []
    if not opts.check_mode:
        source.set(v1_model.READY_KEY, "true")
        if unreachable is not None:
            warnings.append("v1 Ready is true again, but the migration marker in the target was not updated "
                            f"(target unreachable, lock not taken): {unreachable}")
        try:  # the marker is bookkeeping: a target failing now must not undo resuming Calico 2.x
            state = read_state(target) if target is not None else None
            if state is not None and state.get("phase") != "complete":
                state.update({"phase": "aborted", "aborted": _now()})
                write_state(target, state)
        except EtcdError as exc:
            warnings.append(f"v1 Ready is true again, but the migration marker in the target was not updated: {exc}")
    progress("aborted")
    return {"changed": True, "phase": "abort", "ready_v1": "true", "warnings": warnings,
            "actions": ["set v1 Ready=true (Calico 2.x networking resumed; v3 data left in place)"]}


def run(phase: str, source: EtcdV2Client, target: EtcdClient, opts: Options, progress: Progress) -> dict:
    try:
        return _run(phase, source, target, opts, progress)
    finally:
        gc.unfreeze()  # hand the conversion back to the collector


def _run(phase: str, source: EtcdV2Client, target: EtcdClient, opts: Options, progress: Progress) -> dict:
    if phase == "validate":
        return validate_phase(source, target, opts, progress)
    if phase == "start":
        return start_phase(source, target, opts, progress)
    if phase == "complete":
        return complete_phase(target, opts, progress)
    if phase == "abort":
        return abort_phase(source, target, opts, progress)
    raise ValidationError(f"phase: {phase!r} is not one of validate, start, complete, abort")
