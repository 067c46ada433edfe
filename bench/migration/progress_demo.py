"""Watch the migration's progress lines: two real etcds, a seeded Calico 2.6 dataset, the role via ansible-playbook.

Starts a source etcd (v2 API on) and a target etcd on loopback, seeds the source with the generator's
Calico 2.6 (v1) dataset, runs a play with the datastore_migration role and stops both etcds (by PID).
The output shown in docs/datastore-migration.md came from:

    python3 bench/migration/progress_demo.py --hosts 1000 --workloads 20000 --poll-interval 2

Extra arguments after ``--`` go to ansible-playbook (e.g. ``-- --check``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration"), str(REPO / ".lab" / "collections")]

from datagen import calico_v1_dataset as gen  # noqa: E402
from etcd_fixtures import make_server  # noqa: E402

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client  # noqa: E402

PLAY = """\
- name: Calico datastore migration
  hosts: localhost
  gather_facts: false
  roles:
    - role: kubescale.calico.datastore_migration
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=20000)
    ap.add_argument("--poll-interval", type=float, default=5)
    ap.add_argument("--settle-time", type=float, default=15)
    ap.add_argument("ansible_args", nargs="*")
    args = ap.parse_args()
    if not (REPO / ".lab" / "collections" / "ansible_collections" / "kubescale" / "calico").exists():
        print("the collection is not linked: run `make link` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="progress-demo-") as tmp:
        base = Path(tmp)
        source = make_server(base / "source", "source", enable_v2=True)
        target = make_server(base / "target", "target")
        source.start()
        try:
            target.start()
            started = time.monotonic()
            keys = gen.write(EtcdV2Client(source.endpoints),
                             gen.generate(hosts=args.hosts, workloads=args.workloads), workers=4)
            print(f"# seeded {keys} v2 keys in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            play = base / "migrate.yml"
            play.write_text(PLAY)
            extra = {"calico_legacy_etcd_endpoints": source.endpoints, "calico_etcd_endpoints": target.endpoints,
                     "calico_etcd_ca_cert": "", "calico_etcd_client_cert": "", "calico_etcd_client_key": "",
                     "calico_etcd_timeout": 30, "calico_controller": "localhost",
                     "datastore_migration_snapshot_dir": str(base / "snapshots"),
                     "datastore_migration_poll_interval": args.poll_interval,
                     "datastore_migration_settle_time": args.settle_time}
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".lab" / "collections"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
            return subprocess.call(["ansible-playbook", str(play), "-e", json.dumps(extra), *args.ansible_args],
                                   env=env, cwd=tmp)
        finally:
            target.stop()
            source.stop()


if __name__ == "__main__":
    sys.exit(main())
