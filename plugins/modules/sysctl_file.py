#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: sysctl_file
short_description: One sysctl.d file from a mapping, stale files removed, the kernel told - in one task
version_added: 0.1.0
description:
  - Writes O(path) (mode C(0644)) with one C(key = value) line per entry of O(settings), sorted by key,
    after O(header) as comment lines; removes the files of O(stale_files) that exist; and, when the
    file's content changed (or a stale file was removed), applies it with C(sysctl -e -p O(path))
    (keys the kernel does not have are skipped).
  - One module call per host instead of a template, a file task per stale file and a handler, which is what a
    no-op rerun of a large inventory pays for per host.
  - The file is written to a temporary file beside it and renamed, so an interrupted run leaves the
    old file or the new one, never half of one.
  - Only a change of the file triggers C(sysctl -p); values changed on the host by hand are not
    reverted until the file changes or the host reboots (C(systemd-sysctl) applies the file at boot).
options:
  path:
    description: The sysctl.d file, for example C(/etc/sysctl.d/60-kubescale-calico.conf).
    type: path
    required: true
  settings:
    description:
      - Sysctl keys (dotted, for example C(net.ipv4.neigh.default.gc_thresh3)) to values (numbers or
        one-line strings). Every bad key or value is listed in one error before anything is written.
      - Exactly one of O(settings) and O(requirements) is required.
    type: dict
  requirements:
    description:
      - What several node groups of the host need, a mapping of group name to its settings; the file gets per key
        the largest number, or the value all groups agree on. Groups that want different non-numbers
        fail the task, naming the key and the groups. Empty groups are ignored.
      - Role C(kubescale.calico.node_tuning) passes what the roles of the host's node groups ask for.
    type: dict
  header:
    description: Text written as comment lines at the top of the file.
    type: str
    default: ""
  stale_files:
    description: Files of earlier versions to remove (O(path) itself is never removed).
    type: list
    elements: path
    default: []
  reload:
    description: Run C(sysctl -e -p O(path)) after a change.
    type: bool
    default: true
extends_documentation_fragment:
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the file, its mode or a stale file would change; writes and reloads nothing.
  diff_mode:
    support: full
    details: The file's content before and after.
notes:
  - The lab and C(playbooks/site.yml) use it through role C(kubescale.calico.node_tuning).
author:
  - kubescale.calico developers (@kubescale)
"""

EXAMPLES = r"""
- name: Neighbour table and conntrack sizes of a worker
  kubescale.calico.sysctl_file:
    path: /etc/sysctl.d/60-kubescale-calico.conf
    header: Host tuning of a Calico node
    settings:
      net.ipv4.neigh.default.gc_thresh3: 16384
      net.netfilter.nf_conntrack_max: 1048576
    stale_files: [/etc/sysctl.d/60-kubescale-proxy.conf]

- name: A host that is a proxy and a worker - one file, per key the larger value
  kubescale.calico.sysctl_file:
    path: /etc/sysctl.d/60-kubescale-calico.conf
    requirements:
      proxy: {net.netfilter.nf_conntrack_max: 2097152, net.core.somaxconn: 32768}
      worker: {net.netfilter.nf_conntrack_max: 1048576}
"""

RETURN = r"""
path:
  description: The file written (or that would be written).
  returned: always
  type: str
settings:
  description: The keys and values as the file holds them.
  returned: always
  type: dict
  sample: {net.netfilter.nf_conntrack_max: "1048576"}
removed:
  description: Stale files removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
reloaded:
  description: Whether C(sysctl -e -p) ran.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubescale.calico.plugins.module_utils.sysctl_conf import (
    SysctlError,
    merge,
    read,
    render,
    validate,
    write,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "settings": {"type": "dict"},
            "requirements": {"type": "dict"},
            "header": {"type": "str", "default": ""},
            "stale_files": {"type": "list", "elements": "path", "default": []},
            "reload": {"type": "bool", "default": True},
        },
        required_one_of=[("settings", "requirements")],
        mutually_exclusive=[("settings", "requirements")],
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        if module.params["requirements"] is not None:
            settings = merge(module.params["requirements"])
        else:
            settings = validate(module.params["settings"])
    except SysctlError as exc:
        module.fail_json(msg=str(exc), path=path)
    content = render(settings, module.params["header"])
    before = read(path)
    mode_wrong = before is not None and os.stat(path).st_mode & 0o7777 != 0o644
    stale = [f for f in module.params["stale_files"] if f != path and os.path.lexists(f)]
    changed = before != content or mode_wrong or bool(stale)
    result = {"changed": changed, "path": path, "settings": settings, "removed": stale, "reloaded": False,
              "diff": {"before": before or "", "after": content, "before_header": path, "after_header": path}}
    if module.check_mode or not changed:
        module.exit_json(**result)
    if before != content:
        module.atomic_move(write(path, content), path)
    os.chmod(path, 0o644)
    for name in stale:
        os.unlink(name)
    if module.params["reload"] and (before != content or stale):
        rc, out, err = module.run_command(["sysctl", "-e", "-p", path])
        if rc != 0:
            module.fail_json(msg=f"sysctl -e -p {path} failed (rc {rc}): {(err or out).strip()}", **result)
        result["reloaded"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
