"""Seed the lab's legacy etcd with a small Calico 2.6 (v1 model) dataset through the etcd v2 API.

The dataset is the collection's deterministic generator (tests/datagen/calico_v1_dataset.py)
with its host names replaced by the lab's node names, so that the migrated Nodes are the lab's hosts.
Does nothing when the data is already there (prints "already seeded").

    seed_calico_v1.py --endpoint http://10.213.0.10:2379 --nodes master-1,mgmt-1,... [--workloads 40]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

from datagen import calico_v1_dataset  # noqa: E402

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client  # noqa: E402


def lab_dataset(nodes: list[str], workloads: int, namespaces: int):
    """The generator's pairs with host i renamed to nodes[i]."""
    names = {calico_v1_dataset.host_name(i): node for i, node in enumerate(nodes)}
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)))
    for key, value in calico_v1_dataset.generate(hosts=len(nodes), workloads=workloads, namespaces=namespaces,
                                                 policies=4, host_endpoints=2):
        yield pattern.sub(lambda m: names[m.group(0)], key), pattern.sub(lambda m: names[m.group(0)], value)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--nodes", required=True, help="comma-separated node names")
    ap.add_argument("--workloads", type=int, default=40)
    ap.add_argument("--namespaces", type=int, default=4)
    args = ap.parse_args()
    client = EtcdV2Client([args.endpoint], timeout=10)
    if client.get("/calico/v1/config/CalicoVersion") is not None:
        print("already seeded")
        return 0
    pairs = list(lab_dataset([n for n in args.nodes.split(",") if n], args.workloads, args.namespaces))
    written = calico_v1_dataset.write(client, pairs, workers=4)
    print(f"seeded {written} Calico 2.6 keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
