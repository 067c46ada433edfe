# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every etcd-talking module shares: the argument spec and the one error-to-fail_json spot."""

from __future__ import annotations

import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubescale.calico.plugins.module_utils.calico_resources import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico_store import CalicoStore, StoreError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd import (
    ETCD_CONNECTION_ARGSPEC,
    ETCD_CONNECTION_REQUIRED_TOGETHER,
    EtcdError,
    client_from_module,
)

EXPECTED_ERRORS: tuple[type[Exception], ...] = (EtcdError, ValidationError, StoreError)


def etcd_module(argument_spec: dict, **kwargs) -> AnsibleModule:
    """An AnsibleModule whose options are ``argument_spec`` plus the shared etcd connection options."""
    spec = copy.deepcopy(ETCD_CONNECTION_ARGSPEC)
    spec.update(argument_spec)
    together = list(kwargs.pop("required_together", [])) + ETCD_CONNECTION_REQUIRED_TOGETHER
    return AnsibleModule(argument_spec=spec, required_together=together,
                         supports_check_mode=kwargs.pop("supports_check_mode", True), **kwargs)


def run(module: AnsibleModule, action, *errors: type[Exception]) -> None:
    """Call ``action(client)`` and exit with its result dict; expected errors become fail_json.

    Validate the module's input before calling this, so bad input fails without touching etcd.
    """
    client = client_from_module(module)
    try:
        result = action(client)
    except EXPECTED_ERRORS + errors as exc:
        module.fail_json(msg=str(exc))
    finally:
        client.close()
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


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
