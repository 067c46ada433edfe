# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deterministic Calico 2.6 (v1 model) dataset, for tests and the migration benchmark.

``generate(hosts=1000, workloads=20000, ...)`` yields ``(key, value)`` pairs of the etcd v2
keyspace that a Calico 2.6 Kubernetes cluster of that size holds: global Felix config with
CalicoVersion v2.6.x, nodes with BGP addresses and IPIP tunnel addresses, global and per-node BGP
peers, IP pools, per-namespace profiles and knp policies (handled by controllers in v3), global
policies, host endpoints, workload endpoints spread over namespaces, and IPAM blocks, affinities
and handles. ``write(client, pairs)`` stores them through the v2 API with parallel connections.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
from collections.abc import Iterator

CALICO_VERSION = "v2.6.12"


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def host_name(i: int) -> str:
    """Host names; every 97th is in mixed case with a domain, as some clouds report them."""
    if i % 97 == 5:
        return f"Worker-{i:04d}.Example.NET"
    return f"worker-{i:04d}"


def _j(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def generate(hosts: int = 1000, workloads: int = 20000, namespaces: int = 50, seed: int = 1,
             policies: int = 40, host_endpoints: int = 10) -> Iterator[tuple[str, str]]:
    """Yield the v2 keys of a Calico 2.6 cluster with ``hosts`` nodes and ``workloads`` pods."""
    rnd = random.Random(seed)
    pool = ipaddress.ip_network("192.168.0.0/16")
    blocks = list(pool.subnets(new_prefix=26))
    if hosts > len(blocks):
        raise ValueError(f"hosts: at most {len(blocks)} hosts fit one /26 block each in {pool}")
    per_host = -(-workloads // hosts) if hosts else 0
    if per_host > 62:
        raise ValueError("workloads: at most 62 workloads per host fit a /26 block")

    yield "/calico/v1/Ready", "true"
    cfg = {
        "CalicoVersion": CALICO_VERSION, "ClusterGUID": _hex(f"guid{seed}", 32), "ClusterType": "k8s,bgp",
        "LogSeverityScreen": "info", "IpInIpEnabled": "true", "ReportingIntervalSecs": "0",
        "FailsafeInboundHostPorts": "tcp:22, udp:68, tcp:179", "IptablesRefreshInterval": "60",
        "IptablesLockProbeIntervalMillis": "50", "UsageReportingEnabled": "false",
    }
    for name, value in cfg.items():
        yield f"/calico/v1/config/{name}", value
    yield "/calico/bgp/v1/global/as_num", "64512"
    yield "/calico/bgp/v1/global/node_mesh", _j({"enabled": False})
    yield "/calico/bgp/v1/global/loglevel", "info"
    for rr in ("10.0.0.1", "10.0.0.2"):
        yield f"/calico/bgp/v1/global/peer_v4/{rr}", _j({"ip": rr, "as_num": "64512"})
    yield "/calico/bgp/v1/global/peer_v6/fd00::1", _j({"ip": "fd00::1", "as_num": "64512"})
    yield "/calico/v1/ipam/v4/pool/192.168.0.0-16", _j(
        {"cidr": "192.168.0.0/16", "ipip": "tunl0", "ipip_mode": "always", "masquerade": True, "ipam": True,
         "disabled": False})
    yield "/calico/v1/ipam/v4/pool/172.16.0.0-20", _j(
        {"cidr": "172.16.0.0/20", "ipip": "tunl0", "ipip_mode": "cross-subnet", "masquerade": False, "ipam": True,
         "disabled": True})
    yield "/calico/v1/ipam/v6/pool/fd80:24e2:f998:72d6::-64", _j(
        {"cidr": "fd80:24e2:f998:72d6::/64", "ipip": "", "masquerade": False, "ipam": True, "disabled": False})

    ns_names = [f"team-{i:02d}" for i in range(namespaces)] or ["default"]
    for ns in ns_names:
        yield f"/calico/v1/policy/profile/k8s_ns.{ns}/rules", _j(
            {"inbound_rules": [{"action": "allow"}], "outbound_rules": [{"action": "allow"}]})
        yield f"/calico/v1/policy/profile/k8s_ns.{ns}/labels", _j({"pcns.team": ns})
        yield f"/calico/v1/policy/profile/k8s_ns.{ns}/tags", _j([f"k8s_ns.{ns}"])
        yield f"/calico/v1/policy/tier/default/policy/knp.default.{ns}.default-deny", _j(
            {"order": 1000, "selector": f"calico/k8s_ns == '{ns}'", "inbound_rules": [], "outbound_rules": [],
             "types": ["ingress"]})
    for name, tags in (("ops-tools", ["ops", "monitoring"]), ("Legacy_Profile", ["legacy"])):
        yield f"/calico/v1/policy/profile/{name}/rules", _j(
            {"inbound_rules": [{"action": "allow", "src_tag": tags[0], "protocol": "tcp",
                                "dst_ports": [22, "8000:8080"]}],
             "outbound_rules": [{"action": "next-tier"}]})
        yield f"/calico/v1/policy/profile/{name}/tags", _j(tags)
        yield f"/calico/v1/policy/profile/{name}/labels", _j({"role": name.lower().replace("_", "-")})
    for p in range(policies):
        name = ("allow-dns", "Host_Protect", "deny.legacy.services")[p % 3] + (f"-{p}" if p >= 3 else "")
        body: dict = {"order": 100 + p, "selector": "has(calico/k8s_ns)",
                      "inbound_rules": [{"action": "allow", "protocol": "udp", "dst_ports": [53],
                                         "src_selector": "calico/k8s_ns == 'kube-system'"}],
                      "outbound_rules": [{"action": "deny", "dst_net": "10.96.0.5/12", "protocol": "icmp",
                                          "icmp_type": 8}]}
        if p % 3 == 1:
            body.update({"pre_dnat": True, "inbound_rules": [{"action": "deny", "!src_nets": ["10.0.0.0/8"]}],
                         "outbound_rules": [], "selector": "has(host-endpoint)"})
        if p % 7 == 6:
            body["untracked"] = True
            body["types"] = ["ingress", "egress"]
        yield f"/calico/v1/policy/tier/default/policy/{name}", _j(body)

    pods = [0] * hosts
    for w in range(workloads):
        pods[w % hosts] += 1
    for h in range(hosts):
        host = host_name(h)
        ip = ipaddress.ip_address("10.240.0.10") + h
        block = blocks[h]
        block_key = f"{block.network_address}-{block.prefixlen}"
        yield f"/calico/v1/host/{host}/metadata", "{}"
        yield f"/calico/v1/host/{host}/bird_ip", str(ip)
        yield f"/calico/v1/host/{host}/orchestrator_refs", _j([{"orchestrator": "k8s", "nodeName": host}])
        yield f"/calico/v1/host/{host}/config/IpInIpTunnelAddr", str(block.network_address + 1)
        if h % 100 == 3:
            yield f"/calico/v1/host/{host}/config/LogSeverityScreen", "debug"
        yield f"/calico/bgp/v1/host/{host}/ip_addr_v4", str(ip)
        yield f"/calico/bgp/v1/host/{host}/ip_addr_v6", ""
        yield f"/calico/bgp/v1/host/{host}/network_v4", "10.240.0.0/16"
        if h % 50 == 7:
            yield f"/calico/bgp/v1/host/{host}/as_num", "64513"
            tor = f"10.240.{h // 256}.1"
            yield f"/calico/bgp/v1/host/{host}/peer_v4/{tor}", _j({"ip": tor, "as_num": "64500"})
        if h < host_endpoints:
            yield f"/calico/v1/host/{host}/endpoint/eth0", _j(
                {"name": "eth0", "expected_ipv4_addrs": [str(ip)], "expected_ipv6_addrs": [],
                 "labels": {"host-endpoint": "true", "rack": f"r{h % 4}"}, "profile_ids": ["ops-tools"]})
        allocations: list = [None] * block.num_addresses
        attributes = [{"handle_id": f"ipip-tunnel-addr-{host}", "secondary": None}]
        allocations[1] = 0
        for k in range(pods[h]):
            ns = ns_names[rnd.randrange(len(ns_names))]
            app = ("nginx", "redis", "api", "worker-app")[k % 4]
            pod = f"{app}-{_hex(f'{h}.{k}', 10)}-{_hex(f'p{h}.{k}', 5)}"
            cid = _hex(f"c{seed}.{h}.{k}", 64)
            addr = block.network_address + 2 + k
            handle = f"k8s-pod-network.{cid}"
            allocations[2 + k] = len(attributes)
            attributes.append({"handle_id": handle, "secondary": None})
            wep = {
                "state": "active", "name": "cali" + _hex(f"if{h}.{k}", 11), "active_instance_id": cid,
                "mac": "ee:ee:ee:ee:ee:ee", "profile_ids": [f"k8s_ns.{ns}"], "ipv4_nets": [f"{addr}/32"],
                "ipv6_nets": [], "labels": {"calico/k8s_ns": ns, "app": app, "pod-template-hash": _hex(pod, 10)},
            }
            yield f"/calico/v1/host/{host}/workload/k8s/{ns}.{pod}/endpoint/eth0", _j(wep)
            yield f"/calico/ipam/v2/handle/{handle}", _j({"block": {str(block): 1}})
        yield f"/calico/ipam/v2/handle/ipip-tunnel-addr-{host}", _j({"block": {str(block): 1}})
        used = [i for i, a in enumerate(allocations) if a is not None]
        unallocated = [i for i in range(block.num_addresses) if i not in set(used)]
        yield f"/calico/ipam/v2/assignment/ipv4/block/{block_key}", _j(
            {"cidr": str(block), "affinity": f"host:{host}", "strictAffinity": False,
             "allocations": allocations, "unallocated": unallocated, "attributes": attributes})
        yield f"/calico/ipam/v2/host/{host}/ipv4/block/{block_key}", "" if h % 2 else _j({"state": "confirmed"})


def write(client, pairs, workers: int = 8) -> int:
    """Store ``pairs`` through the v2 API (an EtcdV2Client) over parallel connections."""
    return client.set_many(pairs, workers=workers)
