"""Filter: the BGP topology planner for playbooks and templates."""

from __future__ import annotations

DOCUMENTATION = r"""
name: bgp_topology_plan
short_description: Plan Calico's BGP topology (full mesh or route reflectors) from the inventory
version_added: 0.1.0
author: kubescale.calico developers (@kubescale)
description:
  - Runs the collection's pure planner (C(plugins/module_utils/topology.py)) on the inventory's node
    groups and host variables. Nothing is contacted; only variables are read.
  - The result is deterministic and JSON-serialisable, explains itself (O(mode), O(reason), O(warnings),
    O(stats)) and carries the Calico v3 objects that M(kubescale.calico.bgp_topology) applies.
  - Up to O(mesh_max_nodes) Calico nodes get a full node-to-node mesh; above that, route reflectors.
    Reflectors come from the C(route_reflectors) group if it has hosts, else from O(rr_candidate_groups).
    The number of reflector clusters is the smallest that keeps every reflector at or under
    O(rr_capacity) clients; each cluster has O(rr_per_client) reflectors spread over zones and racks
    (host variables C(calico_zone), C(calico_rack)), chosen by rendezvous hashing so that adding a
    worker never moves a reflector.
  - "Host variables read per host: C(calico_bgp_ip) (else the C(ansible_default_ipv4.address) fact, else
    C(ansible_host) if it is an IPv4 address), C(calico_rack), C(calico_zone), C(calico_as_number),
    C(calico_router_peers) (list of C({ip, as_number}); entries every node has become one global
    BGPPeer, entries every node of a rack has become one per-rack BGPPeer, the rest per-node BGPPeers),
    C(calico_node_name) (default: the inventory name)."
  - Bad input (duplicate BGP IPs, a host in two of master/management/proxy, too few reflector
    candidates, invalid AS numbers, cluster IDs, rack or zone names) fails the template with a message
    naming the field and the rule.
  - Every option may also be given with the C(calico_) prefix, for example C(calico_mesh_max_nodes).
    Options set to V(null) keep their default.
positional: _input, hostvars
options:
  _input:
    description: The inventory's C(groups) mapping (group name to list of host names).
    type: dict
    required: true
  hostvars:
    description: The C(hostvars) of the inventory.
    type: dict
    required: true
  settings:
    description: A mapping of the options below (with or without the C(calico_) prefix); keyword
      options win over it.
    type: dict
  previous:
    description:
      - The previous plan, or a mapping of reflector host name to cluster ID (for example read from the
        current Node objects). Reflectors and client assignments in it are kept while they are still
        valid, so that removing a reflector host replaces only that host and moves only its clients,
        and the number of clusters does not shrink on its own.
    type: raw
  mesh_max_nodes:
    description: Largest node count that still gets a full mesh.
    type: int
    default: 200
  rr_capacity:
    description: Most clients per reflector.
    type: int
    default: 1000
  rr_per_client:
    description: Reflectors per cluster, so reflectors each client peers with; at least 2.
    type: int
    default: 2
  rr_candidate_groups:
    description:
      - Groups to choose reflectors from, preferred in this order, when the C(route_reflectors) group is
        empty. Management and master hosts are few and long-lived and are not scaled with the workload.
      - A later group is drawn from only when the earlier ones cannot give the number of reflectors or
        spread every cluster over two failure domains (racks/zones); so workers serve only when, for
        example, every management and master host sits in one rack.
    type: list
    elements: str
    default: [management, master, worker]
  rr_require_spread:
    description:
      - Refuse (fail the plan, so nothing is written) when a reflector cluster has all its reflectors in one
        failure domain, or when no reflector has a rack or zone at all. Without it, the plan warns
        (O(warnings), the summary and the report).
    type: bool
    default: false
  rr_kind:
    description:
      - V(in_cluster) (Calico >= 3.3) makes Calico nodes reflectors (Node C(routeReflectorClusterID) and
        label, BGPPeers by selector). V(external) uses dedicated BIRD hosts from the C(route_reflectors)
        group (role C(kubescale.calico.route_reflector)) and gives the nodes BGPPeers to their IPs.
    type: str
    choices: [in_cluster, external]
    default: in_cluster
  as_number:
    description: The cluster's AS number (plain or asdot).
    type: raw
    default: 64512
  bgp_mode:
    description: V(auto) chooses by size; V(mesh) or V(route_reflector) override it, with a warning.
    type: str
    choices: [auto, mesh, route_reflector]
    default: auto
  rr_cluster_id_base:
    description: Cluster ID of the first reflector cluster; the next ones count up from it.
    type: str
    default: 224.0.0.1
  router_peers:
    description: Router (ToR) peers of every node, each a mapping with C(ip) and C(as_number).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Plan the topology of the whole inventory without contacting any host
  ansible.builtin.set_fact:
    topology: "{{ groups | kubescale.calico.bgp_topology_plan(hostvars, mesh_max_nodes=200, rr_capacity=1000) }}"

- name: Say what was decided
  ansible.builtin.debug:
    msg: "{{ topology.mode }}: {{ topology.reason }}"

- name: Keep reflectors where they are (previous plan saved as JSON)
  ansible.builtin.set_fact:
    topology: >-
      {{ groups | kubescale.calico.bgp_topology_plan(hostvars, settings=calico_topology_settings,
                                                     previous=lookup('file', 'topology.json') | from_json) }}
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    mode:
      description: V(mesh) or V(route_reflector).
      type: str
    reason:
      description: Why, in words, with the session counts.
      type: str
    warnings:
      description: Overrides and placements worth a look.
      type: list
      elements: str
    as_number:
      description: The cluster's AS number.
      type: int
    reflector_kind:
      description: V(in_cluster) or V(external).
      type: str
    nodes:
      description: >-
        Calico nodes sorted by name, each with C(name), C(host), C(ip), C(group), C(rack), C(zone),
        C(as_number), C(route_reflector), C(cluster_id) (its reflector cluster, or the one it is a client
        of) and C(peers) (reflector names it peers with; empty in mesh mode).
      type: list
      elements: dict
    reflectors:
      description: Each reflector with C(name), C(host), C(ip), C(cluster_id), C(rack), C(zone), C(group), C(clients).
      type: list
      elements: dict
    router_peers:
      description: Router peers with C(name), C(ip), C(as_number), C(scope) (global, rack, node) and C(rack) or C(node).
      type: list
      elements: dict
    stats:
      description: >-
        C(nodes), C(mesh_sessions) (n(n-1)/2), C(plan_sessions), C(router_sessions), C(reflectors),
        C(clusters), C(sessions_per_reflector) (name to sessions), C(max_sessions_on_node).
      type: dict
    spread:
      description: >-
        Failure domains of the reflectors: C(failure_domains_known) (any rack or zone on them),
        C(clusters_in_one_domain) (cluster IDs), C(ok).
      type: dict
    default_cluster:
      description: >-
        The cluster that nodes without a client label (autoscaled, not in the inventory) peer with through the
        BGPPeer C(kubescale-rr-default); null in mesh mode and with external reflectors.
      type: str
    inputs:
      description: >-
        The groups, host variables (only what the planner reads) and settings the plan was made from;
        M(kubescale.calico.bgp_topology) plans again from them to keep the assignment stored in etcd.
      type: dict
    resources:
      description: Calico v3 objects by kind (C(bgpconfigurations), C(nodes), C(bgppeers)), each labelled
        C(kubescale.io/managed-by=kubescale.calico).
      type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import TopologyError
from ansible_collections.kubescale.calico.plugins.plugin_utils.plan_inputs import plan_from_vars


def bgp_topology_plan(groups, hostvars, settings=None, previous=None, **options):
    """Plan the BGP topology; see DOCUMENTATION."""
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError("bgp_topology_plan: the input must be the groups mapping")
    merged = dict(settings or {})
    merged.update(options)
    try:
        return plan_from_vars(groups, hostvars, merged, previous=previous)
    except TopologyError as exc:
        raise AnsibleFilterError(f"bgp_topology_plan: {exc}") from None


class FilterModule:
    """The topology planner as a Jinja2 filter."""

    def filters(self):
        return {"bgp_topology_plan": bgp_topology_plan}
