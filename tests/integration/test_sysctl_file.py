"""Module sysctl_file and role node_tuning through Ansible, on localhost with files in a temporary directory.

Reloads run ``sysctl -e -p`` for real on this machine, so the reloading cases only write a key at the
value it already has (read from /proc/sys first) and a key no kernel has (``-e`` skips it).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import yaml
from playbook_run import REPO, run_module, run_playbook

GC1 = "net.ipv4.neigh.default.gc_thresh1"


def current(key: str) -> str:
    return Path("/proc/sys", *key.split(".")).read_text().strip()


def test_writes_sorted_lines_reloads_and_a_rerun_changes_nothing(tmp_path):
    path = tmp_path / "60-test.conf"
    args = {"path": str(path), "header": "managed\nby a test", "settings": {GC1: current(GC1),
            "net.kubescale.no_such_key": 1}}
    first = run_module("sysctl_file", args)
    assert first["changed"] is True and first["reloaded"] is True, first
    assert path.read_text() == (f"# managed\n# by a test\n{GC1} = {current(GC1)}\n"
                                "net.kubescale.no_such_key = 1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    second = run_module("sysctl_file", args)
    assert second["changed"] is False and second["reloaded"] is False


def test_check_mode_reports_the_file_and_writes_nothing(tmp_path):
    path = tmp_path / "60-test.conf"
    out = run_module("sysctl_file", {"path": str(path), "settings": {"net.core.somaxconn": 4096}, "reload": False},
                     check=True, diff=True)
    assert out["changed"] is True
    assert out["diff"]["after"] == "net.core.somaxconn = 4096\n" and out["diff"]["before"] == ""
    assert not path.exists()


def test_stale_files_removed_and_a_wrong_mode_fixed_without_reload(tmp_path):
    path, stale = tmp_path / "60-new.conf", tmp_path / "60-old.conf"
    args = {"path": str(path), "settings": {"net.core.somaxconn": 4096}, "reload": False,
            "stale_files": [str(stale), str(tmp_path / "never-there.conf")]}
    assert run_module("sysctl_file", args)["changed"] is True
    stale.write_text("net.core.somaxconn = 1\n")
    os.chmod(path, 0o600)
    check = run_module("sysctl_file", args, check=True)
    assert check["changed"] is True and check["removed"] == [str(stale)]
    assert stale.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    out = run_module("sysctl_file", args)
    assert out["changed"] is True and out["removed"] == [str(stale)]
    assert not stale.exists() and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert run_module("sysctl_file", args)["changed"] is False


def test_bad_keys_and_values_are_listed_together_and_nothing_is_written(tmp_path):
    path = tmp_path / "60-bad.conf"
    out = run_module("sysctl_file", {"path": str(path), "settings": {
        "net core somaxconn": 1, "net.core.rmem_max": "1\n2", "net.core.wmem_max": True, "vm.swappiness": 10}})
    assert out["failed"] is True
    assert out["msg"] == ("settings: 'net core somaxconn' is not a sysctl key "
                          "(e.g. net.ipv4.neigh.default.gc_thresh3); "
                          "net.core.rmem_max: value '1\\n2' must be one line without '#' or ';'; "
                          "net.core.wmem_max: value True must be a number or a string")
    assert not path.exists()


def test_node_tuning_one_file_with_the_larger_value_of_proxy_and_worker(tmp_path):
    """A host in both proxy and worker: one file, per key the larger number, one call on a rerun."""
    path = tmp_path / "60-kubescale-calico.conf"
    inventory = tmp_path / "hosts.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "proxy": {"hosts": {"edge-1": host}}, "worker": {"hosts": {"edge-1": host}}}}}))
    playbook = tmp_path / "tune.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "tuning", "hosts": "proxy:worker", "gather_facts": False,
        "tasks": [{"name": "one file", "ansible.builtin.include_role": {"name": "kubescale.calico.node_tuning"}}]}]))
    extra = {"node_tuning_sysctl_file": str(path), "node_tuning_reload": False,
             "node_tuning_stale_files": [str(tmp_path / "60-kubescale-proxy.conf")],
             "worker_nf_conntrack_max": 4194304, "proxy_sysctl_extra": {"net.ipv4.tcp_fin_timeout": 15}}
    first = run_playbook(playbook, inventory=inventory, extra_vars=extra, cwd=REPO)
    assert first.returncode == 0, first.stdout[-3000:]
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    settings = dict(line.split(" = ", 1) for line in lines)
    assert settings["net.netfilter.nf_conntrack_max"] == "4194304"  # worker's, larger than proxy's 2097152
    assert settings["net.ipv4.neigh.default.gc_thresh3"] == "65536"
    assert settings["net.ipv4.tcp_fin_timeout"] == "15" and settings["net.core.somaxconn"] == "32768"
    assert "(proxy, worker)" in path.read_text()
    again = run_playbook(playbook, inventory=inventory, extra_vars=extra, cwd=REPO)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]


def test_requirements_that_disagree_fail_naming_the_groups_and_write_nothing(tmp_path):
    path = tmp_path / "60-test.conf"
    out = run_module("sysctl_file", {"path": str(path), "reload": False, "requirements": {
        "proxy": {"net.ipv4.ip_local_port_range": "1024 65000"},
        "worker": {"net.ipv4.ip_local_port_range": "32768 60999"}}})
    assert out["failed"] is True
    assert out["msg"] == ("node groups want different values for net.ipv4.ip_local_port_range "
                          "(proxy: '1024 65000', worker: '32768 60999'); make them agree")
    assert not path.exists()


def test_settings_and_requirements_together_are_refused(tmp_path):
    out = run_module("sysctl_file", {"path": str(tmp_path / "x.conf"), "settings": {"vm.swappiness": 1},
                                     "requirements": {"worker": {"vm.swappiness": 1}}})
    assert out["failed"] is True and "mutually exclusive" in out["msg"]
