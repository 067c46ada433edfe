# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a module reaches etcd: the shared connection options and the client built from them.

Every etcd-talking module declares its options with :func:`etcd_module` (documented by the
``kubescale.calico.etcd_connection`` doc fragment) and runs with :func:`run`, the one place where
expected errors become ``fail_json``. ``endpoints`` has no default: the roles pass the dedicated
Calico etcd's endpoints from the ``calico_defaults`` role (``calico_etcd_endpoints``).
"""

from __future__ import annotations

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import (
    DEFAULT_TIMEOUT,
    ETCD3_IMPORT_ERROR,
    HAS_ETCD3,
    REQUIRED_LIBS,
    EtcdClient,
    EtcdError,
    check_timeout,
)

ETCD_CONNECTION_ARGSPEC = dict(
    endpoints=dict(type="list", elements="str", required=True),
    ca_cert=dict(type="path", aliases=["cacert"]),
    client_cert=dict(type="path", aliases=["cert"]),
    client_key=dict(type="path", aliases=["key"], no_log=False),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    timeout=dict(type="float", default=DEFAULT_TIMEOUT),
)
ETCD_CONNECTION_REQUIRED_TOGETHER = [["client_cert", "client_key"], ["user", "password"]]


def connection_spec(argument_spec: dict | None = None) -> dict:
    """The shared connection options plus a module's own (a deep copy: callers may change it)."""
    spec = copy.deepcopy(ETCD_CONNECTION_ARGSPEC)
    spec.update(argument_spec or {})
    return spec


def etcd_module(argument_spec: dict, **kwargs) -> AnsibleModule:
    """An AnsibleModule whose options are ``argument_spec`` plus the shared etcd connection options."""
    together = list(kwargs.pop("required_together", [])) + ETCD_CONNECTION_REQUIRED_TOGETHER
    module = AnsibleModule(argument_spec=connection_spec(argument_spec), required_together=together,
                           supports_check_mode=kwargs.pop("supports_check_mode", True), **kwargs)
    try:
        check_timeout(module.params["timeout"])
    except EtcdError as exc:
        module.fail_json(msg=str(exc))
    return module


def client_from_params(params: dict) -> EtcdClient:
    """An EtcdClient from module parameters named as in ETCD_CONNECTION_ARGSPEC."""
    return EtcdClient(endpoints=params["endpoints"], ca_cert=params.get("ca_cert"),
                      client_cert=params.get("client_cert"), client_key=params.get("client_key"),
                      user=params.get("user"), password=params.get("password"),
                      timeout=DEFAULT_TIMEOUT if params.get("timeout") is None else params["timeout"])


def client_from_module(module) -> EtcdClient:
    """The client for an AnsibleModule, failing it cleanly when etcd3 is missing or the options are wrong."""
    if not HAS_ETCD3:
        module.fail_json(msg=missing_required_lib(REQUIRED_LIBS), exception=ETCD3_IMPORT_ERROR)
    try:
        return client_from_params(module.params)
    except EtcdError as exc:
        module.fail_json(msg=str(exc))


def run(module: AnsibleModule, action, *errors: type[Exception]) -> None:
    """Call ``action(client)`` and exit with its result dict; ``EtcdError`` and ``errors`` become fail_json.

    Validate the module's input before calling this, so bad input fails without touching etcd.
    """
    client = client_from_module(module)
    try:
        result = action(client)
    except (EtcdError, *errors) as exc:
        module.fail_json(msg=str(exc))
    finally:
        client.close()
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
