#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bgp_topology
short_description: Apply a BGP topology plan (full mesh or route reflectors) to Calico's etcd in one call
version_added: 0.1.0
description:
  - Applies the plan made by the P(kubescale.calico.bgp_topology_plan#filter) filter to the Calico v3
    datastore in etcd, that is Node objects (BGP address, AS number, route reflector cluster ID, labels), BGPPeers
    and the BGPConfiguration C(default). Run it once, on the controller (C(run_once), C(delegate_to)).
  - Node objects are merged, not replaced. The module owns the C(kubescale.io/) labels the planner writes
    and C(spec.bgp.ipv4Address), C(asNumber) and C(routeReflectorClusterID); other labels and fields
    (calico-node's own) are kept. A stored C(ipv4Address) with the planned IP keeps its prefix length.
  - "Safe order. Towards route reflectors: Nodes (cluster IDs, labels), then BGPPeers, then the mesh off,
    then old peers pruned. Back to a full mesh: the mesh on, then Nodes (cluster IDs and labels removed),
    then the reflector peers pruned. O(phase=prepare) stops before the subtractive steps so that a
    playbook can check the BGP sessions (M(kubescale.calico.bgp_status)) before O(phase=finish)."
  - Prunes only BGPPeers labelled C(kubescale.io/managed-by=kubescale.calico). Writes are compare-and-swap
    in batches; only objects that differ are written, so a rerun changes nothing.
  - Check mode reports the whole change set; diff mode adds each object before and after.
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
  plan:
    description: The plan from the P(kubescale.calico.bgp_topology_plan#filter) filter.
    type: dict
    required: true
  phase:
    description:
      - V(all) applies everything in the safe order. V(prepare) applies only the additive steps (towards
        reflectors, Nodes and peers; back to mesh, the mesh on). V(finish) applies everything, so it
        completes a V(prepare).
    type: str
    choices: [all, prepare, finish]
    default: all
  prune:
    description: Delete BGPPeers this collection created that the plan no longer has.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Plan from the inventory and apply, once, from the controller
  kubescale.calico.bgp_topology:
    endpoints: "{{ calico_etcd_endpoints }}"
    ca_cert: /etc/kubescale/pki/ca.pem
    client_cert: /etc/kubescale/pki/client.pem
    client_key: /etc/kubescale/pki/client-key.pem
    plan: "{{ groups | kubescale.calico.bgp_topology_plan(hostvars) }}"
  run_once: true
  delegate_to: localhost

- name: Two steps with a session check in between
  block:
    - name: Reflector config and peers, mesh still on
      kubescale.calico.bgp_topology:
        plan: "{{ topology }}"
        phase: prepare
    - name: Check sessions on the reflectors
      kubescale.calico.bgp_status:
      delegate_to: "{{ item }}"
      loop: "{{ topology.reflectors | map(attribute='host') }}"
    - name: Mesh off, old peers pruned
      kubescale.calico.bgp_topology:
        plan: "{{ topology }}"
        phase: finish
  run_once: true
"""

RETURN = r"""
actions:
  description: What was done, in plain sentences, in the order it was done.
  returned: always
  type: list
  elements: str
  sample: ["updated Node mgmt-1 (labels.kubescale.io/route-reflector, spec.bgp.routeReflectorClusterID)",
           "created BGPPeer kubescale-rr-mesh", "updated BGPConfiguration default (spec.nodeToNodeMeshEnabled)"]
created:
  description: etcd keys created.
  returned: always
  type: list
  elements: str
updated:
  description: etcd keys updated.
  returned: always
  type: list
  elements: str
deleted:
  description: etcd keys deleted (pruned BGPPeers).
  returned: always
  type: list
  elements: str
unchanged:
  description: Number of planned objects already as planned.
  returned: always
  type: int
retries:
  description: Lost races re-read and retried.
  returned: always
  type: int
mode:
  description: The plan's mode.
  returned: always
  type: str
mesh_before:
  description: Whether the node-to-node mesh was on before this call.
  returned: always
  type: bool
reflectors_before:
  description: In-cluster reflectors found in etcd before this call, node name to cluster ID (usable as the
    planner's C(previous) input).
  returned: always
  type: dict
reflectors:
  description: In-cluster reflectors of the plan, node name to cluster ID.
  returned: always
  type: dict
diff:
  description: Each object written, before and after, keyed by etcd key.
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.module import etcd_module, run, store_for
from ansible_collections.kubescale.calico.plugins.module_utils.topology.apply import (
    PHASES,
    TopologyApplyError,
    apply_plan,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.plan_shape import validate_plan_shape


def main() -> None:
    module = etcd_module({
        "plan": {"type": "dict", "required": True},
        "phase": {"type": "str", "choices": list(PHASES), "default": "all"},
        "prune": {"type": "bool", "default": True},
    })
    p = module.params
    try:
        validate_plan_shape(p["plan"])  # before connecting: a malformed plan needs no etcd to be refused
    except ValidationError as exc:
        module.fail_json(msg=str(exc))
    run(module, lambda client: apply_plan(store_for(module, client), p["plan"], p["phase"], p["prune"]),
        TopologyApplyError)


if __name__ == "__main__":
    main()
