#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: etcd_v2_to_v3
short_description: Copy an etcd v2 key prefix into the etcd v3 keyspace, online
version_added: 0.1.0
description:
  - Reads every key under O(prefix) through the v2 API of O(source) and writes it into the v3 keyspace
    of the target (the connection options), optionally under O(destination_prefix) instead of O(prefix).
  - Unlike C(etcdctl migrate) it runs online, against any cluster, and keeps TTLs. Keys with a TTL are
    written with a lease of their remaining TTL (C(etcdctl migrate) makes them permanent, or drops them
    with C(--no-ttl)). The keys inside a v2 directory that has a TTL share one lease with the directory's
    remaining TTL, so they expire together as in v2 (a key's own shorter TTL wins).
  - Hidden v2 nodes (names starting with C(_)) are never listed by the v2 API; it returns them only when
    asked for by their exact name. Name them in O(hidden_keys) to copy them (with everything listed below
    them); they cannot be discovered.
  - Directories are dropped (v3 has none). Only keys whose value differs are written, in guarded
    transactions of at most 128 operations; the copy is verified by re-reading (count and sha256).
  - For Calico data, use M(kubescale.calico.calico_datastore_migrate), which converts the v1 model.
author:
  - kubescale.calico developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  prefix:
    description: The v2 key prefix to copy (a directory such as V(/registry) or a single key).
    type: str
    required: true
  destination_prefix:
    description:
      - Write the keys under this v3 prefix instead of O(prefix).
      - With O(prefix=/a) and V(/b), the v2 key V(/a/x) becomes the v3 key V(/b/x).
    type: str
  hidden_keys:
    description:
      - Hidden v2 keys or directories to copy as well, relative to O(prefix) (V(_meta), V(sub/_lock)) or
        absolute under it. Each must exist and have a path segment starting with C(_).
      - A hidden directory is read with everything the v2 API lists in it; hidden nodes inside it must be
        named too.
    type: list
    elements: str
    default: []
  split_depth:
    description: Directories this deep below O(prefix) are each read in one request (memory vs. requests).
    type: int
    default: 2
  source:
    description: The etcd v2 API to read (etcd must run with C(--enable-v2=true)).
    type: dict
    required: true
    suboptions:
      endpoints:
        description: v2 client URLs, tried in order.
        type: list
        elements: str
        default: ["http://127.0.0.1:2379"]
      ca_cert:
        description: CA bundle for the source's server certificates.
        type: path
      client_cert:
        description: Client certificate (with O(source.client_key)).
        type: path
      client_key:
        description: Key of O(source.client_cert).
        type: path
      user:
        description: Basic-auth user of the v2 API.
        type: str
      password:
        description: Password of O(source.user).
        type: str
      timeout:
        description: Seconds per request.
        type: float
        default: 10.0
"""

EXAMPLES = r"""
- name: Copy the flannel network config from etcd v2 into v3
  kubescale.calico.etcd_v2_to_v3:
    prefix: /coreos.com/network
    source:
      endpoints: ["http://10.0.0.5:2379"]
    endpoints: ["https://10.0.0.5:2379"]
    ca_cert: /etc/etcd/ca.pem

- name: Copy a prefix with two hidden keys the v2 API does not list
  kubescale.calico.etcd_v2_to_v3:
    prefix: /app
    hidden_keys: [_leader, config/_schema]
    source:
      endpoints: ["http://10.0.0.5:2379"]
    endpoints: ["https://10.0.0.5:2379"]
"""

RETURN = r"""
source_keys:
  description: Keys (not directories) found under the prefix.
  returned: always
  type: int
copied:
  description: Keys written (or that would be written in check mode).
  returned: always
  type: int
created:
  description: Keys that did not exist in the target.
  returned: always
  type: int
updated:
  description: Keys whose value (or missing lease) differed.
  returned: always
  type: int
unchanged:
  description: Keys already in place.
  returned: always
  type: int
ttl_keys:
  description: Keys with a TTL of their own or of a directory above them (written with a lease).
  returned: always
  type: int
hidden_keys:
  description: Hidden keys copied (read through O(hidden_keys)).
  returned: always
  type: int
leases:
  description:
    - Lease ID per lease granted. Keys of one TTL directory share a lease, keyed by the directory's v2 key;
      other keys with a TTL share one lease per remaining TTL, keyed like V(300s).
  returned: always
  type: dict
  sample: {"/coreos.com/network/subnets": 7587869574585623051, "300s": 7587869574585623053}
verification:
  description: Count and sha256 of the copied keys as re-read from the target.
  returned: unless check mode
  type: dict
"""

import copy

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import client_from_module, etcd_module
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import (
    V2_CONNECTION_ARGSPEC,
    EtcdV2Error,
    client_from_params,
)
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2_copy import (
    V2CopyError,
    check_copy_args,
    copy_v2_prefix,
)


def main() -> None:
    module = etcd_module(dict(
        prefix=dict(type="str", required=True),
        destination_prefix=dict(type="str"),
        hidden_keys=dict(type="list", elements="str", default=[], no_log=False),
        split_depth=dict(type="int", default=2),
        source=dict(type="dict", required=True, options=copy.deepcopy(V2_CONNECTION_ARGSPEC)),
    ))
    p = module.params
    try:
        check_copy_args(p["prefix"], p["destination_prefix"], p["hidden_keys"], p["split_depth"])
    except V2CopyError as exc:
        module.fail_json(msg=str(exc))
    target = client_from_module(module)
    try:
        source = client_from_params(p["source"])
        result = copy_v2_prefix(source, target, p["prefix"], p["destination_prefix"], check_mode=module.check_mode,
                                split_depth=p["split_depth"], hidden_keys=p["hidden_keys"])
    except (V2CopyError, EtcdError, EtcdV2Error) as exc:
        module.fail_json(msg=str(exc))
    finally:
        target.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
