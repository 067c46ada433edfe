"""The lab grown by KSLAB_WORKERS: the spec for N workers and the host-limit arithmetic (nothing booted)."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path

import labhosts
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lab_spec", REPO / "scripts" / "lab_spec.py")
lab_spec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab_spec)
INVENTORY = yaml.safe_load((REPO / "inventories" / "lab" / "hosts.yml").read_text())


def _machine(**kw) -> labhosts.Machine:
    base = dict(max_instances=128, used_instances=10, max_watches=65536, used_watches=2000, bridge_ports=0,
                mem_available_mb=16000, root=True)
    return labhosts.Machine(**{**base, **kw})


# ------------------------------------------------------------ the spec for N workers


def test_default_spec_is_the_inventory_unchanged():
    spec = lab_spec.make_spec(INVENTORY, "br-kslab", "10.213.0.0/24")
    assert len(spec["hosts"]) == 9
    assert lab_spec.make_spec(INVENTORY, "br-kslab", "10.213.0.0/24", workers=2) == spec


@pytest.mark.parametrize("workers", [2, 3, 42, 150])
def test_n_workers_give_unique_names_and_addresses_in_the_subnet(workers):
    spec = lab_spec.make_spec(INVENTORY, "br-x", "10.213.7.0/24", workers=workers)
    hosts = spec["hosts"]
    assert len(hosts) == 7 + workers  # 1 master, 3 management, 1 proxy, 2 reflectors + the workers
    names, ips = [h["name"] for h in hosts], [h["ip"] for h in hosts]
    assert len(set(names)) == len(names) and len(set(ips)) == len(ips)
    net = ipaddress.ip_network("10.213.7.0/24")
    assert all(ipaddress.ip_address(ip) in net and ip not in ("10.213.7.1", "10.213.7.254") for ip in ips)
    workers_ = [h for h in hosts if h["groups"] == ["worker"]]
    assert [h["name"] for h in workers_] == [f"worker-{i}" for i in range(1, workers + 1)]
    assert workers_[0]["ip"] == "10.213.7.41" and workers_[1]["ip"] == "10.213.7.42"  # the inventory's
    if workers >= 3:
        assert workers_[2] == {"name": "worker-3", "ip": "10.213.7.103", "groups": ["worker"],
                               "vars": {"calico_rack": "rack-c"}}
        assert {h["vars"]["calico_rack"] for h in workers_[2:5]} <= {"rack-a", "rack-b", "rack-c"}


@pytest.mark.parametrize("workers", [0, 1, 151])
def test_out_of_range_worker_counts_are_refused(workers):
    with pytest.raises(lab_spec.SpecError, match=f"workers: {workers} is out of range, the lab takes 2 to 150"):
        lab_spec.make_spec(INVENTORY, "br-x", "10.213.7.0/24", workers=workers)


def test_the_generated_spec_passes_labhosts_checks_and_carries_racks_into_the_inventory(tmp_path):
    spec_file = tmp_path / "spec.yml"
    spec_file.write_text(yaml.safe_dump(lab_spec.make_spec(INVENTORY, "br-x", "10.213.7.0/24", workers=40)))
    hosts, _bridge, subnet = labhosts.load_spec(str(spec_file))
    lab = labhosts.Lab(tmp_path / "state")
    lab.state.subnet = subnet
    lab.validate(hosts)  # names, addresses in the subnet, no duplicates
    for i, h in enumerate(hosts):
        h.pid = 1000 + i
    lab.state.hosts = {h.name: h for h in hosts}
    lab.write_inventory()
    inv = yaml.safe_load(lab.inventory.read_text())["all"]
    assert len(inv["children"]["worker"]["hosts"]) == 40
    assert inv["hosts"]["worker-40"]["calico_rack"] == "rack-a"
    assert inv["hosts"]["worker-40"]["ansible_host"] == "10.213.7.140"
    assert "calico_rack" not in inv["hosts"]["worker-1"]  # the static inventory gives it


# ------------------------------------------------------------ host limits


def test_a_9_host_lab_fits_the_defaults():
    plan = labhosts.plan_limits(9, _machine())
    assert plan.raise_to == {} and plan.problems == []


def test_49_hosts_raise_inotify_instances_as_root():
    plan = labhosts.plan_limits(49, _machine())
    need = 10 + 49 * labhosts.INOTIFY_INSTANCES_PER_HOST  # 500 > 128
    assert plan.raise_to == {"fs.inotify.max_user_instances": (128, int(need * 1.25))}
    assert plan.problems == []


def test_watches_are_raised_too_when_short():
    plan = labhosts.plan_limits(49, _machine(max_watches=8192))
    assert plan.raise_to["fs.inotify.max_user_watches"] == (8192, int((2000 + 49 * 256) * 1.25))


def test_without_root_the_missing_limit_is_named_with_the_command():
    plan = labhosts.plan_limits(49, _machine(root=False))
    assert plan.raise_to == {}
    [problem] = plan.problems
    assert problem.startswith("fs.inotify.max_user_instances is 128, 49 hosts need about 500 (10 in use + 10 per host)")
    assert "sysctl -w fs.inotify.max_user_instances=625" in problem


def test_bridge_ports_and_memory_cannot_be_raised():
    plan = labhosts.plan_limits(100, _machine(bridge_ports=950, mem_available_mb=5000, max_instances=4096,
                                              max_watches=65536))
    assert len(plan.problems) == 2
    assert plan.problems[0].startswith("a Linux bridge takes at most 1024 ports: 950 in use + 100 hosts")
    assert plan.problems[1].startswith("memory: 100 hosts need about 12800 MB (128 MB each), 5000 MB available")


def test_check_limits_refuses_before_raising_anything(monkeypatch):
    writes = []
    monkeypatch.setattr(labhosts, "_sysctl_path", writes.append)
    with pytest.raises(labhosts.LabError, match=r"host limits too low for this lab:\n  memory: 49 hosts"):
        labhosts.check_limits(49, "br-x", _machine(mem_available_mb=1000))
    assert writes == []  # the inotify raise (needed too) was not done: nothing boots anyway


def test_check_limits_writes_the_raised_value_and_says_so(monkeypatch, tmp_path):
    files = {}

    def fake_path(key):
        files[key] = tmp_path / key
        return files[key]

    monkeypatch.setattr(labhosts, "_sysctl_path", fake_path)
    lines = labhosts.check_limits(49, "br-x", _machine())
    assert files["fs.inotify.max_user_instances"].read_text() == "625\n"
    assert lines == ["raised fs.inotify.max_user_instances from 128 to 625 for 49 hosts (until reboot; to keep it: "
                     "echo 'fs.inotify.max_user_instances = 625' > /etc/sysctl.d/90-kslab.conf)"]


def test_read_machine_reads_this_machine():
    m = labhosts.read_machine("br-does-not-exist")
    assert m.max_instances > 0 and m.max_watches > 0 and m.mem_available_mb > 0
    assert m.bridge_ports == 0
