#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calico_topology_drift_info
short_description: Compare the Calico datastore with the inventory and the topology plan
version_added: 0.1.0
description:
  - Reads the Calico v3 Nodes and BGPPeers from etcd (in pages) and reports three kinds of drift, each as a list
    and as a row of a short table.
  - Nodes in the datastore that are not in O(inventory_nodes) (joined by autoscaling, or left behind after they
    left the inventory; M(kubescale.calico.calico_node_remove) removes the latter).
  - Reflectors in the datastore (Nodes with C(spec.bgp.routeReflectorClusterID)) that O(plan_reflectors) does not
    have, or has with another cluster ID.
  - BGPPeers nobody manages, that is without the label C(kubescale.io/managed-by).
  - Writes nothing; runs the same in check mode.
author:
  - kubescale.calico developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes.INFO_MODULE
options:
  inventory_nodes:
    description: The Calico node names of the inventory's hosts.
    type: list
    elements: str
    required: true
  plan_reflectors:
    description:
      - The in-cluster reflectors of the plan, node name to cluster ID, for example
        C(plan.reflectors | items2dict(key_name='name', value_name='cluster_id')). Empty for a full-mesh plan.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: What drifted?
  kubescale.calico.calico_topology_drift_info:
    endpoints: "{{ calico_etcd_endpoints }}"
    inventory_nodes: "{{ groups['worker'] + groups['management'] }}"
    plan_reflectors: "{{ plan.reflectors | items2dict(key_name='name', value_name='cluster_id') }}"
  register: drift

- name: Show it
  ansible.builtin.debug:
    msg: "{{ drift.table }}"
"""

RETURN = r"""
nodes_not_in_inventory:
  description: Names of Nodes in the datastore that the inventory does not have.
  returned: always
  type: list
  elements: str
reflectors_not_in_plan:
  description: Reflectors in the datastore that the plan does not have with their cluster ID.
  returned: always
  type: list
  elements: dict
  sample: [{name: mgmt-9, cluster_id: 224.0.0.2, planned_cluster_id: null}]
unmanaged_peers:
  description: Names of BGPPeers without the C(kubescale.io/managed-by) label.
  returned: always
  type: list
  elements: str
counts:
  description: Length of each list, and how many Nodes and BGPPeers were read.
  returned: always
  type: dict
drift:
  description: Whether any of the three lists is not empty.
  returned: always
  type: bool
table:
  description: The findings as a short table (one line per kind, the first names of each).
  returned: always
  type: list
  elements: str
  sample:
    - "drift                       count  first"
    - "Nodes not in the inventory  2      worker-1001, worker-1002"
    - "reflectors not in the plan  1      mgmt-9 (224.0.0.2)"
    - "BGPPeers nobody manages     0      -"
"""

from ansible_collections.kubescale.calico.plugins.module_utils.calico.module import etcd_module, run
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.topology.drift import (
    DriftError,
    check_input,
    drift_report,
)


def main() -> None:
    module = etcd_module({
        "inventory_nodes": {"type": "list", "elements": "str", "required": True},
        "plan_reflectors": {"type": "dict", "default": {}},
    })
    try:
        names, reflectors = check_input(module.params["inventory_nodes"], module.params["plan_reflectors"])
    except DriftError as exc:
        module.fail_json(msg=str(exc))
    run(module, lambda client: drift_report(CalicoStore(client, check_mode=True), names, reflectors))


if __name__ == "__main__":
    main()
