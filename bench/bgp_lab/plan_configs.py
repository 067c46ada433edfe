"""Plan-rendered BIRD configs: kept for the *external* reflectors (the ``route_reflector`` role's own
template, which no confd renders) and the tests of that role and of ``bgp_status``. Calico nodes in
the lab are configured from etcd instead (configs.py, scenario.py, ``bird_render``).

* :func:`make_plan` builds an inventory of N Calico nodes (plus external reflector hosts) with
  addresses inside the lab's own segment and asks the collection's planner for the plan.
* :func:`node_config` renders what calico-node's BIRD would run for one node: its own /26 block
  announced (a blackhole static route, as Calico announces its blocks) and BGP sessions as the
  plan says (full mesh, or to its reflectors) with Calico's timers. No kernel protocol: the lab
  measures BGP, not FIB programming.
* :func:`reflector_config` renders the ``route_reflector`` role's own template (roles defaults +
  the plan), so the lab runs exactly the configuration the role would install.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import jinja2
import yaml

from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology

ROLE = Path(__file__).resolve().parents[2] / "roles" / "route_reflector"
NODE_NET = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544 benchmarking range, lab-internal only
BLOCK_NET = ipaddress.IPv4Network("10.64.0.0/10")  # /26 blocks, one per node
TIMERS = "connect delay time 2;\n  connect retry time 5;\n  error wait time 5,30;"


def host_ip(index: int) -> str:
    return str(NODE_NET.network_address + 10 + index)


def make_plan(n: int, mode: str, reflectors: int = 2, rr_capacity: int = 1000) -> dict:
    """Plan for ``n`` worker nodes; ``mode`` is "mesh" or "route_reflector" (external reflectors)."""
    workers = [f"node-{i:04d}" for i in range(n)]
    rrs = [f"rr-{i}" for i in range(reflectors)] if mode == "route_reflector" else []
    hostvars = {}
    for i, host in enumerate(rrs + workers):
        hostvars[host] = {"calico_bgp_ip": host_ip(i), "calico_rack": f"rack{i % 4}", "calico_zone": "lab"}
    groups = {"worker": workers, "route_reflectors": rrs}
    settings = {"bgp_mode": mode, "rr_kind": "external", "rr_capacity": rr_capacity,
                "mesh_max_nodes": max(n, 1) if mode == "mesh" else 1}
    return plan_topology(groups, hostvars, settings)


def blocks(plan: dict) -> dict[str, str]:
    """One /26 per node, in plan order."""
    subnets = BLOCK_NET.subnets(new_prefix=26)
    return {node["name"]: str(next(subnets)) for node in plan["nodes"]}


def node_config(plan: dict, node: dict, block: str, bird_version: int = 2, log: str | None = "stderr all") -> str:
    """BIRD config of one Calico node as the plan wants it."""
    asn = plan["as_number"]
    v2 = bird_version == 2
    channel = "  ipv4 { import all; export all; };" if v2 else "  import all;\n  export all;"
    out = [f"router id {node['ip']};"]
    if v2:  # full timestamps on routes: the lab reads convergence times from BIRD itself
        out.append("timeformat route iso long ms;")
    if log:
        out.append(f"log {log};")
    out += ["protocol device { scan time 60; }",
            f"protocol static blocks {{ {'ipv4; ' if v2 else ''}route {block} blackhole; }}",
            "template bgp peers {",
            f"  local {node['ip']} as {asn};", "  direct;", "  graceful restart on;", f"  {TIMERS}",
            channel, "}"]
    if plan["mode"] == "mesh":
        for other in plan["nodes"]:
            if other["name"] == node["name"]:
                continue
            # one side passive: the lower name waits, the higher one connects (no collisions)
            passive = " passive on;" if node["name"] < other["name"] else ""
            out.append(f"protocol bgp m_{other['ip'].replace('.', '_')} from peers "
                       f"{{ neighbor {other['ip']} as {asn};{passive} }}")
    else:
        by_name = {r["name"]: r for r in plan["reflectors"]}
        for peer in node["peers"]:
            rr = by_name[peer]
            out.append(f"protocol bgp rr_{rr['ip'].replace('.', '_')} from peers {{ neighbor {rr['ip']} as {asn}; }}")
    return "\n".join(out) + "\n"


def role_defaults() -> dict:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def reflector_config(plan: dict, name: str, **overrides) -> str:
    """Render roles/route_reflector/templates/bird.conf.j2 for reflector ``name``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")),
                             trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    variables = role_defaults()
    variables.update({"route_reflector_plan": plan, "route_reflector_name": name, "route_reflector_log": ""})
    variables.update(overrides)
    return env.get_template("bird.conf.j2").render(**variables)
