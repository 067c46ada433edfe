"""Run one calico_datastore_migrate phase in a child process, for kill/concurrency tests.

    python migrate_driver.py '<json>'

The JSON holds ``phase``, ``source`` and ``target`` endpoint lists, ``options`` (migration.Options
fields) and optionally ``kill_at`` (SIGKILL this process when progress event number N arrives,
counting from 0), ``kill_at_step`` (at the first event of that step) or ``pause_at`` (sleep
``pause_for`` seconds at event N, holding the lock).
Progress events are appended to ``progress_file`` when given. Exit code 0 and the result as JSON
on stdout, or 1 and the error message.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client
from ansible_collections.kubescale.calico.plugins.module_utils.migration import phases as migration


def main() -> int:
    args = json.loads(sys.argv[1])
    seen = {"n": 0}

    def on_event(event: dict) -> None:
        n = seen["n"]
        seen["n"] += 1
        if args.get("kill_at") == n or args.get("kill_at_step") == event["step"]:
            os.kill(os.getpid(), signal.SIGKILL)
        if args.get("pause_at") == n:
            print("PAUSED", flush=True)
            time.sleep(args.get("pause_for", 30))

    progress = migration.Progress(path=args.get("progress_file"), callback=on_event)
    target = EtcdClient(args["target"])
    try:
        result = migration.run(args["phase"], EtcdV2Client(args["source"]), target,
                               migration.Options(**args.get("options", {})), progress)
    except Exception as exc:
        print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        return 1
    finally:
        target.close()
    print(json.dumps({k: v for k, v in result.items() if k != "report"}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
