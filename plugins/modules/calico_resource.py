#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calico_resource
short_description: Create, update or delete Calico v3 resources in etcd
version_added: 0.1.0
description:
  - Manages any Calico v3 resource kind stored in an etcd v3 datastore, one resource or a list,
    the way C(calicoctl) stores them (key C(/calico/resources/v3/projectcalico.org/<plural>/...),
    the whole object as JSON with C(kind) and C(apiVersion)).
  - Supported kinds are BGPConfiguration, BGPPeer, Node, IPPool, FelixConfiguration,
    ClusterInformation, Profile, HostEndpoint, WorkloadEndpoint, GlobalNetworkPolicy and NetworkPolicy.
  - Every resource is validated before anything is written; one invalid resource fails the task and nothing is written.
  - Only objects whose spec, labels or annotations differ are written, in compare-and-swap transactions of at most
    128 operations; a write that loses a race with another writer is re-read and retried.
  - GlobalNetworkPolicy and NetworkPolicy names are stored with the C(default.) tier prefix, as Calico v3.0 to v3.28 do.
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
  definition:
    description:
      - One resource (a mapping with C(kind), C(metadata) and C(spec)) or a list of them.
      - Mutually exclusive with O(src).
    type: raw
  src:
    description:
      - Path to a YAML or JSON file with one or more resources (several YAML documents, or a C(List) with C(items)).
    type: path
  state:
    description:
      - V(present) creates or updates; V(absent) deletes (only C(kind), C(metadata.name) and, for namespaced kinds,
        C(metadata.namespace) are needed).
    type: str
    choices: [present, absent]
    default: present
  apply_mode:
    description:
      - V(merge) lays the given spec, labels and annotations over what is stored and keeps fields it does not name;
        a field given as null is removed.
      - V(replace) makes spec, labels and annotations exactly what is given (like C(calicoctl replace)).
      - C(metadata.uid) and C(metadata.creationTimestamp) are kept on update in both modes.
    type: str
    choices: [merge, replace]
    default: merge
notes:
  - C(metadata.resourceVersion) is never stored; on read it is the etcd mod_revision.
seealso:
  - module: kubescale.calico.calico_resource_info
"""

EXAMPLES = r"""
- name: Route reflector peering as in Calico's in-cluster route reflector recipe
  kubescale.calico.calico_resource:
    endpoints: ["https://10.0.0.11:2389", "https://10.0.0.12:2389"]
    ca_cert: /etc/calico/certs/ca.pem
    client_cert: /etc/calico/certs/client.pem
    client_key: /etc/calico/certs/client-key.pem
    definition:
      - kind: BGPPeer
        apiVersion: projectcalico.org/v3
        metadata:
          name: peer-to-rrs
        spec:
          nodeSelector: "!has(i-am-a-route-reflector)"
          peerSelector: has(i-am-a-route-reflector)
      - kind: BGPConfiguration
        apiVersion: projectcalico.org/v3
        metadata:
          name: default
        spec:
          nodeToNodeMeshEnabled: false
          asNumber: 64512
  run_once: true
  delegate_to: localhost

- name: Apply every resource in a file
  kubescale.calico.calico_resource:
    src: files/calico-policies.yaml
    apply_mode: replace

- name: Delete a peer
  kubescale.calico.calico_resource:
    state: absent
    definition:
      kind: BGPPeer
      metadata:
        name: old-tor-peer
"""

RETURN = r"""
changed:
  description: Whether any stored object was created, updated or deleted (or would be, in check mode).
  returned: always
  type: bool
actions:
  description: What was done, one plain sentence per object.
  returned: always
  type: list
  elements: str
  sample: ["created BGPPeer peer-to-rrs", "updated BGPConfiguration default (spec.nodeToNodeMeshEnabled)"]
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
  description: How many times a batch lost a race with another writer and was re-read and retried.
  returned: always
  type: int
diff:
  description: Stored objects before and after, keyed by etcd key (null where absent).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.module import ensure, etcd_module, run, store_for
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import load_resources


def main() -> None:
    module = etcd_module(
        dict(definition=dict(type="raw"), src=dict(type="path"),
             state=dict(type="str", default="present", choices=["present", "absent"]),
             apply_mode=dict(type="str", default="merge", choices=["merge", "replace"])),
        mutually_exclusive=[["definition", "src"]], required_one_of=[["definition", "src"]])
    try:
        resources = load_resources(module.params["definition"], module.params["src"])
    except ValidationError as exc:
        module.fail_json(msg=str(exc))
    run(module, lambda client: ensure(store_for(module, client), resources, module.params["state"],
                                      merge=module.params["apply_mode"] == "merge"))


if __name__ == "__main__":
    main()
