"""labhosts input checks and inventory shape (no root, nothing booted)."""

from __future__ import annotations

import labhosts
import pytest
import yaml


@pytest.fixture
def lab(tmp_path):
    lab = labhosts.Lab(tmp_path / "state")
    lab.state.subnet = "10.213.5.0/24"
    return lab


@pytest.mark.parametrize(("hosts", "needle"), [
    ([labhosts.Host("a", "10.213.6.2")], "must be in 10.213.5.0/24"),
    ([labhosts.Host("a", "10.213.5.1")], "not the gateway"),
    ([labhosts.Host("a", "10.213.5.2"), labhosts.Host("b", "10.213.5.2")], "already used by a"),
    ([labhosts.Host("a_b", "10.213.5.2")], "host name 'a_b'"),
])
def test_bad_hosts_are_refused_before_anything_starts(lab, hosts, needle):
    with pytest.raises(labhosts.LabError, match=needle):
        lab.validate(hosts)


def test_host_spec_parsing():
    h = labhosts.parse_host("etcd-1:10.213.0.11:management,route_reflectors")
    assert (h.name, h.ip, h.groups) == ("etcd-1", "10.213.0.11", ["management", "route_reflectors"])
    with pytest.raises(labhosts.LabError, match="NAME:IP"):
        labhosts.parse_host("etcd-1")


def test_inventory_lists_running_hosts_with_groups_and_connection_vars(lab):
    lab.state.hosts = {"a": labhosts.Host("a", "10.213.5.2", ["management"], pid=123),
                       "b": labhosts.Host("b", "10.213.5.3", ["worker"], pid=0)}
    lab.write_inventory()
    inv = yaml.safe_load(lab.inventory.read_text())["all"]
    assert list(inv["hosts"]) == ["a"]  # b is not running
    assert inv["hosts"]["a"]["ansible_host"] == "10.213.5.2"
    assert inv["hosts"]["a"]["ansible_ssh_private_key_file"] == str(lab.key)
    assert inv["children"] == {"management": {"hosts": {"a": None}}}
    assert "vars" not in inv  # the implicit localhost keeps its own interpreter


def test_template_key_depends_on_package_list():
    assert labhosts.template_key(["a", "b"]) == labhosts.template_key(["b", "a"])
    assert labhosts.template_key(["a"]) != labhosts.template_key(["a", "c"])


def test_alive_refuses_a_foreign_pid(lab):
    assert not lab.alive(labhosts.Host("a", "10.213.5.2", pid=1))  # PID 1 is not our systemd-nspawn
