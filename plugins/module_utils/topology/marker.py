# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The applied-topology marker: a no-op reapply proven with one small read instead of reading every Node.

After a run that wrote, a check-mode re-run from a fresh read checks that nothing more is to be
written; then the marker key records: a digest of the plan and the options, the etcd revision R
taken *before* that re-run read anything, how many keys each managed range held in that read, and
the re-run's result (what a no-op run returns). A run that writes nothing writes no marker either.

A later run with the same digest returns that result when one request (the marker, and for every
managed range — all Nodes, all BGPPeers, BGPConfiguration ``default`` — its key count and newest
mod_revision, keys only) shows that no key in a range was put after R and that each holds as many
keys as the run read. That is proof that the range is as it was read:
every key there now is unchanged since R, so it was read as it is; a key put or re-created after R
would show; and with as many keys as were read, none was deleted. The result of a run is a function
of the plan, the options and those ranges (validation and planning read nothing else), so the
recorded result is the one a full run would return. Anything else (an edit in etcd, a deletion,
another plan, options or marker format, an unreadable or unwritable marker) means a full run.

The key is outside ``/calico/``, so Calico never sees it (as the migration's marker).
"""

from __future__ import annotations

import hashlib
import json
import marshal

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import key_for, resource_kind
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdError

MARKER_KEY = "/kubescale/calico-topology/applied"
# Bump when the rules change what a run writes or returns for the same plan and datastore, so that a
# marker recorded by an older version of this code is not trusted.
MARKER_FORMAT = 1


def managed_ranges() -> list[tuple[str, bool]]:
    """The (key, is_prefix) ranges a run's outcome depends on, in the order of the recorded counts."""
    return [
        (resource_kind("Node").prefix(None), True),
        (resource_kind("BGPPeer").prefix(None), True),
        (key_for("BGPConfiguration", "default"), False),
    ]


def plan_digest(plan: dict, options: tuple) -> str | None:
    """A digest of the plan and the options, or None for a plan that marshal cannot encode.

    marshal encodes every JSON type exactly (bool apart from int, 1 apart from 1.0, key order kept)
    and loads back to an equal value, so equal bytes mean an equal plan; a plan with its keys in
    another order only costs a full run. Format 2, because later formats mark objects referenced
    more than once (the bytes would then depend on who else holds a string of the plan); it is
    still about twice as fast as json.dumps.
    """
    try:
        data = marshal.dumps((MARKER_FORMAT, options, plan), 2)
    except ValueError:
        return None
    return hashlib.sha256(data).hexdigest()


class AppliedMarker:
    """The marker of one store's etcd, for one plan and its options."""

    def __init__(self, client, plan: dict, options: tuple) -> None:
        self.client = client
        self.digest = plan_digest(plan, options) if client is not None else None
        self.revision: int | None = None  # taken before the run's reads; None: no marker this run

    def cached_result(self) -> dict | None:
        """The recorded result when the marker proves the datastore unchanged since, else None.

        Either way the revision read here is where a run that follows starts from."""
        if self.digest is None:
            return None
        try:
            kv, heads, self.revision = self.client.newest(MARKER_KEY, managed_ranges())
            if kv is None:
                return None
            recorded = json.loads(kv.value)
            if not isinstance(recorded, dict) or recorded.get("digest") != self.digest:
                return None
            since = int(recorded["revision"])
            unchanged = [int(count) for count in recorded["counts"]] == [count for count, _newest in heads] and all(
                newest <= since for _count, newest in heads)
        except (EtcdError, ValueError, KeyError, TypeError):
            return None
        result = recorded.get("result")
        return result if unchanged and isinstance(result, dict) else None

    def take_revision(self) -> None:
        """The revision before a run reads (for a run that did not start with :meth:`cached_result`)."""
        if self.digest is None:
            return
        try:
            self.revision = self.client.revision()
        except EtcdError:
            self.revision = None

    def record(self, counts: list[int], result: dict) -> None:
        """Record a no-op run's result, read from ``counts`` keys per managed range after :attr:`revision`.

        Best effort: a marker that cannot be written (e.g. etcd permissions limited to ``/calico/``)
        only means that the next run reads everything."""
        if self.digest is None or self.revision is None:
            return
        body = {"format": MARKER_FORMAT, "digest": self.digest, "revision": self.revision, "counts": counts,
                "result": {key: value for key, value in result.items() if key != "diff"}}
        try:
            self.client.put(MARKER_KEY, json.dumps(body, separators=(",", ":")))
        except (EtcdError, TypeError, ValueError):
            pass
