#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calico_resource_info
short_description: Read Calico v3 resources from etcd
version_added: 0.1.0
description:
  - Gets one Calico v3 resource by name, or lists a kind, optionally in one namespace and filtered by labels or
    a Calico label selector.
  - Lists are read in pages, so kinds with tens of thousands of objects (workload endpoints) stay under gRPC's
    4 MiB message limit.
  - Each object is returned as stored, with C(metadata.resourceVersion) set to its etcd mod_revision.
author:
  - Kubescale Calico Developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes.INFO_MODULE
options:
  kind:
    description: The Calico kind, for example V(BGPPeer) or V(WorkloadEndpoint).
    type: str
    required: true
    choices: [BGPConfiguration, BGPPeer, Node, IPPool, FelixConfiguration, ClusterInformation, Profile,
              HostEndpoint, WorkloadEndpoint, GlobalNetworkPolicy, NetworkPolicy]
  name:
    description:
      - Get only this object. Policy names may be given with or without the C(default.) tier prefix.
    type: str
  namespace:
    description: Namespace, for namespaced kinds (required with O(name) for them).
    type: str
  labels:
    description: Only objects carrying all of these labels with these values.
    type: dict
  label_selector:
    description: Only objects whose labels match this Calico selector, for example V(has(i-am-a-route-reflector)).
    type: str
  page_size:
    description: Objects per etcd read.
    type: int
    default: 500
"""

EXAMPLES = r"""
- name: Which nodes are route reflectors?
  kubescale.calico.calico_resource_info:
    endpoints: ["https://10.0.0.11:2389"]
    ca_cert: /etc/calico/certs/ca.pem
    client_cert: /etc/calico/certs/client.pem
    client_key: /etc/calico/certs/client-key.pem
    kind: Node
    label_selector: has(i-am-a-route-reflector)
  register: reflectors

- name: The global BGP configuration
  kubescale.calico.calico_resource_info:
    kind: BGPConfiguration
    name: default
  register: bgp
"""

RETURN = r"""
resources:
  description: The objects found (an empty list when nothing matches).
  returned: always
  type: list
  elements: dict
  sample:
    - kind: BGPPeer
      apiVersion: projectcalico.org/v3
      metadata: {name: peer-to-rrs, uid: 4c1c..., creationTimestamp: "2026-11-28T10:00:00Z", resourceVersion: "42"}
      spec: {nodeSelector: "!has(i-am-a-route-reflector)", peerSelector: has(i-am-a-route-reflector)}
count:
  description: Number of objects returned.
  returned: always
  type: int
"""

from ansible_collections.kubescale.calico.plugins.module_utils.calico.module import etcd_module, run
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import KINDS
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import read_resources


def main() -> None:
    module = etcd_module(dict(
        kind=dict(type="str", required=True, choices=sorted(KINDS, key=list(KINDS).index)),
        name=dict(type="str"), namespace=dict(type="str"), labels=dict(type="dict"),
        label_selector=dict(type="str"), page_size=dict(type="int", default=500)))
    params = module.params
    run(module, lambda client: read_resources(client, params["kind"], params["name"], params["namespace"],
                                              params["labels"], params["label_selector"], params["page_size"]))


if __name__ == "__main__":
    main()
