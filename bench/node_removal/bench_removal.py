"""Benchmark: node removal (calico_node_remove's code) against the raw etcd work it cannot avoid.

    python3 bench/node_removal/bench_removal.py                      # 1,000 nodes x 20 endpoints, shrink to 150
    python3 bench/node_removal/bench_removal.py --nodes 200 --weps 5 --repeat 1   # quick look

A real etcd 3.4 is started here on a free loopback port in a temporary directory and stopped by PID at
the end (also on failure). For each repeat the keyspace is seeded alike (per node: a Node, W workload
endpoints, a /26 IPAM block affine to it holding the endpoints' IPs and the IPIP tunnel address, one
handle per IP, the block affinity), then, interleaved so that machine load hits all alike:

  removal     remove_nodes() of 85% of the nodes (the issue's 1,000 -> 150 shrink): reads, plan, guarded writes
  raw read    one paged read of the prefixes the removal reads (Nodes, BGPPeers, endpoints, blocks, host data)
  raw write   the same deletes and block/handle puts, unconditional, in transactions of 128, nothing read

Printed: medians and the ratio removal / (raw read + raw write). Target: <= 3.0x (the removal also parses
what it reads, plans, and sends a compare-and-swap guard with every write).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration")]
import conftest  # noqa: E402,F401  # pylint: disable=unused-import  # links the checkout as the collection
from etcd_fixtures import make_server  # noqa: E402

from ansible_collections.kubescale.calico.plugins.module_utils.calico import ipam  # noqa: E402
from ansible_collections.kubescale.calico.plugins.module_utils.calico.node_removal import (  # noqa: E402
    make_request,
    remove_nodes,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import KINDS, key_for  # noqa: E402
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, Op  # noqa: E402

MANAGED = {"kubescale.io/managed-by": "kubescale.calico"}


def node_name(i: int) -> str:
    return f"worker-{i:05d}"


def seed_items(nodes: int, weps: int) -> list[tuple[str, dict]]:
    items = []
    for i in range(nodes):
        name, net = node_name(i), f"10.{64 + i // 256}.{i % 256}"
        cidr = f"{net}.0/26"
        items.append((key_for("Node", name), {
            "kind": "Node", "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": name, "labels": MANAGED, "uid": f"u-{i}", "creationTimestamp": "2026-12-01T00:00:00Z"},
            "spec": {"bgp": {"ipv4Address": f"10.0.{i // 256}.{i % 256}/16", "ipv4IPIPTunnelAddr": f"{net}.1"}}}))
        owners = {1: f"ipip-tunnel-addr-{name}"}
        for w in range(weps):
            pod = f"pod-{w}"
            owners[2 + w] = f"k8s-pod-network.{name}-{w}"
            items.append((key_for("WorkloadEndpoint", f"{name}-k8s-{pod.replace('-', '--')}-eth0", "default"), {
                "kind": "WorkloadEndpoint", "apiVersion": "projectcalico.org/v3",
                "metadata": {"name": f"{name}-k8s-{pod.replace('-', '--')}-eth0", "namespace": "default"},
                "spec": {"node": name, "orchestrator": "k8s", "pod": pod, "endpoint": "eth0",
                         "ipNetworks": [f"{net}.{2 + w}/32"]}}))
        handles = sorted(set(owners.values()))
        allocations = [None] * 64
        for ordinal, handle in owners.items():
            allocations[ordinal] = handles.index(handle)
        items.append((ipam.block_key(cidr), {
            "cidr": cidr, "affinity": f"host:{name}", "strictAffinity": False, "allocations": allocations,
            "unallocated": [o for o in range(64) if allocations[o] is None],
            "attributes": [{"handle_id": h, "secondary": None} for h in handles], "deleted": False}))
        items += [(ipam.handle_key(h), {"block": {cidr: 1}}) for h in handles]
        items.append((ipam.affinity_key(name, cidr), {"state": "confirmed"}))
    return items


def seed(client, items: list[tuple[str, dict]]) -> None:
    ops = [Op.put(k, json.dumps(v)) for k, v in items]
    for start in range(0, len(ops), MAX_TXN_OPS):
        client.txn(ops[start:start + MAX_TXN_OPS])


def wipe(client) -> None:
    client.delete_prefix("/calico/")


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def raw_read(client) -> int:
    count = 0
    for prefix in (KINDS["Node"].prefix(), KINDS["BGPPeer"].prefix(), KINDS["WorkloadEndpoint"].prefix(),
                   ipam.BLOCK_PREFIX, ipam.HOST_PREFIX):
        count += sum(1 for _unused in client.range(prefix, page_size=1000))
    return count


def raw_write(client, result: dict, after_values: dict[str, bytes]) -> None:
    ops = [Op.delete(k) for k in result["deleted"]] + [Op.put(k, after_values[k]) for k in result["updated"]]
    for start in range(0, len(ops), MAX_TXN_OPS):
        client.txn(ops[start:start + MAX_TXN_OPS])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--weps", type=int, default=20, help="endpoints per node (<= 62)")
    parser.add_argument("--share", type=float, default=0.85, help="share of the nodes removed")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    items = seed_items(args.nodes, args.weps)
    doomed = [node_name(i) for i in range(int(args.nodes * args.share))]
    times: dict[str, list[float]] = {"removal": [], "raw read": [], "raw write": []}
    with tempfile.TemporaryDirectory(prefix="bench-removal-") as tmp:
        server = make_server(Path(tmp) / "etcd", "rm")
        server.start()
        try:
            client = server.client(timeout=60)
            for _unused in range(args.repeat):
                wipe(client)
                seed(client, items)
                took, result = timed(remove_nodes, client, make_request(doomed, None, False, False))
                times["removal"].append(took)
                after_values = {kv.key: kv.value for kv in client.range("/calico/ipam/")}
                wipe(client)
                seed(client, items)
                times["raw read"].append(timed(raw_read, client)[0])
                times["raw write"].append(timed(raw_write, client, result, after_values)[0])
            client.close()
        finally:
            server.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    keys = len(items)
    print(f"node removal: {len(doomed)} of {args.nodes} nodes x {args.weps} endpoints ({keys:,} keys seeded; "
          f"{len(result['deleted']):,} deleted, {len(result['updated']):,} updated, "
          f"{result['summary']['released_ips']:,} IPs released); medians of {args.repeat}")
    for name, value in med.items():
        print(f"  {name:<10} {value:7.2f} s")
    ratio = med["removal"] / (med["raw read"] + med["raw write"])
    print(f"  removal / (raw read + raw write) = {ratio:.2f}x (target <= 3.0x)")
    return 0 if ratio <= 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
