# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generic etcd v2 → v3 copy of any prefix, online (what ``etcdctl migrate`` does offline, plus TTLs)."""

from __future__ import annotations

import hashlib

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, EtcdClient, Op
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client


class V2CopyError(Exception):
    """A copy that cannot start (bad prefix) or whose result is not what the source holds."""

    def __init__(self, message: str, verification: dict | None = None) -> None:
        super().__init__(message)
        self.verification = verification


def _dest_key(key: str, prefix: str, dest: str | None) -> str:
    if dest is None:
        return key
    return dest.rstrip("/") + key[len(prefix.rstrip("/")):]


def copy_v2_prefix(source: EtcdV2Client, target: EtcdClient, prefix: str, destination_prefix: str | None = None,
                   check_mode: bool = False, split_depth: int = 2, max_ops: int = MAX_TXN_OPS) -> dict:
    """Copy every v2 key under ``prefix`` into v3 (optionally under another prefix), online.

    Directories are dropped (v3 has none); a key with a TTL is written with a lease of its remaining
    TTL (``etcdctl migrate`` makes it permanent or drops it); only keys whose value differs are
    written, in guarded transactions of at most ``max_ops``; the result is verified by count and hash.
    """
    if not prefix.startswith("/"):
        raise V2CopyError(f"prefix: {prefix!r} must start with '/'")
    if destination_prefix is not None and not destination_prefix.startswith("/"):
        raise V2CopyError(f"destination_prefix: {destination_prefix!r} must start with '/'")
    nodes = list(source.walk(prefix, split_depth=split_depth))
    items = [(_dest_key(n.key, prefix, destination_prefix), n.value.encode(), n.ttl or 0) for n in nodes]
    current = target.get_many([k for k, _value, _ttl in items]) if items else {}
    todo = []
    unchanged = 0
    for key, value, ttl in items:
        kv = current.get(key)
        if kv is not None and kv.value == value and (not ttl or kv.lease):
            unchanged += 1
            continue
        todo.append((key, value, ttl, kv))
    created = sum(1 for t in todo if t[3] is None)
    result = {"changed": bool(todo), "copied": len(todo), "created": created, "updated": len(todo) - created,
              "unchanged": unchanged, "ttl_keys": sum(1 for _key, _value, ttl in items if ttl),
              "source_keys": len(items), "leases": {}}
    if check_mode or not todo:
        result["verification"] = _verify_copy(target, items) if not check_mode else None
        return result
    leases: dict[int, int] = {}
    for _key, _value, ttl, _kv in todo:
        if ttl and ttl not in leases:
            leases[ttl] = target.grant_lease(ttl)
    ops = [Op.put(key, value, kv.mod_revision if kv else 0, lease=leases.get(ttl, 0)) for key, value, ttl, kv in todo]
    lost = target.apply(ops, max_ops=max_ops)
    if lost:
        raise V2CopyError(f"{len(lost)} keys changed in the target while copying (first: {lost[0].key}); rerun")
    result["leases"] = {str(ttl): lease for ttl, lease in leases.items()}
    result["verification"] = _verify_copy(target, items)
    if not result["verification"]["ok"]:
        raise V2CopyError(f"verification failed: {result['verification']}", verification=result["verification"])
    return result


def _verify_copy(target: EtcdClient, items: list[tuple[str, bytes, int]]) -> dict:
    """Re-read the copied keys; compare count and a hash over sorted (key, value) pairs."""
    want = hashlib.sha256()
    for key, value, _ttl in sorted(items):
        want.update(key.encode() + b"\0" + value + b"\n")
    found = target.get_many(sorted(k for k, _value, _ttl in items)) if items else {}
    have = hashlib.sha256()
    for key in sorted(found):
        have.update(key.encode() + b"\0" + found[key].value + b"\n")
    return {"ok": len(found) == len(items) and want.hexdigest() == have.hexdigest(), "expected": len(items),
            "found": len(found), "sha256": have.hexdigest()}
