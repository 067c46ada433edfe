# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the Calico resource modules share: a store that honours check mode/diff, and ensure present/absent."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore, StoreError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd import connection
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import etcd_module

__all__ = ["drop_unset", "ensure", "etcd_module", "resource", "run", "store_for"]

CALICO_ERRORS: tuple[type[Exception], ...] = (ValidationError, StoreError)


def run(module: AnsibleModule, action, *errors: type[Exception]) -> None:
    """:func:`etcd.connection.run` with the Calico layer's expected errors added."""
    connection.run(module, action, *CALICO_ERRORS, *errors)


def store_for(module: AnsibleModule, client):
    """A CalicoStore that honours check mode and computes diffs only when asked."""
    return CalicoStore(client, check_mode=module.check_mode, want_diff=bool(module._diff))


def ensure(store: CalicoStore, resources: list[dict], state: str = "present", merge: bool = True) -> dict:
    """Make ``resources`` present (create/update what differs) or absent; return the module result."""
    if state == "absent":
        refs = [(r.get("kind"), (r.get("metadata") or {}).get("name"), (r.get("metadata") or {}).get("namespace"))
                for r in resources]
        result = store.delete(refs)
    else:
        result = store.apply(resources, merge=merge)
    return result.as_dict(with_diff=store.want_diff)


def drop_unset(mapping: dict) -> dict:
    """Module options → spec fields: leave out what the user did not set."""
    return {key: value for key, value in mapping.items() if value is not None}


def resource(kind: str, name: str, spec: dict, labels: dict | None = None) -> dict:
    """A Calico v3 object built from typed module options."""
    metadata = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"kind": kind, "apiVersion": "projectcalico.org/v3", "metadata": metadata, "spec": drop_unset(spec)}
