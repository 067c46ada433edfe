#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_auth
short_description: Manage etcd v3 users, roles, key-range permissions and the auth switch
version_added: 0.1.0
description:
  - Declares users (password, roles), roles (key or key-prefix permissions) and whether etcd auth
    is enabled, and changes only what differs. Users and roles not listed are left alone.
  - Before enabling auth etcd requires a user named C(root) holding the role C(root); the module
    checks this (and that C(root) keeps that role while auth stays on) before any change and
    explains what to add.
  - "Works on a cluster whose auth is already on: connect as C(root) (O(user)/O(password)). Giving
    those credentials while auth is still off is fine: they are used once auth is on."
  - Changes are made in an order etcd accepts (roles before the users that get them; deleted
    users before deleted roles; auth enabled last), so one task can go from nothing to auth on.
options:
  users:
    description: Users to manage.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      password:
        description:
          - Password. Required to create the user; see O(update_password) for existing users.
        type: str
      roles:
        description:
          - The user's complete list of roles (missing ones granted, others revoked). Omit to leave
            an existing user's roles alone. C(root) is the built-in all-powerful role.
        type: list
        elements: str
      state:
        description: Whether the user should exist.
        type: str
        choices: [present, absent]
        default: present
  roles:
    description: Roles to manage (not C(root), which is built in).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Role name.
        type: str
        required: true
      permissions:
        description:
          - The role's complete list of permissions (missing ones granted, changed ones replaced,
            others revoked). Omit to leave an existing role's permissions alone.
        type: list
        elements: dict
        suboptions:
          key:
            description: The key, or the first key of the range, or the prefix with O(roles[].permissions[].prefix).
            type: str
            required: true
          range_end:
            description:
              - End of the key range (exclusive), as in C(etcdctl role grant-permission KEY RANGE_END).
                V("\\0") means every key from O(roles[].permissions[].key) on. Omit for a single key.
            type: str
          prefix:
            description: Every key that starts with O(roles[].permissions[].key) (computes the range end).
            type: bool
            default: false
          permission:
            description: Access granted.
            type: str
            choices: [read, write, readwrite]
            required: true
      state:
        description: Whether the role should exist.
        type: str
        choices: [present, absent]
        default: present
  auth_enabled:
    description:
      - V(true) enables auth (after the users and roles are in place), V(false) disables it (first).
        Omit to leave it as it is.
    type: bool
  update_password:
    description:
      - V(on_create) sets a password only when the user is created.
      - V(always) also checks existing users' passwords. etcd cannot return them, so the module
        authenticates as the user; when that fails the password is changed. While auth is off
        etcd cannot check passwords, so V(always) then changes the password on every run (and
        reports C(changed)).
    type: str
    choices: [on_create, always]
    default: on_create
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
    details: Every check and read runs, no write; RV(actions) and the diff say what would change.
  diff_mode:
    support: full
    details: >-
      The managed users (roles), roles (permissions) and the auth switch, before and after.
      Passwords are never shown.
notes:
  - etcd 3.4 has no call that reports whether auth is on; the module tells by a login attempt with a
    made-up user (etcd answers "authentication is not enabled" or rejects the user), so the answer does
    not depend on the common name of the client certificate.
  - Role permissions are shown with C(range_end) as etcd stores it; C(prefix=true) marks a range
    that is exactly a prefix.
seealso:
  - name: etcd role-based access control
    description: Users, roles and enabling auth in etcd v3.4.
    link: https://etcd.io/docs/v3.4/op-guide/authentication/
author:
  - kubescale.calico developers (@kubescale)
"""

EXAMPLES = r"""
- name: Calico confined to /calico/, root for administration, auth on
  kubescale.calico.etcd_auth:
    endpoints: [https://10.0.0.11:2379]
    ca_cert: /etc/calico-etcd/pki/ca.crt
    client_cert: /etc/calico-etcd/pki/admin.crt
    client_key: /etc/calico-etcd/pki/admin.key
    user: root
    password: "{{ calico_etcd_root_password }}"
    roles:
      - name: calico
        permissions:
          - {key: /calico/, prefix: true, permission: readwrite}
    users:
      - {name: root, password: "{{ calico_etcd_root_password }}", roles: [root]}
      - {name: calico, password: "{{ calico_etcd_calico_password }}", roles: [calico]}
    auth_enabled: true
    update_password: always
  no_log: true

- name: Remove a retired user
  kubescale.calico.etcd_auth:
    endpoints: [https://10.0.0.11:2379]
    user: root
    password: "{{ calico_etcd_root_password }}"
    users:
      - {name: old-tool, state: absent}
"""

RETURN = r"""
auth_enabled:
  description: Whether auth is on after the change (would be, in check mode).
  returned: always
  type: bool
users:
  description: The managed users that exist afterwards and their roles (C(password=changed) when it was changed).
  returned: always
  type: dict
  sample: {calico: {roles: [calico]}, root: {roles: [root]}}
roles:
  description: The managed roles that exist afterwards and their permissions.
  returned: always
  type: dict
  sample: {calico: {permissions: [{key: /calico/, range_end: /calico0, permission: readwrite, prefix: true}]}}
actions:
  description: What was done (would be done, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["created role calico", "granted readwrite on '/calico/'..'/calico0' to role calico", "enabled auth"]
"""

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import etcd_module, run
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.ops import EtcdOpsError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.rbac import ensure_auth

STATE = {"type": "str", "choices": ["present", "absent"], "default": "present"}
PERMISSION = {
    "key": {"type": "str", "required": True, "no_log": False},
    "range_end": {"type": "str"},
    "prefix": {"type": "bool", "default": False},
    "permission": {"type": "str", "choices": ["read", "write", "readwrite"], "required": True},
}


def main() -> None:
    module = etcd_module({
        "users": {"type": "list", "elements": "dict", "default": [], "options": {
            "name": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "roles": {"type": "list", "elements": "str"},
            "state": STATE,
        }},
        "roles": {"type": "list", "elements": "dict", "default": [], "options": {
            "name": {"type": "str", "required": True},
            "permissions": {"type": "list", "elements": "dict", "options": PERMISSION,
                            "mutually_exclusive": [["range_end", "prefix"]]},
            "state": STATE,
        }},
        "auth_enabled": {"type": "bool"},
        "update_password": {"type": "str", "choices": ["on_create", "always"], "default": "on_create", "no_log": False},
    })
    params = module.params
    run(module, lambda client: ensure_auth(client, params["users"], params["roles"], params["auth_enabled"],
                                           params["update_password"], module.check_mode), EtcdOpsError)


if __name__ == "__main__":
    main()
