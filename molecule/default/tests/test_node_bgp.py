"""Real BGP on every Calico node, configured only from the datastore: after site.yml each Calico node
(master, management, proxy, worker) runs a calico-node BGP STAND-IN, a distribution BIRD whose config
tests/lab/render_calico_node_bird.py rendered from the dedicated Calico etcd as calico-node's confd
would (tests/lab/calico_node_from_etcd.yml). Each node peers with both reflectors and learns every other
node's IPAM block through them, with that node as next hop."""

from __future__ import annotations

import json
import time

from conftest import STATE, spec

testinfra_hosts = ["ansible://master", "ansible://management", "ansible://proxy", "ansible://worker"]


def _wait(host, cmd: str, predicate, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = host.run(cmd).stdout
        if predicate(out) or time.monotonic() > deadline:
            return out
        time.sleep(2)


def _me(host) -> str:
    return host.ansible.get_variables()["inventory_hostname"]


def test_the_bird_config_is_the_one_rendered_from_etcd(host):
    rendered = (STATE / "calico-node-bird" / f"{_me(host)}.conf").read_text()
    assert host.file("/etc/bird/bird.conf").content_string == rendered
    assert "rendered from etcd" in rendered


def test_sessions_with_both_reflectors_are_established(host):
    reflectors = [h["ip"] for h in spec()["hosts"] if "route_reflectors" in h["groups"]]

    def established(out: str) -> bool:
        return all(any(ip.replace(".", "_") in line and "Established" in line for line in out.splitlines())
                   for ip in reflectors)

    out = _wait(host, "birdc show protocols", established)
    assert established(out), out


def test_every_other_nodes_block_is_learned_through_both_reflectors(host):
    blocks = json.loads((STATE / "calico-node-bird" / "blocks.json").read_text())
    hosts = {h["name"]: h for h in spec()["hosts"]}
    reflectors = [h["ip"] for h in hosts.values() if "route_reflectors" in h["groups"]]
    me = _me(host)
    assert set(blocks) - {me}, "no other node has a block"
    for node, cidrs in blocks.items():
        if node == me:
            continue
        for block in cidrs:
            out = _wait(host, f"birdc show route {block} all",
                        lambda o, b=block: b in o and all(f"from {ip}" in o for ip in reflectors))
            assert f"via {hosts[node]['ip']}" in out, out
            for ip in reflectors:
                assert f"from {ip}" in out, f"{block} of {node} not reflected by {ip}:\n{out}"
