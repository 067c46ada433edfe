#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bgp_peer
short_description: Manage a Calico v3 BGPPeer in etcd
version_added: 0.1.0
description:
  - Creates, updates or deletes one BGPPeer.
  - A peer is global when neither O(node) nor O(node_selector) is set.
  - Calico's rules are enforced before writing, O(node) and O(node_selector) exclude each other,
    O(peer_ip) and O(peer_selector) exclude each other, and O(as_number) must be unset with O(peer_selector).
  - The peer's spec and labels become exactly what the options say (unset options are removed).
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
    description: The peer's name (a DNS-1123 subdomain).
    type: str
    required: true
  state:
    description: Whether the peer should exist.
    type: str
    choices: [present, absent]
    default: present
  peer_ip:
    description: The remote address (IPv4, IPv6, V(IPv4:port) or V([IPv6]:port)).
    type: str
  peer_selector:
    description: Peer with the Calico nodes this selector matches (in-cluster route reflectors).
    type: str
  as_number:
    description: The remote AS, 1-4294967295 (integer, decimal string or asdot V(A.B); AS 0 is reserved and refused).
      Required with O(peer_ip) for eBGP peers.
    type: raw
  node:
    description: Only this node peers (a node-specific peer).
    type: str
  node_selector:
    description: Only nodes matching this selector peer.
    type: str
  labels:
    description: Labels of the BGPPeer object.
    type: dict
"""

EXAMPLES = r"""
- name: Every node that is not a reflector peers with the reflectors
  kubescale.calico.bgp_peer:
    endpoints: ["https://10.0.0.11:2389"]
    ca_cert: /etc/calico/certs/ca.pem
    client_cert: /etc/calico/certs/client.pem
    client_key: /etc/calico/certs/client-key.pem
    name: peer-to-rrs
    node_selector: "!has(i-am-a-route-reflector)"
    peer_selector: has(i-am-a-route-reflector)

- name: A top-of-rack router for one node
  kubescale.calico.bgp_peer:
    name: proxy1.tor
    node: proxy1
    peer_ip: 10.1.0.1
    as_number: 65001
"""

RETURN = r"""
actions:
  description: What was done, in plain sentences.
  returned: always
  type: list
  elements: str
  sample: ["created BGPPeer peer-to-rrs"]
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


def main() -> None:
    module = etcd_module(dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        peer_ip=dict(type="str"), peer_selector=dict(type="str"), as_number=dict(type="raw"),
        node=dict(type="str"), node_selector=dict(type="str"), labels=dict(type="dict")),
        mutually_exclusive=[["peer_ip", "peer_selector"], ["node", "node_selector"]])
    p = module.params
    body = resource("BGPPeer", p["name"], {
        "peerIP": p["peer_ip"], "peerSelector": p["peer_selector"], "asNumber": p["as_number"],
        "node": p["node"], "nodeSelector": p["node_selector"]}, p["labels"])
    # The options describe the whole object: replace spec and labels.
    run(module, lambda client: ensure(store_for(module, client), [body], p["state"], merge=False))


if __name__ == "__main__":
    main()
