#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bgp_configuration
short_description: Manage a Calico v3 BGPConfiguration in etcd
version_added: 0.1.0
description:
  - Sets the fields of the BGPConfiguration C(default) (cluster-wide) or C(node.<nodename>) (one node).
  - Only the options you give are written; other fields of the stored object are kept.
  - O(node_to_node_mesh), O(as_number) and the service address lists may only be set on C(default), as in Calico.
author:
  - Kubescale Calico Developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  name:
    description: V(default), or V(node.<nodename>) for per-node settings.
    type: str
    default: default
  state:
    description: Whether the object should exist.
    type: str
    choices: [present, absent]
    default: present
  node_to_node_mesh:
    description:
      - Whether every node peers with every other node (C(nodeToNodeMeshEnabled)).
      - Turn it off once route reflectors and their peers are in place.
    type: bool
  as_number:
    description: The default AS number of nodes, 1-4294967295, as an integer, a decimal string or asdot V(A.B)
      (AS 0 is refused).
    type: raw
  log_severity_screen:
    description: BIRD's log level.
    type: str
    choices: [Trace, Debug, Info, Warning, Error, Fatal]
  listen_port:
    description: The BGP port BIRD listens on.
    type: int
  service_cluster_ips:
    description: Service cluster CIDRs to advertise over BGP.
    type: list
    elements: str
  service_external_ips:
    description: Service external IP CIDRs to advertise over BGP.
    type: list
    elements: str
  service_load_balancer_ips:
    description: Service load balancer CIDRs to advertise over BGP.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Turn the node-to-node mesh off (after reflectors and peers are in place)
  kubescale.calico.bgp_configuration:
    endpoints: ["https://10.0.0.11:2389"]
    ca_cert: /etc/calico/certs/ca.pem
    client_cert: /etc/calico/certs/client.pem
    client_key: /etc/calico/certs/client-key.pem
    node_to_node_mesh: false
    as_number: 64512
"""

RETURN = r"""
actions:
  description: What was done, in plain sentences.
  returned: always
  type: list
  elements: str
  sample: ["updated BGPConfiguration default (spec.nodeToNodeMeshEnabled)"]
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
  description: etcd keys deleted.
  returned: always
  type: list
  elements: str
unchanged:
  description: Number of objects already as asked.
  returned: always
  type: int
retries:
  description: Lost races re-read and retried.
  returned: always
  type: int
diff:
  description: The stored object before and after, keyed by etcd key.
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.kubescale.calico.plugins.module_utils.calico.module import (
    ensure,
    etcd_module,
    resource,
    run,
    store_for,
)


def _cidrs(values: list[str] | None) -> list[dict] | None:
    return None if values is None else [{"cidr": value} for value in values]


def main() -> None:
    module = etcd_module(dict(
        name=dict(type="str", default="default"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        node_to_node_mesh=dict(type="bool"), as_number=dict(type="raw"),
        log_severity_screen=dict(type="str", choices=["Trace", "Debug", "Info", "Warning", "Error", "Fatal"]),
        listen_port=dict(type="int"),
        service_cluster_ips=dict(type="list", elements="str"),
        service_external_ips=dict(type="list", elements="str"),
        service_load_balancer_ips=dict(type="list", elements="str")))
    p = module.params
    body = resource("BGPConfiguration", p["name"], {
        "nodeToNodeMeshEnabled": p["node_to_node_mesh"], "asNumber": p["as_number"],
        "logSeverityScreen": p["log_severity_screen"], "listenPort": p["listen_port"],
        "serviceClusterIPs": _cidrs(p["service_cluster_ips"]), "serviceExternalIPs": _cidrs(p["service_external_ips"]),
        "serviceLoadBalancerIPs": _cidrs(p["service_load_balancer_ips"])})
    run(module, lambda client: ensure(store_for(module, client), [body], p["state"]))


if __name__ == "__main__":
    main()
