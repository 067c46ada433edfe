#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ippool
short_description: Manage a Calico v3 IPPool in etcd
version_added: 0.1.0
description:
  - Creates, updates or deletes one IPPool with Calico's rules, the CIDR must be a network address,
    an enabled pool must hold at least one block, IPIP is IPv4 only, IPIP and VXLAN exclude each other,
    and no pool may overlap the link-local ranges.
  - No pool may overlap another pool, one already in etcd or one of the same call; such a pool is refused
    before anything is written, as Calico refuses it.
  - Unset options keep their stored value; a new pool gets Calico's defaults
    (C(blockSize) 26 or 122, C(ipipMode) and C(vxlanMode) V(Never), C(nodeSelector) V(all())).
  - O(cidr) and O(block_size) cannot change on an existing pool (Calico treats them as immutable); create a new pool
    and disable the old one instead.
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
    description: The pool's name, for example V(default-ipv4-ippool).
    type: str
    required: true
  state:
    description: Whether the pool should exist.
    type: str
    choices: [present, absent]
    default: present
  cidr:
    description: The pool's network. Required when the pool is created.
    type: str
  block_size:
    description: Prefix length of the per-node blocks (IPv4 20-32, IPv6 116-128).
    type: int
  ipip_mode:
    description: IP-in-IP encapsulation.
    type: str
    choices: [Never, Always, CrossSubnet]
  vxlan_mode:
    description: VXLAN encapsulation.
    type: str
    choices: [Never, Always, CrossSubnet]
  nat_outgoing:
    description: Masquerade traffic leaving the pool.
    type: bool
  disabled:
    description: Stop allocating addresses from the pool.
    type: bool
  node_selector:
    description: Nodes that allocate from this pool (a Calico selector).
    type: str
"""

EXAMPLES = r"""
- name: The pod network
  kubescale.calico.ippool:
    endpoints: ["https://10.0.0.11:2389"]
    ca_cert: /etc/calico/certs/ca.pem
    client_cert: /etc/calico/certs/client.pem
    client_key: /etc/calico/certs/client-key.pem
    name: default-ipv4-ippool
    cidr: 10.244.0.0/16
    block_size: 26
    ipip_mode: CrossSubnet
    nat_outgoing: true
"""

RETURN = r"""
actions:
  description: What was done, in plain sentences.
  returned: always
  type: list
  elements: str
  sample: ["created IPPool default-ipv4-ippool"]
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

MODES = ["Never", "Always", "CrossSubnet"]


def main() -> None:
    module = etcd_module(dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        cidr=dict(type="str"), block_size=dict(type="int"),
        ipip_mode=dict(type="str", choices=MODES), vxlan_mode=dict(type="str", choices=MODES),
        nat_outgoing=dict(type="bool"), disabled=dict(type="bool"), node_selector=dict(type="str")))
    p = module.params
    body = resource("IPPool", p["name"], {
        "cidr": p["cidr"], "blockSize": p["block_size"], "ipipMode": p["ipip_mode"], "vxlanMode": p["vxlan_mode"],
        "natOutgoing": p["nat_outgoing"], "disabled": p["disabled"], "nodeSelector": p["node_selector"]})
    run(module, lambda client: ensure(store_for(module, client), [body], p["state"]))


if __name__ == "__main__":
    main()
