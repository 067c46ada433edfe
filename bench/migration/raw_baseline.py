"""Child of run_b2.py: raw v2 recursive read of /calico + raw v3 batched put of the migration's output.

The output keys/values come from a pickle written by run_b2.py (loaded before the clock starts).
"""

from __future__ import annotations

import http.client
import json
import pickle
import re
import sys
import time
import urllib.parse
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, EtcdClient, Op

spec = json.loads(sys.argv[1])
dump = pickle.loads(Path(spec["dump"]).read_bytes())
target = EtcdClient(spec["target"])
target.revision()  # connect before the clock starts, as the migration's client does before its writes


def leaves(node: dict, out: list) -> None:
    if node.get("dir"):
        for child in node.get("nodes") or []:
            leaves(child, out)
    else:
        out.append((node["key"], node.get("value", "")))


t0 = time.perf_counter()
url = urllib.parse.urlsplit(spec["source"][0])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
conn.request("GET", "/v2/keys/calico?recursive=true")
body = conn.getresponse().read()
read: list = []
leaves(json.loads(body)["node"], read)
del body
t1 = time.perf_counter()
for start in range(0, len(dump), MAX_TXN_OPS):
    target.txn([Op.put(k, v) for k, v in dump[start:start + MAX_TXN_OPS]])
t2 = time.perf_counter()
target.close()
hwm = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"peak_rss_mb": round(hwm / 1024, 1), "v2_keys_read": len(read),
                  "v3_keys_put": len(dump), "read_s": round(t1 - t0, 3),
                  "put_s": round(t2 - t1, 3), "timed_s": round(t2 - t0, 3)}))
