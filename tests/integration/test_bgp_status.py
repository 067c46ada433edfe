"""bgp_status against real BIRD daemons (BIRD 2 and, when its binary is present, BIRD 1.6).

A reflector (BIRD 2) with three planned clients runs in network namespaces the test creates;
two clients run (one of them BIRD 1.6 when available, the version Calico's BIRD is forked
from), the third is never started, so its session stays down.
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

# Debian's bird (1.6) conflicts with bird2, so it is unpacked, not installed:
#   (cd /tmp && apt-get download bird && dpkg -x bird_*.deb "$REPO/.lab/bird16")
BIRD16 = os.environ.get("KUBESCALE_BIRD16", str(REPO / ".lab" / "bird16" / "usr" / "sbin" / "bird"))
HAVE_16 = Path(BIRD16).exists()


def module(args: str, check_mode: bool = False) -> tuple[int, dict]:
    cmd = ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", "kubescale.calico.bgp_status",
           "-a", args, "-e", f"ansible_python_interpreter={sys.executable}", "-o"]
    if check_mode:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    _unused, _unused, payload = proc.stdout.partition("=>")
    return proc.returncode, json.loads(payload)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from bgp_lab.plan_configs import make_plan, node_config
    from bgp_lab.plan_scenario import Scenario

    plan = make_plan(3, "route_reflector", reflectors=2)
    plan["reflectors"] = plan["reflectors"][:1]  # one reflector is enough here
    for nd in plan["nodes"]:
        nd["peers"] = ["rr-0"]
    sc = Scenario(plan, tmp_path_factory.mktemp("bgp-status") / "lab", threads=2)
    try:
        sc.build()
        configs = sc.configs()
        sc.lab.start("rr-0", configs["rr-0"])
        sc.lab.start("node-0000", configs["node-0000"])
        n1 = plan["nodes"][1]
        if HAVE_16:
            sc.lab.start("node-0001", node_config(plan, n1, sc.blocks[n1["name"]], bird_version=1), bird=BIRD16)
        else:
            sc.lab.start("node-0001", configs["node-0001"])
        sc.lab.wait_sockets(["rr-0", "node-0000", "node-0001"])
        from ansible_collections.kubescale.calico.plugins.module_utils.bird import bgp_status

        deadline = time.monotonic() + 30
        while bgp_status(sc.lab.hosts["rr-0"].socket)["sessions_established"] < 2:
            assert time.monotonic() < deadline, "clients did not connect to rr-0"
            time.sleep(0.25)
        yield sc
    finally:
        sc.teardown()


def test_reflector_sessions_states_and_routes(lab):
    rc, out = module(f"socket={lab.lab.hosts['rr-0'].socket}", check_mode=True)
    assert rc == 0, out
    assert out["changed"] is False
    assert out["version"].startswith("2.")
    assert out["router_id"] == lab.lab.hosts["rr-0"].ip
    by_ip = {s["peer_ip"]: s for s in out["sessions"]}
    up = [lab.lab.hosts[n].ip for n in ("node-0000", "node-0001")]
    down = lab.lab.hosts["node-0002"].ip
    for ip in up:
        s = by_ip[ip]
        assert s["state"] == "Established" and s["rr_client"] is True
        assert s["routes_imported"] == 1  # the client's own /26
        assert s["routes_exported"] == 1  # the other client's /26, reflected
        assert s["uptime_seconds"] is not None and s["uptime_seconds"] >= 0
    assert by_ip[down]["established"] is False and by_ip[down]["uptime_seconds"] is None
    assert out["not_established"] == [by_ip[down]["name"]]


def test_expect_established_fails_listing_the_down_session(lab):
    rc, out = module(f"socket={lab.lab.hosts['rr-0'].socket} expect_established=true")
    assert rc != 0
    down_ip = lab.lab.hosts["node-0002"].ip
    assert out["msg"].startswith("BGP sessions not established: client_")
    assert down_ip in out["msg"]
    assert lab.lab.hosts["node-0000"].ip not in out["msg"]


@pytest.mark.skipif(not HAVE_16, reason=f"BIRD 1.6 binary not found at {BIRD16} (set KUBESCALE_BIRD16)")
def test_reads_bird16_like_calico_node(lab):
    rc, out = module(f"socket={lab.lab.hosts['node-0001'].socket} expect_established=true")
    assert rc == 0, out
    assert out["version"] == "1.6.8"
    (session,) = out["sessions"]
    assert session["peer_ip"] == lab.lab.hosts["rr-0"].ip
    assert session["state"] == "Established"
    assert session["routes_imported"] == 1 and session["routes_exported"] == 1


def test_missing_socket_fails_naming_the_path(tmp_path):
    path = tmp_path / "nope" / "bird.ctl"
    rc, out = module(f"socket={path}")
    assert rc != 0
    assert out["msg"] == f"BIRD control socket {path} does not exist (is BIRD running?)"


def test_sockets_reads_the_first_that_exists(lab, tmp_path):
    rr = lab.lab.hosts["rr-0"].socket
    rc, out = module(f"sockets={tmp_path / 'absent.ctl'},{rr}")
    assert rc == 0, out
    assert out["socket"] == rr and out["found"] is True
    assert out["router_id"] == lab.lab.hosts["rr-0"].ip


def test_missing_ok_without_a_socket_reports_no_daemon(tmp_path):
    rc, out = module(f"sockets={tmp_path / 'a.ctl'},{tmp_path / 'b.ctl'} missing_ok=true expect_established=true")
    assert rc == 0, out
    assert out["found"] is False and out["socket"] is None
    assert out["sessions"] == [] and out["changed"] is False


def test_missing_ok_still_reads_a_socket_that_exists(lab):
    rc, out = module(f"socket={lab.lab.hosts['rr-0'].socket} missing_ok=true")
    assert rc == 0, out
    assert out["found"] is True and out["sessions_total"] == 3


def test_socket_and_sockets_together_are_refused(lab):
    rr = lab.lab.hosts["rr-0"].socket
    rc, out = module(f"socket={rr} sockets={rr}")
    assert rc != 0
    assert "mutually exclusive" in out["msg"] and "socket" in out["msg"]


def test_expect_routes_passes_once_the_reflected_block_is_in_the_table(lab):
    other = lab.blocks["node-0001"]  # reaches node-0000 only through the reflector
    deadline = time.monotonic() + 30
    while True:
        rc, out = module(f"socket={lab.lab.hosts['node-0000'].socket} expect_routes={other}")
        if rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert rc == 0, out
    assert out["routes_missing"] == []


def test_expect_routes_fails_listing_the_blocks_the_table_lacks(lab):
    own = lab.blocks["node-0000"]
    rc, out = module(f"socket={lab.lab.hosts['node-0000'].socket} expect_routes={own},10.254.0.0/26,10.254.1.0/26")
    assert rc != 0
    assert out["routes_missing"] == ["10.254.0.0/26", "10.254.1.0/26"]
    assert out["msg"] == "2 of 3 expected routes not in BIRD's table: 10.254.0.0/26, 10.254.1.0/26"
