#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calico_node_remove
short_description: Remove Calico nodes from etcd the way Calico's own node deletion does
version_added: 0.1.0
description:
  - Removes Calico nodes from the Calico v3 datastore in etcd, named in O(nodes), or every Node this collection
    manages (label C(kubescale.io/managed-by=kubescale.calico)) that is not in O(keep).
  - "For each node, in Calico's order: release the IPs of its WorkloadEndpoints and its tunnel addresses in the IPAM
    blocks and handles; delete those WorkloadEndpoints; release its IPAM block affinities and delete its host IPAM
    data; delete the BGPPeers with C(spec.node) equal to the node; delete FelixConfiguration and BGPConfiguration
    C(node.<name>); delete the Node."
  - Writes are compare-and-swap on what was read, in transactions of at most 128 operations, in that order. A
    transaction that loses a race stops the run there; the datastore is read again and the rest planned again.
    Every step treats "already gone" as done, so a rerun after a crash finishes the job.
  - Refuses, before any write, to remove the last reflectors of a route reflector cluster (Nodes with the same
    C(spec.bgp.routeReflectorClusterID)) while nodes that stay still peer with that cluster; apply a plan that
    gives them other reflectors first. With O(require_spread), also refuses to remove the last reflector a cluster
    has in a failure domain (Node labels C(kubescale.io/zone) and C(kubescale.io/rack)).
  - Nodes of which nothing is stored are listed in RV(not_found), not an error; a rerun reports no change.
  - Check mode computes the same plan and writes nothing; diff mode gives every key before and after.
author:
  - kubescale.calico developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  state:
    description: The explicit switch; V(absent) is the only value, so that a removal is never implied.
    type: str
    required: true
    choices: [absent]
  nodes:
    description: Names of the Calico nodes to remove. Mutually exclusive with O(keep).
    type: list
    elements: str
  keep:
    description:
      - The node names that stay (the inventory's). Every Node labelled C(kubescale.io/managed-by=kubescale.calico)
        that is not listed is removed; Nodes without that label (for example joined by autoscaling) are never
        removed this way. Needs O(remove_unlisted). An empty list is refused.
    type: list
    elements: str
  remove_unlisted:
    description: Confirms the O(keep) mode (removing every managed Node that is not listed).
    type: bool
    default: false
  require_spread:
    description: Also refuse to remove the last reflector a reflector cluster has in a failure domain (zone/rack).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Remove two nodes
  kubescale.calico.calico_node_remove:
    endpoints: "{{ calico_etcd_endpoints }}"
    ca_cert: ~/.kubescale/calico-etcd-pki/ca.crt
    client_cert: ~/.kubescale/calico-etcd-pki/admin.crt
    client_key: ~/.kubescale/calico-etcd-pki/admin.key
    state: absent
    nodes: [worker-0998, worker-0999]
  delegate_to: localhost
  run_once: true

- name: Remove every managed node that left the inventory (see playbooks/remove-nodes.yml)
  kubescale.calico.calico_node_remove:
    endpoints: "{{ calico_etcd_endpoints }}"
    state: absent
    keep: "{{ groups['all'] | map('extract', hostvars, 'calico_node_name') | list }}"
    remove_unlisted: true
    require_spread: true
  check_mode: true
  register: would_go
"""

RETURN = r"""
nodes:
  description: The nodes removed (or, in check mode, that would be removed).
  returned: always
  type: list
  elements: str
not_found:
  description: Named nodes of which nothing is stored.
  returned: always
  type: list
  elements: str
summary:
  description: Counts of etcd keys deleted and updated per kind, and of IP addresses released.
  returned: always
  type: dict
  sample:
    deleted: {Node: 1, WorkloadEndpoint: 3, BlockAffinity: 1, BGPPeer: 1, FelixConfiguration: 1, IPAMHandle: 3}
    updated: {IPAMBlock: 1}
    released_ips: 4
deleted:
  description: etcd keys deleted, in the order they were deleted.
  returned: always
  type: list
  elements: str
updated:
  description: etcd keys updated (IPAM blocks that keep other allocations, handles that keep other blocks).
  returned: always
  type: list
  elements: str
released_ips:
  description: IP addresses released in IPAM.
  returned: always
  type: list
  elements: str
actions:
  description: One sentence per node.
  returned: always
  type: list
  elements: str
  sample: ["removed Node worker-0999: released 4 IPs; deleted 3 WorkloadEndpoints, 1 BlockAffinity, 1 BGPPeer"]
retries:
  description: Lost races re-read and planned again.
  returned: always
  type: int
diff:
  description: Each key written, before and after (null when deleted).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.kubescale.calico.plugins.module_utils.calico.module import etcd_module, run
from ansible_collections.kubescale.calico.plugins.module_utils.calico.node_removal import (
    NodeRemovalError,
    make_request,
    remove_nodes,
)


def main() -> None:
    module = etcd_module({
        "state": {"type": "str", "required": True, "choices": ["absent"]},
        "nodes": {"type": "list", "elements": "str"},
        "keep": {"type": "list", "elements": "str"},
        "remove_unlisted": {"type": "bool", "default": False},
        "require_spread": {"type": "bool", "default": False},
    }, mutually_exclusive=[["nodes", "keep"]])
    p = module.params
    try:
        request = make_request(p["nodes"], p["keep"], p["remove_unlisted"], p["require_spread"])
    except NodeRemovalError as exc:
        module.fail_json(msg=str(exc))
    run(module, lambda client: remove_nodes(client, request, module.check_mode, bool(module._diff)),
        NodeRemovalError)


if __name__ == "__main__":
    main()
