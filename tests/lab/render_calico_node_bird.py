"""The lab's confd STAND-IN: every Calico node's BIRD config rendered from the dedicated Calico etcd.

No calico-node runs in the lab. What it would configure is rendered the way its confd does, from what
the datastore holds (module_utils/topology/bird_render.py, one read at one revision), and written as
``<out>/<node>.conf``; ``<out>/blocks.json`` maps each node to its IPAM blocks, so the lab's final
check can ask every node's BIRD for every other node's block.

    render_calico_node_bird.py --out DIR --endpoint https://10.213.0.21:2389 [--endpoint ...]
        --ca-cert ca.crt --client-cert admin.crt --client-key admin.key

Prints one JSON line: the revision read, the nodes rendered and the files that changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import client_from_params
from ansible_collections.kubescale.calico.plugins.module_utils.topology.bird_render import read_datastore, render_all

HEADER = "# calico-node STAND-IN of the kubescale.calico lab, rendered from etcd (tests/lab/render_calico_node_bird.py)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--endpoint", action="append", required=True)
    ap.add_argument("--ca-cert")
    ap.add_argument("--client-cert")
    ap.add_argument("--client-key")
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    client = client_from_params({"endpoints": args.endpoint, "ca_cert": args.ca_cert, "client_cert": args.client_cert,
                                 "client_key": args.client_key, "timeout": args.timeout})
    objects = read_datastore(client)
    configs = render_all(objects)
    if not configs:
        print("no Node with a BGP address in the datastore", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    changed = []
    for node, text in sorted(configs.items()):
        path = args.out / f"{node}.conf"
        text = f"{HEADER}\n{text}"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(node)
    blocks = {node: [b for b in objects["blocks"].get(node, []) if not b.endswith("/32")] for node in configs}
    (args.out / "blocks.json").write_text(json.dumps(blocks, indent=1, sort_keys=True) + "\n")
    print(json.dumps({"revision": objects["revision"], "nodes": sorted(configs), "changed": changed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
