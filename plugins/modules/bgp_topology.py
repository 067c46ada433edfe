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
  - "Hitless order: at every etcd revision in between, each node that had routes to every node keeps them.
    Towards route reflectors: BGPPeers, then client labels, then every new reflector's cluster ID in one
    transaction, then the mesh off, then old reflectors demoted in one transaction, then old peers pruned.
    Back to a full mesh: the mesh on, then every reflector demoted in one transaction, then labels
    removed, then the reflector peers pruned. O(phase=prepare) stops before the subtractive steps so that
    a playbook can check the BGP sessions (M(kubescale.calico.bgp_status)) before O(phase=finish)."
  - "Stable assignment: with O(keep_assignment) (the default) the reflector and client assignment stored
    in etcd (the C(kubescale.io/rr-cluster) and C(kubescale.io/rr-client-of) labels of earlier runs) is
    kept: where it differs from the plan handed in, the plan is made again from its own inputs with the
    stored assignment as C(previous). Adding or removing k non-reflector nodes re-peers at most those k."
  - "Nodes that are in the datastore but not in the plan (autoscaled before the inventory knew them) are
    reported (RV(unplanned_nodes)); in route reflector mode they peer with the first reflector cluster
    through the selector BGPPeer C(kubescale-rr-default) without a rerun."
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
  keep_assignment:
    description:
      - Keep the reflector and client assignment stored in etcd (see the description). V(false) applies the
        plan's objects as they are, which may move clients between clusters.
      - Needs a plan made by this collection's filter (it carries C(inputs)).
    type: bool
    default: true
  report_file:
    description:
      - A file on the host the module runs on (the controller, with C(delegate_to)) that receives the
        summary and every action, in order. The result then keeps only the first 20 actions, so that
        a 5,000-node apply does not flood the screen. Written in check mode too (it is the change set).
    type: path
  progress_file:
    description:
      - A file (on the host the module runs on) that receives one JSON line per write step, with the
        objects looked at so far out of all (C(done)/C(total)) and objects per second; rewritten by each run.
        M(kubescale.calico.progress_wait) prints it while the module runs in the background (the role
        C(bgp_topology) does so for large applies). Not written in check mode.
    type: path
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

- name: Apply; print the summary, keep every action in a file on the controller
  kubescale.calico.bgp_topology:
    endpoints: "{{ calico_etcd_endpoints }}"
    plan: "{{ topology }}"
    report_file: "{{ playbook_dir }}/topology-report/apply-actions.txt"
  run_once: true
  delegate_to: localhost
  register: applied

- name: Say what was done
  ansible.builtin.debug:
    msg: "{{ applied.summary }}"
  run_once: true

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
summary:
  description: A few lines (at most about 30 at any size) saying what was done, in which order, what was
    kept from the datastore, which nodes the plan does not know, and the plan's warnings.
  returned: always
  type: list
  elements: str
  sample: ["mode: route_reflector (mesh was on); 1 created, 0 updated, 0 deleted, 253 unchanged",
           "order of writes:", "1. Nodes: labels and addresses: 1",
           "nodes in the datastore but not in the plan: 1 (autoscaled-1); they peer with cluster 224.0.0.1
            (BGPPeer kubescale-rr-default)"]
actions:
  description: What was done, in plain sentences, in the order it was done (with O(report_file), the
    first 20; the file has them all).
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
  description: In-cluster reflectors applied, node name to cluster ID.
  returned: always
  type: dict
actions_total:
  description: Number of actions, also those left out of RV(actions).
  returned: always
  type: int
steps:
  description: The write steps in the order they ran, each with C(step) and C(written) (objects written).
  returned: always
  type: list
  elements: dict
assignment:
  description: C(source) (V(datastore) when the stored assignment replaced the plan's, else V(plan)), the
    stored C(reflectors) and C(clients) found, and how many hosts C(disagreed) with the plan handed in.
  returned: always
  type: dict
unplanned_nodes:
  description: Nodes in etcd that the plan does not list, C(count) and the first 10 C(names).
  returned: always
  type: dict
plan_warnings:
  description: The applied plan's warnings (failure domains, overrides), and the apply's own.
  returned: always
  type: list
  elements: str
default_cluster:
  description: The reflector cluster that nodes without a client label peer with (null in mesh mode or with
    external reflectors).
  returned: always
  type: str
report_file:
  description: The report file written.
  returned: when O(report_file) is set
  type: str
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
    apply_and_report,
)
from ansible_collections.kubescale.calico.plugins.module_utils.topology.plan_shape import validate_plan_shape


def main() -> None:
    module = etcd_module({
        "plan": {"type": "dict", "required": True},
        "phase": {"type": "str", "choices": list(PHASES), "default": "all"},
        "prune": {"type": "bool", "default": True},
        "keep_assignment": {"type": "bool", "default": True},
        "report_file": {"type": "path"},
        "progress_file": {"type": "path"},
    })
    p = module.params
    try:
        validate_plan_shape(p["plan"])  # before connecting: a malformed plan needs no etcd to be refused
    except ValidationError as exc:
        module.fail_json(msg=str(exc))
    run(module, lambda client: apply_and_report(store_for(module, client), p["plan"], p["phase"], p["prune"],
                                                p["keep_assignment"], p["report_file"], p["progress_file"]),
        TopologyApplyError)


if __name__ == "__main__":
    main()
