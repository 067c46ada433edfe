"""sysctl_conf: validation, the merge of several node groups' requirements, the rendered file."""

from __future__ import annotations

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.sysctl_conf import SysctlError, merge, render, validate


def test_merge_takes_the_largest_number_per_key_and_keeps_the_others():
    out = merge({"proxy": {"net.netfilter.nf_conntrack_max": 2097152, "net.core.somaxconn": 32768},
                 "worker": {"net.netfilter.nf_conntrack_max": "4194304", "net.ipv4.neigh.default.gc_thresh3": 65536}})
    assert out == {"net.netfilter.nf_conntrack_max": "4194304", "net.core.somaxconn": "32768",
                   "net.ipv4.neigh.default.gc_thresh3": "65536"}


def test_merge_keeps_a_non_number_all_groups_agree_on_and_ignores_empty_groups():
    out = merge({"proxy": {"net.ipv4.ip_local_port_range": "1024 65000"}, "worker": {},
                 "edge": {"net.ipv4.ip_local_port_range": "1024 65000"}})
    assert out == {"net.ipv4.ip_local_port_range": "1024 65000"}


def test_merge_refuses_different_non_numbers_naming_key_and_groups():
    with pytest.raises(SysctlError) as exc:
        merge({"proxy": {"net.ipv4.ip_local_port_range": "1024 65000"},
               "worker": {"net.ipv4.ip_local_port_range": "32768 60999"}})
    assert str(exc.value) == ("node groups want different values for net.ipv4.ip_local_port_range "
                              "(proxy: '1024 65000', worker: '32768 60999'); make them agree")


def test_merge_refuses_nothing_to_write_and_bad_settings_of_a_group():
    with pytest.raises(SysctlError, match="no node group asks for any setting"):
        merge({"proxy": {}, "worker": None})
    with pytest.raises(SysctlError, match="'bad key' is not a sysctl key"):
        merge({"worker": {"bad key": 1}})


def test_validate_refuses_non_ascii_digits_as_numbers_in_merge():
    # '٣' is a digit to str.isdigit() but not a number sysctl reads; as a non-number it must agree
    with pytest.raises(SysctlError, match="different values"):
        merge({"a": {"vm.swappiness": "٣"}, "b": {"vm.swappiness": 10}})


def test_render_header_lines_and_sorted_keys():
    assert render(validate({"b.x": 2, "a.y": "1 2"}), "one\ntwo") == "# one\n# two\na.y = 1 2\nb.x = 2\n"
