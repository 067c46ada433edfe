"""Real BGP through the reflectors site.yml configured: each worker runs a calico-node BGP STAND-IN
(a distribution BIRD announcing the node's /26, tests/lab/calico_node_standin.yml) and learns the
other worker's block from both reflectors, with the other worker as next hop."""

from __future__ import annotations

import time

from conftest import spec

testinfra_hosts = ["ansible://worker"]


def _wait(host, cmd: str, predicate, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = host.run(cmd).stdout
        if predicate(out) or time.monotonic() > deadline:
            return out
        time.sleep(2)


def test_sessions_with_both_reflectors_are_established(host):
    reflectors = [h["ip"] for h in spec()["hosts"] if "route_reflectors" in h["groups"]]
    names = [f"rr_{ip.replace('.', '_')}" for ip in reflectors]

    def established(out: str) -> bool:
        return all(any(line.startswith(n) and "Established" in line for line in out.splitlines()) for n in names)

    out = _wait(host, "birdc show protocols", established)
    assert established(out), out


def test_the_other_workers_block_is_learned_through_both_reflectors(host):
    hosts = spec()["hosts"]
    workers = [h for h in hosts if "worker" in h["groups"]]
    me = host.ansible.get_variables()["inventory_hostname"]
    reflectors = [h["ip"] for h in hosts if "route_reflectors" in h["groups"]]
    for index, other in enumerate(workers):
        if other["name"] == me:
            continue
        block = f"192.168.{200 + index}.0/26"
        out = _wait(host, f"birdc show route {block} all", lambda o, b=block: o.count(b) >= 1 and all(
            f"from {ip}" in o for ip in reflectors))
        assert f"via {other['ip']}" in out, out
        for ip in reflectors:
            assert f"from {ip}" in out, f"{block} not reflected by {ip}:\n{out}"
