#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calico_node
short_description: Manage the BGP fields and labels of a Calico v3 Node in etcd
version_added: 0.1.0
description:
  - Sets C(spec.bgp) fields (addresses, AS number, route reflector cluster ID) and labels of one Calico Node.
  - Fields calico-node itself writes (orchRefs, tunnel addresses, status) are kept; only what you give changes.
  - When the Node does not exist yet it is created (calico-node adopts it when it starts), unless O(create) is false.
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
    description: The Calico node name (usually the host name).
    type: str
    required: true
  ipv4_address:
    description: The node's BGP IPv4 address, with or without prefix length (C(spec.bgp.ipv4Address)).
    type: str
  ipv6_address:
    description: The node's BGP IPv6 address, with or without prefix length (C(spec.bgp.ipv6Address)).
    type: str
  as_number:
    description: The node's own AS number, 1-4294967295 (integer, decimal string or asdot; AS 0 is refused).
      Empty string removes it.
    type: raw
  route_reflector_cluster_id:
    description:
      - Makes the node an in-cluster route reflector with this cluster ID (dotted IPv4, for example V(224.0.0.1)).
      - An empty string removes the field, making the node a plain client again.
    type: str
  labels:
    description: Labels to set on the node. A label given as null is removed.
    type: dict
  purge_labels:
    description: Remove labels not given in O(labels).
    type: bool
    default: false
  create:
    description: Create the Node when it does not exist; when false a missing Node is an error.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Make worker-17 a route reflector
  kubescale.calico.calico_node:
    endpoints: ["https://10.0.0.11:2389"]
    ca_cert: /etc/calico/certs/ca.pem
    client_cert: /etc/calico/certs/client.pem
    client_key: /etc/calico/certs/client-key.pem
    name: worker-17
    ipv4_address: 10.20.3.17/24
    route_reflector_cluster_id: 224.0.0.1
    labels:
      i-am-a-route-reflector: "true"
"""

RETURN = r"""
actions:
  description: What was done, in plain sentences.
  returned: always
  type: list
  elements: str
  sample: ["updated Node worker-17 (labels.i-am-a-route-reflector, spec.bgp.routeReflectorClusterID)"]
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

from ansible_collections.kubescale.calico.plugins.module_utils.calico.module import etcd_module, run, store_for
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import ensure_node


def main() -> None:
    module = etcd_module(dict(
        name=dict(type="str", required=True), ipv4_address=dict(type="str"), ipv6_address=dict(type="str"),
        as_number=dict(type="raw"), route_reflector_cluster_id=dict(type="str"), labels=dict(type="dict"),
        purge_labels=dict(type="bool", default=False), create=dict(type="bool", default=True)))
    p = module.params
    bgp = {"ipv4Address": p["ipv4_address"], "ipv6Address": p["ipv6_address"], "asNumber": p["as_number"],
           "routeReflectorClusterID": p["route_reflector_cluster_id"]}
    run(module, lambda client: ensure_node(store_for(module, client), p["name"], bgp, p["labels"],
                                           p["purge_labels"], p["create"]).as_dict(with_diff=module._diff))


if __name__ == "__main__":
    main()
