#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_snapshot
short_description: Save an etcd v3 snapshot to a file, with its sha256 and optional retention
version_added: 0.1.0
description:
  - Streams a snapshot of one member (the first of O(endpoints) that answers) to O(path), like
    C(etcdctl snapshot save); the file is restorable with C(etcdctl snapshot restore).
  - The stream is written to C(<path>.part) with mode C(0600), checked against the sha256 etcd
    appends to it, synced, and only then renamed to O(path); an interrupted save leaves no file.
  - With O(retain), the O(retain) newest files in the same directory whose names match
    O(retain_pattern) are kept (the new snapshot counts as the newest) and older ones are deleted.
  - C(changed) is always V(true) for a real save, since a new file is written every time; use a
    time-stamped O(path) for a history.
options:
  path:
    description:
      - File to write (replaced if it exists). Its directory must exist.
    type: path
    required: true
  retain:
    description:
      - Keep this many snapshots (matching O(retain_pattern)) in the directory of O(path), the new one
        included; delete the older ones, oldest modification time first. Requires O(retain_pattern).
    type: int
  retain_pattern:
    description:
      - Shell glob on file names (no C(/)) that selects the snapshots retention counts, for example
        C(calico-etcd-*.db). It must match the name of O(path). Requires O(retain).
    type: str
  snapshot_timeout:
    description:
      - Seconds the whole snapshot stream may take (O(timeout) applies to each other call). A large
        database takes a while; V(0) means no limit.
    type: float
    default: 3600
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
    details: Connects, checks the path and reports the member, revision and the files retention would delete.
  diff_mode:
    support: none
seealso:
  - module: kubescale.calico.etcd_info
author:
  - kubescale.calico developers (@kubescale)
"""

EXAMPLES = r"""
- name: Snapshot the Calico etcd, keep the last 7
  kubescale.calico.etcd_snapshot:
    endpoints: [https://10.0.0.11:2379]
    ca_cert: /etc/calico-etcd/pki/ca.crt
    client_cert: /etc/calico-etcd/pki/admin.crt
    client_key: /etc/calico-etcd/pki/admin.key
    path: "/var/backups/calico-etcd/calico-etcd-{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}.db"
    retain: 7
    retain_pattern: calico-etcd-*.db
  register: backup

- name: Record the checksum beside it
  ansible.builtin.copy:
    content: "{{ backup.sha256 }}  {{ backup.path | basename }}\n"
    dest: "{{ backup.path }}.sha256"
    mode: "0600"
"""

RETURN = r"""
path:
  description: Absolute path of the snapshot.
  returned: always
  type: str
  sample: /var/backups/calico-etcd/calico-etcd-20260101T000000Z.db
size:
  description: Size in bytes (null in check mode).
  returned: always
  type: int
  sample: 24608
sha256:
  description: sha256 of the file (null in check mode).
  returned: always
  type: str
mode:
  description: File mode of the snapshot.
  returned: always
  type: str
  sample: "0600"
endpoint:
  description: The endpoint whose member was snapshotted.
  returned: always
  type: str
member_id:
  description: ID (hex) of that member.
  returned: always
  type: str
revision:
  description: Store revision when the snapshot began.
  returned: always
  type: int
retained:
  description: Snapshots kept by retention, newest first (just O(path) without O(retain)).
  returned: always
  type: list
  elements: str
removed:
  description: Old snapshots deleted by retention (would be deleted, in check mode).
  returned: always
  type: list
  elements: str
actions:
  description: What was done, in sentences.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import etcd_module, run
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.ops import EtcdOpsError, save_snapshot


def main() -> None:
    module = etcd_module(
        {
            "path": {"type": "path", "required": True},
            "retain": {"type": "int"},
            "retain_pattern": {"type": "str"},
            "snapshot_timeout": {"type": "float", "default": 3600.0},
        },
        required_together=[["retain", "retain_pattern"]],
    )
    params = module.params
    run(module, lambda client: save_snapshot(client, params["path"], module.check_mode, params["retain"],
                                             params["retain_pattern"], params["snapshot_timeout"] or None),
        EtcdOpsError)


if __name__ == "__main__":
    main()
