#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bgp_topology_report
short_description: Write a BGP topology plan as a report a person can read (Markdown, SVG, JSON)
version_added: 0.1.0
description:
  - "Writes a BGP topology plan into a directory, in one call, on the controller: C(topology.md) (mode,
    reason, sessions, reflectors, racks, router peers, the Calico objects),
    C(topology.svg) (reflector clusters, racks and their clients, BGP sessions of a full mesh against
    this plan) and C(plan.json) (the whole plan, usable as the filter's C(previous) input next time)."
  - The plan is O(plan) when given; without it the inventory of the play (C(groups), C(hostvars)) is
    planned here with O(settings) and O(previous), exactly as the P(kubescale.calico.bgp_topology_plan#filter)
    filter does. Planning here keeps a plan of thousands of nodes out of Ansible's templating of task
    arguments, which costs more than the planning itself.
  - Nothing else is contacted. A file is rewritten only when its content differs.
  - An action plugin runs this on the controller, in the Ansible process; O(dest) is a path on the
    controller. Bad input (for example duplicate BGP IPs) fails the task with the planner's message.
author:
  - kubescale.calico developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  plan:
    description:
      - A plan from the P(kubescale.calico.bgp_topology_plan#filter) filter. When omitted, the play's
        inventory is planned (this needs the action plugin, which always runs for this module).
    type: dict
  settings:
    description:
      - Planner settings when O(plan) is omitted, as for the filter (C(mesh_max_nodes), C(rr_capacity),
        C(rr_per_client), C(rr_candidate_groups), C(rr_kind), C(as_number), C(bgp_mode),
        C(rr_cluster_id_base), C(router_peers), with or without the C(calico_) prefix; null keeps the default).
    type: dict
  previous:
    description: A previous plan or mapping of reflector host to cluster ID, when O(plan) is omitted.
    type: raw
  dest:
    description: Directory to write the report into; created when missing.
    type: path
    required: true
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [markdown, svg, json]
    default: [markdown, svg, json]
"""

EXAMPLES = r"""
- name: Plan this inventory and write the report on the controller
  kubescale.calico.bgp_topology_report:
    settings:
      mesh_max_nodes: 200
      rr_capacity: 1000
    dest: "{{ playbook_dir }}/topology-report"
  delegate_to: localhost
  run_once: true
  register: report

- name: Print the summary
  ansible.builtin.debug:
    msg: "{{ report.summary }}"
"""

RETURN = r"""
files:
  description: The files of the report.
  returned: always
  type: list
  elements: str
  sample: ["/srv/report/topology.md", "/srv/report/topology.svg", "/srv/report/plan.json"]
written:
  description: The files whose content changed (or would change in check mode).
  returned: always
  type: list
  elements: str
summary:
  description: A few lines saying what the plan is (mode, reason, sessions, reflectors, warnings).
  returned: always
  type: list
  elements: str
  sample:
    - "mode: route_reflector (in-cluster reflectors)"
    - "sessions: full mesh 499,500, this plan 1,997 (250x fewer); most on one node 999; router sessions 0"
mode:
  description: The plan's mode, V(mesh) or V(route_reflector).
  returned: always
  type: str
stats:
  description: The plan's session statistics.
  returned: always
  type: dict
reflectors:
  description: The plan's reflectors (name, host, ip, cluster_id, rack, zone, group, clients).
  returned: always
  type: list
  elements: dict
warnings_plan:
  description: The plan's warnings.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubescale.calico.plugins.module_utils.topology.report import (
    REPORT_ARGUMENT_SPEC,
    ReportError,
    write_report,
)


def main() -> None:
    """Used when the action plugin is bypassed; the action plugin runs the same code on the controller."""
    module = AnsibleModule(argument_spec=REPORT_ARGUMENT_SPEC, supports_check_mode=True)
    if module.params["plan"] is None:
        module.fail_json(msg="plan: required when the module runs without its action plugin")
    try:
        result = write_report(module.params["plan"], module.params["dest"], module.params["formats"],
                              check_mode=module.check_mode)
    except (ReportError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
