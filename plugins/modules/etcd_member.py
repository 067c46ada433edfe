#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_member
short_description: Add or remove an etcd v3 cluster member (scale out or in, replace a dead host)
version_added: 0.1.0
description:
  - O(state=present) registers a new member with the cluster (C(etcdctl member add)) and returns
    the C(--initial-cluster) string and C(--initial-cluster-state existing) the new member must be
    started with. Start it afterwards; until it has started it is listed without a name.
  - O(state=absent) removes a member found by O(name) or O(peer_urls) (C(etcdctl member remove)).
  - "Idempotent: a member with exactly these peer URLs (named O(name), or not yet started) is left
    as it is and the same RV(initial_cluster) is returned; an absent member is not an error."
  - "Refuses, before changing anything and with the reason: a name clash (O(name) used by a member
    with other peer URLs), peer URLs that belong to another member, adding while any current member
    is unhealthy or an added member has not started (etcd itself refuses such an add, and the new
    member would not count towards quorum until it runs), removing the last member, and a removal
    after which the healthy remaining members are fewer than the new quorum."
  - "To replace a dead host: remove the dead member (the remaining members keep quorum), add the
    new one, start it with the returned RV(initial_cluster), in that order."
  - Warns when the cluster ends up with an even number of members.
options:
  state:
    description: Whether the member should be in the cluster.
    type: str
    choices: [present, absent]
    default: present
  name:
    description:
      - Member name (its C(--name)). Required with O(state=present).
      - With O(state=absent) the member to remove (or give O(peer_urls)).
    type: str
  peer_urls:
    description:
      - The member's peer URLs (its C(--initial-advertise-peer-urls)), C(http(s)://host:port).
        Required with O(state=present).
      - With O(state=absent), finds the member by any of these URLs.
    type: list
    elements: str
  quorum_check:
    description:
      - Probe every member on its advertised client URLs before a change and refuse one that would
        endanger quorum (see the description).
      - Set to V(false) only when the members' client URLs cannot be reached from where the module
        runs; etcd's own C(--strict-reconfig-check) still applies.
    type: bool
    default: true
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be added or removed (the new member's id is null) after all checks.
  diff_mode:
    support: full
    details: The member list before and after, one C(name=peer URLs) line per member.
notes:
  - Member IDs are hex strings, as C(etcdctl) prints them.
  - Changing the peer URLs of an existing member is not supported; remove and add it.
seealso:
  - module: kubescale.calico.etcd_info
  - name: etcd runtime reconfiguration
    description: How etcd adds and removes members at runtime.
    link: https://etcd.io/docs/v3.4/op-guide/runtime-configuration/
author:
  - kubescale.calico developers (@kubescale)
"""

EXAMPLES = r"""
- name: Register the new member etcd4 with the running cluster
  kubescale.calico.etcd_member:
    endpoints: [https://10.0.0.11:2379, https://10.0.0.12:2379]
    ca_cert: /etc/calico-etcd/pki/ca.crt
    client_cert: /etc/calico-etcd/pki/admin.crt
    client_key: /etc/calico-etcd/pki/admin.key
    name: etcd4
    peer_urls: [https://10.0.0.14:2380]
  register: joined

- name: Start it with the cluster it joins
  ansible.builtin.template:
    src: calico-etcd.env.j2   # ETCD_INITIAL_CLUSTER={{ joined.initial_cluster }}, ..._STATE=existing
    dest: /etc/calico-etcd/calico-etcd.env
    mode: "0600"
  delegate_to: etcd4

- name: Replace a dead host - first remove its member
  kubescale.calico.etcd_member:
    endpoints: [https://10.0.0.11:2379, https://10.0.0.12:2379]
    ca_cert: /etc/calico-etcd/pki/ca.crt
    client_cert: /etc/calico-etcd/pki/admin.crt
    client_key: /etc/calico-etcd/pki/admin.key
    name: etcd3
    state: absent
"""

RETURN = r"""
member:
  description:
    - The member added, found or removed (null when O(state=absent) found nothing).
    - C(id) is null in check mode for a member not yet added.
  returned: always
  type: dict
  sample: {id: 5a5c7bc1b6e5a2f3, name: etcd4, peer_urls: ["https://10.0.0.14:2380"], started: false}
initial_cluster:
  description: C(--initial-cluster) for the new member, every member's name=peer URL including its own.
  returned: when O(state=present)
  type: str
  sample: etcd1=https://10.0.0.11:2380,etcd2=https://10.0.0.12:2380,etcd3=https://10.0.0.13:2380,etcd4=https://10.0.0.14:2380
initial_cluster_state:
  description: Always C(existing) - the new member joins a running cluster.
  returned: when O(state=present)
  type: str
  sample: existing
members:
  description: The member list after the change (what it would be, in check mode).
  returned: always
  type: list
  elements: dict
member_count:
  description: Number of members after the change.
  returned: always
  type: int
actions:
  description: What was done, in sentences.
  returned: always
  type: list
  elements: str
  sample: ["added member etcd4 (https://10.0.0.14:2380); start it with --initial-cluster-state existing"]
"""

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import etcd_module, run
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.ops import EtcdOpsError, ensure_member


def main() -> None:
    module = etcd_module(
        {
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "name": {"type": "str"},
            "peer_urls": {"type": "list", "elements": "str"},
            "quorum_check": {"type": "bool", "default": True},
        },
        required_if=[("state", "present", ["name", "peer_urls"]), ("state", "absent", ["name", "peer_urls"], True)],
    )
    params = module.params

    def action(client) -> dict:
        result = ensure_member(client, params["state"], params["name"], params["peer_urls"], module.check_mode,
                               params["quorum_check"])
        for warning in result.pop("warnings"):
            module.warn(warning)
        return result

    run(module, action, EtcdOpsError)


if __name__ == "__main__":
    main()
