"""The external route reflectors run BIRD configured from the plan: one client session per node and an
iBGP session to the other reflector, which is Established (no calico-node runs in the lab, so the
client sessions wait for their peers)."""

from __future__ import annotations

from conftest import spec

testinfra_hosts = ["ansible://route_reflectors"]


def _protocols(host) -> str:
    res = host.run("birdc show protocols")
    assert res.rc == 0, res.stderr
    return res.stdout


def test_bird_runs(host):
    assert host.service("bird").is_running


def test_a_client_session_per_calico_node(host):
    out = _protocols(host)
    nodes = [h["ip"] for h in spec()["hosts"] if "route_reflectors" not in h["groups"]]
    for ip in nodes:
        assert f"client_{ip.replace('.', '_')}" in out, f"no session for {ip}:\n{out}"


def test_the_reflectors_peer_with_each_other(host):
    me = host.ansible.get_variables()["ansible_host"]
    others = [h["ip"] for h in spec()["hosts"] if "route_reflectors" in h["groups"] and h["ip"] != me]
    out = _protocols(host)
    for ip in others:
        line = next((line for line in out.splitlines() if line.startswith(f"rr_{ip.replace('.', '_')}")), "")
        assert "Established" in line, out


def test_reflector_config_has_rr_clients_and_cluster_id(host):
    conf = host.file("/etc/bird/bird.conf").content_string
    assert "rr client;" in conf
    assert "rr cluster id 224.0.0.1;" in conf
