"""Watch a large topology apply's progress lines: a real etcd, an inventory, the bgp_topology role via ansible-playbook.

Starts an etcd on loopback, runs a play with the bgp_topology role against INVENTORY (default the
generated 1,000-node example) and stops etcd (by PID). The output in docs/topology.md came from:

    python3 bench/topology/progress_demo.py --poll-interval 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "integration")]

from etcd_fixtures import make_server  # noqa: E402

PLAY = """\
- name: BGP topology
  hosts: localhost
  gather_facts: false
  roles:
    - role: kubescale.calico.bgp_topology
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--inventory", default=str(REPO / "inventories" / "example-1000" / "hosts.yml"))
    ap.add_argument("--poll-interval", type=float, default=5)
    ap.add_argument("ansible_args", nargs="*")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="topology-demo-") as tmp:
        etcd = make_server(Path(tmp) / "etcd", "etcd")
        etcd.start()
        try:
            play = Path(tmp) / "topology.yml"
            play.write_text(PLAY)
            extra = {"bgp_topology_endpoints": etcd.endpoints, "bgp_topology_ca_cert": "",
                     "bgp_topology_client_cert": "", "bgp_topology_client_key": "",
                     "bgp_topology_report_file": str(Path(tmp) / "report" / "apply-actions.txt"),
                     "bgp_topology_poll_interval": args.poll_interval}
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".lab" / "collections"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOCALHOST_WARNING="False")
            return subprocess.call(["ansible-playbook", "-i", args.inventory, str(play), "-e", json.dumps(extra),
                                    *args.ansible_args], env=env, cwd=tmp)
        finally:
            etcd.stop()


if __name__ == "__main__":
    sys.exit(main())
