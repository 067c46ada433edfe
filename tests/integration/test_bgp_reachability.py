"""A route-reflector plan gives full reachability, and keeps it when one reflector stops.

12 Calico-node BIRDs and the plan's 2 external reflectors (configured by the route_reflector
role's template) run in their own network namespaces on a bridge the test creates. Every
daemon is stopped by PID and every namespace deleted in the fixture's finalizer, also on failure.
"""

from __future__ import annotations

import signal
import time

import pytest
from bgp_lab_fixtures import needs_bird_netns

pytestmark = [needs_bird_netns, pytest.mark.root]

N = 12


@pytest.fixture
def rr_lab(tmp_path):
    from bgp_lab.configs import make_plan
    from bgp_lab.scenario import Scenario

    plan = make_plan(N, "route_reflector")
    sc = Scenario(plan, tmp_path / "lab", threads=4)
    try:
        sc.build()
        sc.start(deadline=time.monotonic() + 30)
        yield sc
    finally:
        sc.teardown()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def _peer_routes(sc, rr_name: str) -> dict[str, int | None]:
    ip = sc.lab.hosts[rr_name].ip
    return {node: sc.routes_via(node, ip) for node in sc.nodes}


def test_plan_is_route_reflectors_with_two_reflectors(rr_lab):
    assert rr_lab.plan["mode"] == "route_reflector"
    assert len(rr_lab.rrs) == 2
    assert all(sorted(nd["peers"]) == sorted(rr_lab.rrs) for nd in rr_lab.plan["nodes"])


def test_every_node_learns_every_block_through_each_reflector_and_after_one_stops(rr_lab):
    sc = rr_lab
    rr0, rr1 = sc.rrs
    own = {nd["name"]: sc.blocks[nd["name"]] for nd in sc.plan["nodes"]}

    # every node: all N blocks in its table, N-1 of them imported from each reflector session
    _secs, done, outcome = sc.wait_converged(time.monotonic() + 60)
    assert outcome == "converged", f"only {done}/{N} nodes learned all {N} blocks"
    for rr in (rr0, rr1):
        via = _wait(lambda rr=rr: (v := _peer_routes(sc, rr)) and all(x == N - 1 for x in v.values()) and v,
                    30, f"every node importing {N - 1} blocks from {rr}")
        assert set(via) == set(sc.nodes)
    # the reflectors really are the only path: a node has no session to another node
    for node in sc.nodes:
        status = sc.lab.query(node, "protocols")
        peers = {p["neighbor_address"] for p in status if p["proto"] == "BGP"}
        assert peers == {sc.lab.hosts[rr0].ip, sc.lab.hosts[rr1].ip}
    # and each block is the one its owner announces
    sample = sc.nodes[0]
    routes = sc.lab.query(sample, "route_count")
    assert routes["networks"] == N
    assert len(set(own.values())) == N

    # a clean stop withdraws rr-0's routes; every node must keep all blocks through rr-1
    sc.lab.kill(rr0, signal.SIGTERM)
    _wait(lambda: all(v is None for v in _peer_routes(sc, rr0).values()), 30,
          f"every node's session to {rr0} to go down")
    via_survivor = _peer_routes(sc, rr1)
    assert via_survivor == dict.fromkeys(sc.nodes, N - 1)
    for node in sc.nodes:
        assert sc.lab.query(node, "route_count")["networks"] == N, node


def test_teardown_leaves_no_namespace_and_no_process(tmp_path):
    from bgp_lab.configs import make_plan
    from bgp_lab.scenario import Scenario

    sc = Scenario(make_plan(3, "route_reflector"), tmp_path / "lab", threads=2)
    try:
        sc.build()
        sc.start(deadline=time.monotonic() + 30)
        pids = [h.proc.pid for h in sc.lab.hosts.values()]
        names = [h.netns for h in sc.lab.hosts.values()] + [sc.lab.hub]
    finally:
        sc.teardown()
    import os
    import subprocess

    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(name in listed.split() for name in names)
