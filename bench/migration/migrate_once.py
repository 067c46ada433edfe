"""Child of run_b2.py: one migration start phase; prints counts and step timings as JSON."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client
from ansible_collections.kubescale.calico.plugins.module_utils.migration import phases as migration

spec = json.loads(sys.argv[1])
progress = migration.Progress()
target = EtcdClient(spec["target"])
result = migration.run("start", EtcdV2Client(spec["source"]), target,
                       migration.Options(settle_time=0, snapshot_dir=spec["snapshot_dir"]), progress)
target.close()
assert result["verification"]["ok"]
hwm = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"peak_rss_mb": round(hwm / 1024, 1), "objects": result["summary"]["total"],
                  "steps": {e["step"]: e["t"] for e in progress.events},
                  "cpu": {e["step"]: e["cpu"] for e in progress.events},
                  "written": result["written"], "rate": result["rate"]}))
