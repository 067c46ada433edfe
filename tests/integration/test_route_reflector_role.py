"""The route_reflector role against real BIRD daemons in network namespaces.

Four Calico-node BIRDs and two reflectors run in namespaces the test creates. The role (run
with ansible-playbook on the controller, package/systemd management off) renders rr-0's config
from the plan, checks it with ``bird -p``, reloads with ``birdc configure`` and verifies the
sessions with the bgp_status module. Adding a node must not restart the established sessions;
an unchanged plan must change nothing; a config BIRD rejects must never reach the live file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bgp_lab_fixtures import REPO, needs_bird_netns

pytestmark = [needs_bird_netns, pytest.mark.root]

PLAYBOOK = REPO / "tests" / "integration" / "playbooks" / "route_reflector.yml"
# Debian's bird (1.6) conflicts with bird2, so it is unpacked, not installed:
#   (cd /tmp && apt-get download bird && dpkg -x bird_*.deb "$REPO/.lab/bird16")
BIRD16 = os.environ.get("KUBESCALE_BIRD16", str(REPO / ".lab" / "bird16" / "usr" / "sbin" / "bird"))


def play(tmp_path: Path, variables: dict, check: bool = True) -> subprocess.CompletedProcess:
    stamp = time.monotonic_ns()
    vars_file = tmp_path / f"vars-{stamp}.json"
    result_file = tmp_path / f"result-{stamp}.json"
    vars_file.write_text(json.dumps({**variables, "result_file": str(result_file)}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         "-e", f"@{vars_file}", str(PLAYBOOK)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"ansible-playbook failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    proc.result = json.loads(result_file.read_text()) if result_file.exists() else None
    return proc


def task_results(proc: subprocess.CompletedProcess) -> dict:
    return proc.result


def role_vars(sc, plan: dict, **extra) -> dict:
    h = sc.lab.hosts["rr-0"]
    return {"route_reflector_plan": plan, "route_reflector_name": "rr-0", "route_reflector_install": False,
            "route_reflector_manage_service": False, "route_reflector_config_path": h.config,
            "route_reflector_socket": h.socket, "route_reflector_config_owner": "",
            "route_reflector_config_group": "", "route_reflector_log": "",
            "route_reflector_verify_retries": 20, "route_reflector_verify_delay": 1, **extra}


def sessions(sc) -> dict[str, dict]:
    from ansible_collections.kubescale.calico.plugins.module_utils.bird import bgp_status

    return {s["name"]: s for s in bgp_status(sc.lab.hosts["rr-0"].socket)["sessions"]}


@pytest.fixture
def lab(tmp_path):
    from bgp_lab.plan_configs import make_plan
    from bgp_lab.plan_scenario import Scenario

    plan = make_plan(4, "route_reflector")
    sc = Scenario(plan, tmp_path / "lab", threads=4)
    try:
        sc.build()
        configs = sc.configs()
        # rr-0 starts with a bare config; the role gives it its real one
        configs["rr-0"] = "router id 198.18.0.10;\nprotocol device {}\n"
        for name in sc.rrs + sc.nodes:
            sc.lab.start(name, configs[name])
        sc.lab.wait_sockets(sc.rrs + sc.nodes)
        yield sc
    finally:
        sc.teardown()


def test_role_configures_reloads_without_dropping_sessions_and_is_idempotent(lab, tmp_path):
    from bgp_lab.plan_configs import make_plan

    plan4 = lab.plan
    first = task_results(play(tmp_path, role_vars(lab, plan4, route_reflector_verify_established=True)))
    assert first["config"]["changed"] is True
    status = first["status"]
    assert status["sessions_total"] == 5 and status["not_established"] == []  # 4 clients + rr-1
    assert sum(s["rr_client"] for s in status["sessions"]) == 4
    before = sessions(lab)
    assert all(s["established"] for s in before.values())

    time.sleep(1.2)  # BIRD's 'since' has millisecond resolution; make a restart visible
    plan5 = make_plan(5, "route_reflector")  # one node more; existing nodes keep their IPs
    second = task_results(play(tmp_path, role_vars(lab, plan5)))
    assert second["config"]["changed"] is True
    assert second["reload"]["changed"] is True and "Reconfigured" in second["reload"]["stdout"]
    after = sessions(lab)
    assert set(after) == set(before) | {"client_198_18_0_16"}
    for name, s in before.items():
        assert after[name]["established"], name
        assert after[name]["since"] == s["since"], f"{name} was restarted by the reload"

    third = task_results(play(tmp_path, role_vars(lab, plan5)))
    assert third["config"]["changed"] is False
    assert third["reload"] is None


def test_config_bird_rejects_never_replaces_the_live_file(lab, tmp_path):
    live = Path(lab.lab.hosts["rr-0"].config)
    original = live.read_text()
    proc = play(tmp_path, role_vars(lab, lab.plan, route_reflector_error_wait_time="soon"), check=False)
    assert proc.returncode != 0
    assert "failed to validate" in proc.stdout
    assert live.read_text() == original


def test_plan_without_reflectors_is_refused_naming_the_variable(lab, tmp_path):
    from bgp_lab.plan_configs import make_plan

    proc = play(tmp_path, role_vars(lab, make_plan(4, "mesh")), check=False)
    assert proc.returncode != 0
    assert "route_reflector_plan: must be a topology plan with mode 'route_reflector'" in proc.stdout


@pytest.mark.parametrize("variant", [
    {"route_reflector_bird_version": 2},
    {"route_reflector_bird_version": 2, "route_reflector_direct": False},
    {"route_reflector_bird_version": 2, "route_reflector_dynamic_ranges": ["198.18.0.0/15"]},
    {"route_reflector_bird_version": 1},
    {"route_reflector_bird_version": 1, "route_reflector_direct": False},
])
def test_rendered_config_passes_bird_parse(variant, tmp_path):
    """Every template variant is accepted by ``bird -p`` (BIRD 1.6 variants need the 1.6 binary)."""
    from bgp_lab.plan_configs import make_plan, reflector_config

    binary = "bird" if variant["route_reflector_bird_version"] == 2 else BIRD16
    if not Path(binary).exists() and binary != "bird":
        pytest.skip(f"BIRD 1.6 binary not found at {binary} (set KUBESCALE_BIRD16)")
    plan = make_plan(30, "route_reflector")
    conf = tmp_path / "bird.conf"
    conf.write_text(reflector_config(plan, "rr-1", **variant))
    proc = subprocess.run([binary, "-p", "-c", str(conf)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    text = conf.read_text()
    assert "rr cluster id 224.0.0.1;" in text
    if "route_reflector_dynamic_ranges" in variant:
        assert "neighbor range 198.18.0.0/15" in text and "client_" not in text
    else:
        assert text.count("from rr_clients") == 30


def test_role_plans_from_the_inventory_when_no_plan_is_given(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("""
all:
  vars: {calico_bgp_mode: route_reflector, ansible_connection: local}
  children:
    worker:
      hosts:
        w1: {calico_bgp_ip: 198.18.1.1}
        w2: {calico_bgp_ip: 198.18.1.2}
        w3: {calico_bgp_ip: 198.18.1.3}
    route_reflectors:
      hosts:
        rr-a: {calico_bgp_ip: 198.18.0.1, calico_rack: r1}
        rr-b: {calico_bgp_ip: 198.18.0.2, calico_rack: r2}
""")
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "-e", f"ansible_python_interpreter={sys.executable}",
         "-e", f"config_dir={tmp_path}", str(PLAYBOOK.with_name("route_reflector_inventory.yml"))],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for me, other in (("rr-a", "198.18.0.2"), ("rr-b", "198.18.0.1")):
        text = (tmp_path / f"{me}.conf").read_text()
        assert [line.split()[1] for line in text.splitlines() if line.strip().startswith("neighbor 198.18.1.")] \
            == ["198.18.1.1", "198.18.1.2", "198.18.1.3"]
        assert f"neighbor {other} as 64512;" in text
        assert "rr cluster id 224.0.0.1;" in text
