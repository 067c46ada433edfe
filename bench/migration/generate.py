"""Write a seed-scale Calico 2.6 dataset (v1 model) into an etcd v2 API.

    python bench/migration/generate.py --endpoints http://127.0.0.1:2379 [--hosts 1000] [--workloads 20000]
    python bench/migration/generate.py --count            # only count the keys, write nothing

The data comes from plugins/module_utils/calico_v1_dataset.py (deterministic for a given --seed): nodes
with BGP and IPIP tunnel addresses, global and per-node BGP peers, IP pools, per-namespace profiles and
knp policies, global policies, host endpoints, k8s workload endpoints across namespaces, IPAM blocks,
affinities and handles, CalicoVersion v2.6.x. The etcd must run with --enable-v2=true.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # links the checkout into .lab/collections

from datagen import calico_v1_dataset as gen  # noqa: E402

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import (  # noqa: E402
    EtcdV2Client,
    EtcdV2Error,
)


def main() -> int:
    ap = argparse.ArgumentParser(description="Write a Calico 2.6 dataset through the etcd v2 API.")
    ap.add_argument("--endpoints", default="http://127.0.0.1:2379", help="comma-separated v2 client URLs")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=20000)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--policies", type=int, default=40)
    ap.add_argument("--host-endpoints", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=8, help="parallel HTTP connections")
    ap.add_argument("--ca-cert")
    ap.add_argument("--client-cert")
    ap.add_argument("--client-key")
    ap.add_argument("--count", action="store_true", help="count the keys, write nothing")
    args = ap.parse_args()
    pairs = gen.generate(hosts=args.hosts, workloads=args.workloads, namespaces=args.namespaces,
                         policies=args.policies, host_endpoints=args.host_endpoints, seed=args.seed)
    if args.count:
        print(sum(1 for _unused in pairs))
        return 0
    try:
        client = EtcdV2Client(args.endpoints, ca_cert=args.ca_cert, client_cert=args.client_cert,
                              client_key=args.client_key)
        start = time.perf_counter()
        written = gen.write(client, pairs, workers=args.workers)
    except (EtcdV2Error, ValueError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {written} v2 keys to {client.endpoint} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
