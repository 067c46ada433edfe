#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_info
short_description: Report the health of an etcd v3 cluster, per endpoint
version_added: 0.1.0
description:
  - Asks every endpoint for its status (version, member ID, leader, database size, raft index and
    term, revision) and does a quorum read on it, the way C(etcdctl endpoint health) does; lists the
    members and the active alarms.
  - An endpoint that cannot be reached does not fail the module; it is reported with
    C(reachable=false) and a one-line error, and the cluster is reported as not healthy.
  - Member IDs are hex strings, as C(etcdctl) prints them.
options:
  all_members:
    description:
      - Probe the client URLs of every member in the member list (like C(etcdctl --cluster))
        instead of only O(endpoints). O(endpoints) is then only used to read the member list.
    type: bool
    default: false
  fail_on_unhealthy:
    description:
      - Fail when the cluster is not healthy (an endpoint unreachable or without quorum, an active
        alarm, no leader, a member added but not started). The result, with RV(problems), is still
        returned.
    type: bool
    default: false
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
  - kubescale.calico.attributes.info_module
notes:
  - A quorum read on an endpoint of a cluster that has lost quorum waits for O(timeout) seconds.
  - With auth enabled a user without read access to the key C(health) still counts as healthy
    (the same rule as C(etcdctl endpoint health)); listing members and alarms needs no special role.
seealso:
  - module: kubescale.calico.etcd_member
author:
  - kubescale.calico developers (@kubescale)
"""

EXAMPLES = r"""
- name: Health of the Calico etcd, every member probed
  kubescale.calico.etcd_info:
    endpoints: [https://10.0.0.11:2379, https://10.0.0.12:2379, https://10.0.0.13:2379]
    ca_cert: /etc/calico-etcd/pki/ca.crt
    client_cert: /etc/calico-etcd/pki/admin.crt
    client_key: /etc/calico-etcd/pki/admin.key
  register: etcd

- name: Show the leader and unreachable endpoints
  ansible.builtin.debug:
    msg: >-
      leader {{ etcd.leader.name }};
      down: {{ etcd.endpoints | rejectattr('reachable') | map(attribute='endpoint') | list }}

- name: Gate a rolling restart on a healthy cluster
  kubescale.calico.etcd_info:
    endpoints: ["https://10.0.0.11:2379"]
    all_members: true
    fail_on_unhealthy: true
    ca_cert: /etc/calico-etcd/pki/ca.crt
    client_cert: /etc/calico-etcd/pki/admin.crt
    client_key: /etc/calico-etcd/pki/admin.key
"""

RETURN = r"""
healthy:
  description: Every probed endpoint answered a quorum read, one leader, no alarms, every member started.
  returned: always
  type: bool
problems:
  description: One sentence per reason the cluster is not healthy.
  returned: always
  type: list
  elements: str
  sample: ["etcd http://127.0.0.1:2381: connection refused or unreachable"]
endpoints:
  description: One entry per probed endpoint, in order.
  returned: always
  type: list
  elements: dict
  contains:
    endpoint: {description: The client URL probed., type: str}
    reachable: {description: The endpoint answered a status request., type: bool}
    healthy: {description: It answered a quorum read and its member has no alarm., type: bool}
    error: {description: "One-line error when not reachable or not healthy, else null.", type: str}
    version: {description: etcd server version., type: str}
    member_id: {description: ID (hex) of the member behind the endpoint., type: str}
    name: {description: Name of that member., type: str}
    is_leader: {description: That member is the raft leader., type: bool}
    leader: {description: ID (hex) of the leader as this member sees it., type: str}
    db_size: {description: Backend database size in bytes (counts against quota-backend-bytes)., type: int}
    raft_index: {description: Raft index of the member., type: int}
    raft_term: {description: Raft term of the member., type: int}
    revision: {description: Current key-value store revision., type: int}
    cluster_id: {description: Cluster ID (hex)., type: str}
    alarms: {description: "Active alarms of this member: NOSPACE, CORRUPT.", type: list, elements: str}
  sample:
    - endpoint: http://127.0.0.1:2379
      reachable: true
      healthy: true
      error: null
      version: 3.4.23
      member_id: 8e9e05c52164694d
      name: etcd0
      is_leader: true
      leader: 8e9e05c52164694d
      db_size: 24576
      raft_index: 8
      raft_term: 2
      revision: 1
      alarms: []
members:
  description: The member list (empty when no endpoint answered).
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: Member ID (hex)., type: str}
    name: {description: Member name (empty until an added member has started)., type: str}
    peer_urls: {description: Peer URLs., type: list, elements: str}
    client_urls: {description: Advertised client URLs., type: list, elements: str}
    started: {description: The member has started (it has a name)., type: bool}
    is_leader: {description: The member is the leader., type: bool}
    healthy: {description: "Health of the member if one of its endpoints was probed, else null.", type: bool}
member_count:
  description: Number of members.
  returned: always
  type: int
quorum:
  description: Members needed for quorum (null when the member list is unavailable).
  returned: always
  type: int
failures_tolerated:
  description: Members that may fail while the cluster keeps quorum.
  returned: always
  type: int
healthy_endpoints:
  description: Number of healthy probed endpoints.
  returned: always
  type: int
leader:
  description: The leader's id and name, or null when there is none or the endpoints disagree.
  returned: always
  type: dict
  sample: {id: 8e9e05c52164694d, name: etcd0}
cluster_id:
  description: Cluster ID (hex).
  returned: always
  type: str
version:
  description: etcd version (a list when the reachable members run different versions).
  returned: always
  type: raw
alarms:
  description: Active alarms of the cluster.
  returned: always
  type: list
  elements: dict
  sample: [{member_id: 8e9e05c52164694d, name: etcd0, alarm: NOSPACE}]
"""

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import etcd_module, run
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.ops import EtcdOpsError, cluster_info


def main() -> None:
    module = etcd_module({
        "all_members": {"type": "bool", "default": False},
        "fail_on_unhealthy": {"type": "bool", "default": False},
    })

    def action(client) -> dict:
        result = cluster_info(client, all_members=module.params["all_members"])
        if module.params["fail_on_unhealthy"] and not result["healthy"]:
            result.update(failed=True, msg="etcd cluster is not healthy: " + "; ".join(result["problems"]))
        return result

    run(module, action, EtcdOpsError)


if __name__ == "__main__":
    main()
