"""Real BIRD configured only from etcd: the collection's apply writes the plan, ``bird_render`` renders
every node's config from what etcd holds (as calico-node's confd does), BIRD runs in network namespaces.

Each test uses the session etcd (wiped), 20 Calico nodes with in-cluster reflectors, and a probe that
samples every node's table about once a second. Every daemon is stopped by PID and every namespace
deleted in the fixture's finalizer, also on failure. The measured losses are printed (``-s``) and
documented in docs/bgp-lab.md.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from bgp_lab_fixtures import needs_bird_netns

pytestmark = [needs_bird_netns, pytest.mark.root, pytest.mark.slow]

N = 20


@pytest.fixture
def lab(etcd_single, tmp_path, request):
    from bgp_lab.scenario import Scenario

    rule = getattr(request, "param", "ignore")  # which confd's mesh rule for reflectors
    with etcd_single.client() as client:
        sc = Scenario(client, tmp_path / "lab", threads=4, reflector_mesh=rule)
        try:
            yield sc
        finally:
            sc.teardown()


def _start(sc, mode: str) -> dict:
    from bgp_lab.configs import apply, make_plan, seed_ipam

    plan = make_plan(N, mode)
    apply(sc.client, plan)
    seed_ipam(sc.client, plan)
    sc.sync()
    _secs, done, outcome = sc.wait_converged(time.monotonic() + 90)
    assert outcome == "converged", f"{done}/{N} nodes have every block"
    return plan


def _complete(sc) -> dict[str, int]:
    """{node: blocks it lacks}, only for nodes that lack some."""
    want = sc.expected()
    return {n: len(want - (t or set())) for n, t in sc.tables().items() if not t or want - t}


def test_reflectors_from_the_datastore_then_one_reflector_stopped_keeps_every_route(lab):
    from bgp_lab.scenario import Probe

    plan = _start(lab, "route_reflector")
    rrs = {r["name"] for r in plan["reflectors"]}
    rr_ips = {lab.lab.hosts[r].ip for r in rrs}
    assert len(rrs) == 2
    ips = {n: lab.lab.hosts[n].ip for n in lab.nodes}
    for name in lab.nodes:  # a client's only sessions are to its reflectors; a reflector's to everyone
        peers = {p["neighbor_address"] for p in lab.lab.query(name, "protocols") if p["proto"] == "BGP"}
        assert peers == (rr_ips if name not in rrs else set(ips.values()) - {ips[name]}), name
    assert (
        "rr client;" in lab.configs[sorted(rrs)[0]] and "rr client" not in lab.configs[sorted(set(lab.nodes) - rrs)[0]]
    )

    # every client holds a path via each reflector before one goes (CI once stopped a reflector while
    # the other's routes were still arriving: 36 pairs lost for a sample)
    assert lab.wait_fed_by(rr_ips, time.monotonic() + 60)
    probe = Probe(lab).start()
    victim = sorted(rrs)[0]
    probe.exclude(victim)  # its own block leaves with it
    lab.stop(victim, signal.SIGTERM)
    time.sleep(8)
    summary = probe.stop()
    print("reflector stopped:", json.dumps(summary))
    assert summary["samples"] >= 5
    assert summary["distinct_pairs_lost"] == 0
    assert _complete(lab) == {}


def test_node_joining_outside_the_inventory_gets_every_block(lab):
    from bgp_lab.configs import add_node, host_ip
    from bgp_lab.scenario import Probe

    plan = _start(lab, "route_reflector")
    assert "joined-0" not in {n["name"] for n in plan["nodes"]}
    probe = Probe(lab).start()
    add_node(lab.client, "joined-0", host_ip(N + 5))  # registered by calico-node, unknown to the inventory
    step = lab.sync()
    assert step["started"] == 1 and step["reconfigured"] == 2  # the two reflectors peer back
    _secs, done, outcome = lab.wait_converged(time.monotonic() + 60)
    summary = probe.stop()
    print("node joined:", json.dumps(summary))
    assert outcome == "converged", done
    assert len(lab.expected()) == N + 1
    assert summary["distinct_pairs_lost"] == 0
    assert _complete(lab) == {}


def test_live_mesh_to_reflector_switch_measured_with_a_probe(lab):
    """The site.yml sequence: apply ``prepare``, wait until every rendered session is up, ``finish``.

    Measured (docs/bgp-lab.md, "Finding"): the promotion revision takes each reflector out of the
    mesh before its selector sessions exist, so for about two seconds (BIRD's connect delay) the
    reflectors and their clients lack each other's blocks; and while the mesh is still on, a client
    renders both ``Mesh_<rr>`` and ``Node_<rr>`` to a reflector: when the session came up on the
    mesh protocol, the mesh-off revision drops it and the client loses the reflected blocks until
    ``Node_<rr>`` connects. The test holds what is true every time: the loss is bounded in time and
    every pair is back at the end, with no mesh left; the counts are printed.
    """
    from bgp_lab.configs import make_plan
    from bgp_lab.scenario import Probe

    _start(lab, "mesh")
    probe = Probe(lab).start()
    time.sleep(2)
    rr_plan = make_plan(N, "route_reflector")
    lab.transition(rr_plan, phase="prepare")
    assert lab.wait_sessions(time.monotonic() + 60)
    lab.transition(rr_plan, phase="finish")
    _secs, done, outcome = lab.wait_converged(time.monotonic() + 60)
    time.sleep(4)
    summary = probe.stop()
    print("mesh -> reflectors:", json.dumps(summary), [s["lost_pairs"] for s in probe.samples])
    assert outcome == "converged", done
    assert _complete(lab) == {}
    assert "Mesh_" not in "".join(lab.configs.values())  # the mesh is gone everywhere
    assert summary["distinct_pairs_lost"] <= N * (N - 1)
    lossy = [s["t"] for s in probe.samples if s["lost_pairs"]]
    assert not lossy or lossy[-1] - lossy[0] <= 10, lossy  # seconds, not until the end
    assert probe.samples[-1]["lost_pairs"] == 0


@pytest.mark.parametrize("lab", ["exclude"], indirect=True)
def test_with_confd_excluding_reflectors_from_the_mesh_the_mesh_off_step_loses_nothing(lab):
    """confd since PR #619 renders no ``Mesh_<rr>``: each client's reflector sessions are its
    ``Node_<rr>`` protocols only, which the mesh-off revision leaves alone, so every block keeps a
    path through the reflectors while the mesh sessions go (measured at N = 400 too, docs/bgp-lab.md).
    Under the older rule (``ignore``) a client's session to a reflector can be its ``Mesh_<rr>``,
    and the mesh-off revision drops it."""
    from bgp_lab.configs import make_plan
    from bgp_lab.scenario import Probe

    _start(lab, "mesh")
    rr_plan = make_plan(N, "route_reflector")
    lab.transition(rr_plan, phase="prepare")
    assert lab.wait_sessions(time.monotonic() + 60)
    rr_ips = {lab.lab.hosts[r["name"]].ip for r in rr_plan["reflectors"]}
    client_conf = next(c for n, c in lab.configs.items() if lab.lab.hosts[n].ip not in rr_ips)
    assert not any(f"Mesh_{ip.replace('.', '_')} " in client_conf for ip in rr_ips)
    time.sleep(1)
    probe = Probe(lab, interval=0.5).start()
    time.sleep(1)
    steps = lab.transition(rr_plan, phase="finish")
    assert sum(s["reconfigured"] for s in steps) == N - 2  # every client dropped its mesh
    time.sleep(5)
    summary = probe.stop()
    print("mesh off (confd mesh rule exclude):", json.dumps(summary), [s["lost_pairs"] for s in probe.samples])
    assert summary["samples"] >= 5
    assert summary["max_lost_pairs_at_a_sample"] == 0, summary
    assert "Mesh_" not in "".join(lab.configs.values())
    assert _complete(lab) == {}


def test_teardown_leaves_no_namespace_and_no_process(etcd_single, tmp_path):
    import os
    import subprocess

    from bgp_lab.configs import apply, make_plan, seed_ipam
    from bgp_lab.scenario import Scenario

    with etcd_single.client() as client:
        plan = make_plan(3, "route_reflector")
        apply(client, plan)
        seed_ipam(client, plan)
        sc = Scenario(client, tmp_path / "lab", threads=2)
        try:
            sc.sync()
            pids = [h.proc.pid for h in sc.lab.hosts.values()]
            names = [h.netns for h in sc.lab.hosts.values()] + [sc.lab.hub]
        finally:
            sc.teardown()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(name in listed.split() for name in names)
