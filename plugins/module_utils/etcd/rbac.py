# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative etcd v3 users, roles, key-range permissions and the auth switch (etcd_auth).

Plan first (validate input, read the current state, check etcd's rules), then write in an order
etcd accepts: disable auth; roles and their permissions; users, passwords and role grants; deleted
users; deleted roles; enable auth last.
"""

from __future__ import annotations

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, prefix_end
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.ops import EtcdOpsError

ROOT = "root"
PERMISSIONS = ("read", "write", "readwrite")


# -- input -----------------------------------------------------------------------------------------
def _perm(role: str, index: int, perm: dict) -> tuple[str, str, str]:
    where = f"roles[{role}].permissions[{index}]"
    key = perm.get("key")
    if not key:
        raise EtcdOpsError(f"{where}.key: a key (or key prefix) is required")
    if perm.get("prefix") and perm.get("range_end") is not None:
        raise EtcdOpsError(f"{where}: give range_end or prefix: true, not both")
    if perm.get("permission") not in PERMISSIONS:
        raise EtcdOpsError(f"{where}.permission: must be one of {', '.join(PERMISSIONS)}")
    if perm.get("prefix"):
        range_end = prefix_end(key.encode()).decode("utf-8", "surrogateescape")
    else:
        range_end = perm.get("range_end") or ""
    if range_end and range_end != "\0" and range_end <= key:
        raise EtcdOpsError(f"{where}.range_end: {range_end!r} must sort after key {key!r} (or use prefix: true)")
    return key, range_end, perm["permission"]


def validate(users: list[dict], roles: list[dict]) -> tuple[dict, dict]:
    """Normalised {name: user} and {name: role} (permissions as {(key, range_end): permission})."""
    wanted_roles: dict[str, dict] = {}
    for index, role in enumerate(roles):
        name = role.get("name")
        if not name:
            raise EtcdOpsError(f"roles[{index}].name: a role name is required")
        if name == ROOT:
            raise EtcdOpsError("roles: 'root' is etcd's built-in role with every permission and cannot be "
                               "declared; grant it to a user with users[].roles instead")
        if name in wanted_roles:
            raise EtcdOpsError(f"roles: role {name!r} is listed twice")
        perms = None
        if role.get("permissions") is not None:
            perms = {}
            for pindex, perm in enumerate(role["permissions"]):
                key, range_end, permission = _perm(name, pindex, perm)
                if (key, range_end) in perms:
                    raise EtcdOpsError(f"roles[{name}].permissions: the range {key!r}..{range_end!r} is listed twice")
                perms[(key, range_end)] = permission
        wanted_roles[name] = {"state": role.get("state") or "present", "permissions": perms}
    wanted_users: dict[str, dict] = {}
    for index, user in enumerate(users):
        name = user.get("name")
        if not name:
            raise EtcdOpsError(f"users[{index}].name: a user name is required")
        if name in wanted_users:
            raise EtcdOpsError(f"users: user {name!r} is listed twice")
        roles_of = user.get("roles")
        wanted_users[name] = {"state": user.get("state") or "present", "password": user.get("password"),
                              "roles": sorted(set(roles_of)) if roles_of is not None else None}
    return wanted_users, wanted_roles


# -- plan ------------------------------------------------------------------------------------------
def _show_perms(perms: dict) -> list[dict]:
    out = []
    for (key, range_end), permission in sorted(perms.items()):
        item = {"key": key, "range_end": range_end, "permission": permission}
        if range_end and range_end == prefix_end(key.encode()).decode("utf-8", "surrogateescape"):
            item["prefix"] = True
        out.append(item)
    return out


def _read(client: EtcdClient, users: dict, roles: dict) -> dict:
    current_roles = {}
    for name in roles:
        perms = client.role_get(name)
        current_roles[name] = None if perms is None else {(p["key"], p["range_end"]): p["permission"] for p in perms}
    current_users = {name: client.user_get(name) for name in set(users) | {ROOT}}
    return {"auth": client.auth_status(), "roles": current_roles, "users": current_users,
            "role_names": set(client.role_list())}


def _check_rules(users: dict, roles: dict, current: dict, auth_enabled: bool | None) -> None:
    """etcd's rules, checked before any write so a refusal changes nothing."""
    existing_roles = (current["role_names"] | {ROOT} | {n for n, r in roles.items() if r["state"] == "present"}) - \
        {n for n, r in roles.items() if r["state"] == "absent"}
    for name, user in users.items():
        if user["state"] != "present":
            continue
        for role in user["roles"] or []:
            if role not in existing_roles:
                raise EtcdOpsError(f"users[{name}].roles: role {role!r} does not exist and is not declared "
                                   "present in roles")
        if current["users"].get(name) is None and not user["password"]:
            raise EtcdOpsError(f"users[{name}].password: required to create user {name!r}")
    root = users.get(ROOT)
    root_roles = current["users"].get(ROOT)
    if root is not None:
        if root["state"] == "absent":
            root_roles = None
        elif root["roles"] is not None:
            root_roles = root["roles"]
        elif root_roles is None:
            root_roles = []
    final_auth = current["auth"] if auth_enabled is None else auth_enabled
    if final_auth and (root_roles is None or ROOT not in root_roles):
        state = "does not exist" if root_roles is None else "lacks the role root"
        why = "auth is enabled" if current["auth"] and auth_enabled is None else "auth_enabled: true"
        raise EtcdOpsError(f"{why}: etcd needs a user named root holding the role root while auth is on, and "
                           f"user root {state} after this change; add {{name: root, password: ..., roles: [root]}} "
                           "to users")


def _plan(users: dict, roles: dict, current: dict, auth_enabled: bool | None, update_password: str,
          client: EtcdClient) -> tuple[list[tuple], dict, dict]:
    """The ordered writes plus diff before/after of what is managed."""
    steps: list[tuple] = []
    before = {"auth_enabled": current["auth"], "users": {}, "roles": {}}
    after = {"auth_enabled": current["auth"] if auth_enabled is None else auth_enabled, "users": {}, "roles": {}}
    if auth_enabled is False and current["auth"]:
        steps.append(("auth_disable", "disabled auth"))
    for name, role in roles.items():
        have = current["roles"][name]
        if have is not None:
            before["roles"][name] = {"permissions": _show_perms(have)}
        if role["state"] == "absent":
            continue
        want = role["permissions"] if role["permissions"] is not None else (have or {})
        after["roles"][name] = {"permissions": _show_perms(want)}
        if have is None:
            steps.append(("role_add", f"created role {name}", name))
            have = {}
        for (key, range_end), permission in sorted(want.items()):
            if have.get((key, range_end)) != permission:
                steps.append(("role_grant_permission", f"granted {permission} on {key!r}..{range_end!r} to role "
                              f"{name}", name, key, range_end, permission))
        for key, range_end in sorted(set(have) - set(want)):
            steps.append(("role_revoke_permission", f"revoked {key!r}..{range_end!r} from role {name}",
                          name, key, range_end))
    for name, user in users.items():
        have = current["users"][name]
        if have is not None:
            before["users"][name] = {"roles": have}
        if user["state"] == "absent":
            if have is not None:
                steps.append(("user_delete", f"deleted user {name}", name))
            continue
        want = user["roles"] if user["roles"] is not None else (have or [])
        after["users"][name] = {"roles": want}
        if have is None:
            steps.append(("user_add", f"created user {name}", name, user["password"]))
            have = []
        elif user["password"] and update_password == "always" and \
                client.authenticate(name, user["password"]) is not True:
            steps.append(("user_change_password", f"changed the password of user {name}", name, user["password"]))
            after["users"][name]["password"] = "changed"
        for role in want:
            if role not in have:
                steps.append(("user_grant_role", f"granted role {role} to user {name}", name, role))
        for role in have:
            if role not in want:
                steps.append(("user_revoke_role", f"revoked role {role} from user {name}", name, role))
    # deleting users before roles, and granting before deleting, keeps every reference valid
    steps.sort(key=lambda s: {"auth_disable": 0, "user_delete": 2}.get(s[0], 1))
    for name, role in roles.items():
        if role["state"] == "absent" and current["roles"][name] is not None:
            steps.append(("role_delete", f"deleted role {name}", name))
    if auth_enabled and not current["auth"]:
        steps.append(("auth_enable", "enabled auth"))
    return steps, before, after


def ensure_auth(client: EtcdClient, users: list[dict] | None, roles: list[dict] | None, auth_enabled: bool | None,
                update_password: str, check_mode: bool) -> dict:
    """Bring users, roles and the auth switch to the declared state; see the etcd_auth module."""
    wanted_users, wanted_roles = validate(users or [], roles or [])
    current = _read(client, wanted_users, wanted_roles)
    _check_rules(wanted_users, wanted_roles, current, auth_enabled)
    steps, before, after = _plan(wanted_users, wanted_roles, current, auth_enabled, update_password, client)
    if not check_mode:
        for step in steps:
            getattr(client, step[0])(*step[2:])
    return {
        "changed": bool(steps),
        "auth_enabled": after["auth_enabled"],
        "users": after["users"],
        "roles": after["roles"],
        "actions": [step[1] for step in steps],
        "diff": {"before": before, "after": after},
    }
