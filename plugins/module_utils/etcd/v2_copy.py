# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generic etcd v2 → v3 copy of any prefix, online (what ``etcdctl migrate`` does offline, plus TTLs)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, EtcdClient, Op
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client, V2Node


class V2CopyError(Exception):
    """A copy that cannot start (bad prefix) or whose result is not what the source holds."""

    def __init__(self, message: str, verification: dict | None = None) -> None:
        super().__init__(message)
        self.verification = verification


@dataclass(frozen=True)
class _Item:
    """One key to copy: its v3 key and value, remaining TTL and lease group (None: permanent)."""

    key: str
    value: bytes
    ttl: int
    group: str | None


def _dest_key(key: str, prefix: str, dest: str | None) -> str:
    if dest is None:
        return key
    return dest.rstrip("/") + key[len(prefix.rstrip("/")):]


def check_copy_args(prefix: str, destination_prefix: str | None, hidden_keys: list[str] | None,
                    split_depth: int = 0) -> list[str]:
    """Refuse bad arguments before anything is read or written; return the hidden keys as v2 paths."""
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise V2CopyError(f"prefix: {prefix!r} must start with '/'")
    if destination_prefix is not None and not destination_prefix.startswith("/"):
        raise V2CopyError(f"destination_prefix: {destination_prefix!r} must start with '/'")
    if split_depth < 0:
        raise V2CopyError(f"split_depth: must not be negative, got {split_depth}")
    for name, path in (("prefix", prefix), ("destination_prefix", destination_prefix or "/")):
        if any(seg in (".", "..") for seg in path.split("/")) or "//" in path:
            raise V2CopyError(f"{name}: {path!r} has an empty, '.' or '..' path segment")
    return [_hidden_path(prefix, name) for name in hidden_keys or []]


def _hidden_path(prefix: str, name: str) -> str:
    """The v2 path of one ``hidden_keys`` entry: relative to ``prefix``, or absolute under it."""
    base = prefix.rstrip("/")
    if not name or not name.strip("/"):
        raise V2CopyError("hidden_keys: an entry is empty; give names like '_meta' or 'sub/_lock'")
    path = name.rstrip("/") if name.startswith("/") else f"{base}/{name.rstrip('/')}"
    if not path.startswith(base + "/"):
        raise V2CopyError(f"hidden_keys: {name!r} is not under prefix {prefix}")
    segments = path[len(base) + 1:].split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise V2CopyError(f"hidden_keys: {name!r} has an empty, '.' or '..' path segment")
    if not any(seg.startswith("_") for seg in segments):
        raise V2CopyError(f"hidden_keys: {name!r} is not hidden (no path segment below {prefix} starts with '_'); "
                          "such keys are copied anyway")
    return path


def _is_hidden(key: str, prefix: str) -> bool:
    return any(seg.startswith("_") for seg in key[len(prefix.rstrip("/")):].split("/"))


def read_v2_keys(source: EtcdV2Client, prefix: str, hidden: list[str], split_depth: int) -> list[V2Node]:
    """Every leaf under ``prefix`` and under each hidden path (the v2 API lists hidden nodes only by name)."""
    nodes = {n.key: n for n in source.walk(prefix, split_depth=split_depth, inherited=source.ttl_above(prefix))}
    for path in hidden:
        if source.get_node(path) is None:
            raise V2CopyError(f"hidden_keys: {path} does not exist in the source (hidden nodes are read by "
                              "their exact name); nothing was written")
        nodes.update((n.key, n) for n in source.walk(path, split_depth=split_depth, inherited=source.ttl_above(path)))
    return [nodes[key] for key in sorted(nodes)]


def _items(nodes: list[V2Node], prefix: str, dest: str | None) -> list[_Item]:
    """Keys to write; those of one TTL directory share its lease, other TTL keys one lease per TTL."""
    out = []
    for n in nodes:
        ttl = int(n.ttl or 0)
        group = (n.expires_with or f"{ttl}s") if ttl else None
        out.append(_Item(_dest_key(n.key, prefix, dest), n.value.encode(), ttl, group))
    return out


def copy_v2_prefix(source: EtcdV2Client, target: EtcdClient, prefix: str, destination_prefix: str | None = None,
                   check_mode: bool = False, split_depth: int = 2, max_ops: int = MAX_TXN_OPS,
                   hidden_keys: list[str] | None = None) -> dict:
    """Copy every v2 key under ``prefix`` into v3 (optionally under another prefix), online.

    Directories are dropped (v3 has none); a key with a TTL is written with a lease of its remaining
    TTL (``etcdctl migrate`` makes it permanent or drops it), and the keys inside a directory with a
    TTL share one lease that expires with the directory. Hidden keys (``_name``), which the v2 API
    never lists, are copied when ``hidden_keys`` names them. Only keys whose value differs are
    written, in guarded transactions of at most ``max_ops``; the result is verified by count and hash.
    """
    hidden = check_copy_args(prefix, destination_prefix, hidden_keys, split_depth)
    nodes = read_v2_keys(source, prefix, hidden, split_depth)
    items = _items(nodes, prefix, destination_prefix)
    current = target.get_many([i.key for i in items]) if items else {}
    todo = []
    unchanged = 0
    for item in items:
        kv = current.get(item.key)
        if kv is not None and kv.value == item.value and (not item.ttl or kv.lease):
            unchanged += 1
            continue
        todo.append((item, kv))
    created = sum(1 for _item, kv in todo if kv is None)
    hidden_count = sum(1 for n in nodes if _is_hidden(n.key, prefix))
    result = {"changed": bool(todo), "copied": len(todo), "created": created, "updated": len(todo) - created,
              "unchanged": unchanged, "ttl_keys": sum(1 for i in items if i.ttl), "hidden_keys": hidden_count,
              "source_keys": len(items), "leases": {}}
    if check_mode or not todo:
        result["verification"] = _verify_copy(target, items) if not check_mode else None
        return result
    leases: dict[str, int] = {}
    for item, _kv in todo:
        if item.group and item.group not in leases:
            leases[item.group] = target.grant_lease(item.ttl)
    ops = [Op.put(item.key, item.value, kv.mod_revision if kv else 0, lease=leases.get(item.group, 0))
           for item, kv in todo]
    lost = target.apply(ops, max_ops=max_ops)
    if lost:
        raise V2CopyError(f"{len(lost)} keys changed in the target while copying (first: {lost[0].key}); rerun")
    result["leases"] = leases
    result["verification"] = _verify_copy(target, items)
    if not result["verification"]["ok"]:
        raise V2CopyError(f"verification failed: {result['verification']}", verification=result["verification"])
    return result


def _verify_copy(target: EtcdClient, items: list[_Item]) -> dict:
    """Re-read the copied keys; compare count and a hash over sorted (key, value) pairs."""
    want = hashlib.sha256()
    for key, value in sorted((i.key, i.value) for i in items):
        want.update(key.encode() + b"\0" + value + b"\n")
    found = target.get_many(sorted(i.key for i in items)) if items else {}
    have = hashlib.sha256()
    for key in sorted(found):
        have.update(key.encode() + b"\0" + found[key].value + b"\n")
    return {"ok": len(found) == len(items) and want.hexdigest() == have.hexdigest(), "expected": len(items),
            "found": len(found), "sha256": have.hexdigest()}
