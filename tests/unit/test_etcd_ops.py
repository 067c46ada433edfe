"""Pure parts of the etcd operations layer: input rules, quorum arithmetic, retention, auth plans."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kubescale.calico.plugins.module_utils.etcd import ops as etcd_ops
from ansible_collections.kubescale.calico.plugins.module_utils.etcd import rbac as etcd_rbac
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.ops import EtcdOpsError


@pytest.mark.parametrize(("size", "need", "tolerated"), [(1, 1, 0), (2, 2, 0), (3, 2, 1), (4, 3, 1), (5, 3, 2)])
def test_quorum(size, need, tolerated):
    assert etcd_ops.quorum(size) == need and size - etcd_ops.quorum(size) == tolerated


def test_even_member_count_warns_and_odd_does_not():
    assert etcd_ops._even_warning(3) == []
    (warning,) = etcd_ops._even_warning(4)
    assert "4 members, an even count: it tolerates 1 failure(s), no more than 3 members would" in warning


def test_peer_urls_normalised_and_rejected_with_the_field_named():
    assert etcd_ops.validate_peer_urls(["https://10.0.0.1:2380/"]) == ["https://10.0.0.1:2380"]
    assert etcd_ops.validate_peer_urls(["http://[fd00::1]:2380"]) == ["http://[fd00::1]:2380"]
    for bad in ("10.0.0.1:2380", "http://10.0.0.1", "http://10.0.0.1:x", "unix:///s", "http://h:1/a", "http://h:1?q"):
        with pytest.raises(EtcdOpsError, match=r"^peer_urls: .* must be http\(s\)://host:port"):
            etcd_ops.validate_peer_urls([bad])
    with pytest.raises(EtcdOpsError, match="listed twice"):
        etcd_ops.validate_peer_urls(["http://h:1", "http://h:1/"])


@pytest.mark.parametrize("name", ["a=b", "a,b", "", "-x", "a b"])
def test_member_names_that_would_break_initial_cluster_are_refused(name):
    with pytest.raises(EtcdOpsError, match=r"^name: "):
        etcd_ops.validate_name(name)


@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), st.integers(1024, 65535)),
                min_size=1, max_size=6, unique_by=lambda t: t[0]))
def test_initial_cluster_names_every_member_once_with_the_new_one_last(pairs):
    *others, (new_name, new_port) = pairs
    members = [{"name": n, "peer_urls": [f"http://127.0.0.1:{p}"]} for n, p in others]
    text = etcd_ops.initial_cluster(members, new_name, [f"http://127.0.0.1:{new_port}"])
    parsed = [item.split("=", 1) for item in text.split(",")]
    assert [n for n, _unused in parsed] == [n for n, _unused in pairs]
    assert parsed[-1] == [new_name, f"http://127.0.0.1:{new_port}"]


def test_retention_keeps_the_new_file_and_the_newest_matches(tmp_path):
    for index, name in enumerate(["c-1.db", "c-2.db", "c-3.db", "other.db"]):
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, ns=(index * 10**9, index * 10**9))
    new = str(tmp_path / "c-9.db")
    kept, removed = etcd_ops._retention(new, 2, "c-*.db")
    assert kept == [new, str(tmp_path / "c-3.db")]
    assert removed == [str(tmp_path / "c-2.db"), str(tmp_path / "c-1.db")]


def test_rbac_prefix_becomes_the_range_etcdctl_uses():
    _unused, roles = etcd_rbac.validate([], [{"name": "calico", "permissions": [
        {"key": "/calico/", "prefix": True, "permission": "readwrite"},
        {"key": "/x", "range_end": None, "prefix": False, "permission": "read"}]}])
    assert roles["calico"]["permissions"] == {("/calico/", "/calico0"): "readwrite", ("/x", ""): "read"}


def _current(auth=False, users=None, roles=None):
    return {"auth": auth, "users": {"root": None, **(users or {})}, "roles": roles or {},
            "role_names": set(roles or {})}


def test_rbac_plan_orders_writes_as_etcd_needs():
    users, roles = etcd_rbac.validate(
        [{"name": "root", "password": "rootpw", "roles": ["root"]}, {"name": "old", "state": "absent"},
         {"name": "calico", "password": "calicopw", "roles": ["calico"]}],
        [{"name": "calico", "permissions": [{"key": "/calico/", "prefix": True, "permission": "readwrite"}]},
         {"name": "gone", "state": "absent"}])
    current = _current(users={"old": ["gone"], "calico": None}, roles={"calico": None, "gone": {}})
    etcd_rbac._check_rules(users, roles, current, True)
    steps, before, after = etcd_rbac._plan(users, roles, current, True, "on_create", None)
    kinds = [s[0] for s in steps]
    assert kinds[0] == "role_add" and kinds[-1] == "auth_enable"
    assert kinds.index("user_grant_role") < kinds.index("user_delete") < kinds.index("role_delete")
    assert after["users"] == {"root": {"roles": ["root"]}, "calico": {"roles": ["calico"]}}
    assert before["users"] == {"old": {"roles": ["gone"]}} and after["auth_enabled"] is True


def test_rbac_nothing_to_do_is_an_empty_plan():
    users, roles = etcd_rbac.validate([{"name": "calico", "password": "pw", "roles": ["calico"]}],
                                      [{"name": "calico", "permissions": [
                                          {"key": "/calico/", "prefix": True, "permission": "readwrite"}]}])
    current = _current(auth=True, users={"root": ["root"], "calico": ["calico"]},
                       roles={"calico": {("/calico/", "/calico0"): "readwrite"}})
    assert etcd_rbac._plan(users, roles, current, True, "on_create", None)[0] == []


def test_rbac_revoking_root_while_auth_stays_on_is_refused():
    users, roles = etcd_rbac.validate([{"name": "root", "roles": []}], [])
    with pytest.raises(EtcdOpsError, match=r"auth is enabled: .* user root lacks the role root"):
        etcd_rbac._check_rules(users, roles, _current(auth=True, users={"root": ["root"]}), None)
