"""What a frozen or dead etcd endpoint costs a client, as ratios against the timeout.

    python3 bench/etcd_faults.py                      # timeout 5 s, 3 repeats, medians
    python3 bench/etcd_faults.py --timeout 10 --repeat 1

A real 3-member etcd 3.4 cluster (fixtures of tests/integration, free loopback ports, a temporary
directory, stopped by PID at the end, frozen members resumed with SIGCONT, also on failure).
For each scenario, a new client (as every module run makes) connects and reads the revision once:

  probe       EtcdClient: every endpoint probed at once, the first healthy one used
  in order    the previous behaviour, measured in the same run: the endpoints tried one after the
              other, each with the full timeout (EtcdClient.for_endpoint on each in turn)

Scenarios: all healthy; the first member frozen (SIGSTOP: it accepts TCP, never answers);
frozen + a dead port before the healthy members; three dead ports before a healthy member; nothing
answers (frozen + two dead ports); and a member frozen while a client uses it (one call pays one
timeout, then the others are probed). Target: every scenario with a healthy member answers in well under
the timeout (ratio << 1); when nothing answers the error comes within one timeout (ratio <= ~1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
REPO = Path(__file__).resolve().parents[1]
for extra in (REPO / ".lab" / "collections", REPO / "tests", REPO / "tests" / "integration"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from etcd_fixtures import free_port, make_server  # noqa: E402

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, EtcdError  # noqa: E402


def probe_connect(endpoints: list[str], timeout: float) -> tuple[float, str]:
    start = time.monotonic()
    try:
        with EtcdClient(endpoints, timeout=timeout) as client:
            client.revision()
            outcome = client.endpoint
    except EtcdError as exc:
        outcome = f"error: {str(exc)[:60]}..."
    return time.monotonic() - start, outcome


def in_order_connect(endpoints: list[str], timeout: float) -> tuple[float, str]:
    start = time.monotonic()
    outcome = "error: no endpoint answered"
    for endpoint in endpoints:
        try:
            with EtcdClient([endpoint], timeout=timeout) as client:
                client.revision()
                outcome = endpoint
                break
        except EtcdError:
            continue
    return time.monotonic() - start, outcome


def measure(name: str, endpoints: list[str], timeout: float, repeat: int) -> dict:
    rows = {}
    for label, connect in (("probe", probe_connect), ("in order", in_order_connect)):
        runs = [connect(endpoints, timeout) for _unused in range(repeat)]
        seconds = statistics.median(r[0] for r in runs)
        rows[label] = {"seconds": seconds, "ratio": seconds / timeout, "outcome": runs[-1][1]}
    print(f"{name:<38} probe {rows['probe']['seconds']:7.3f}s ({rows['probe']['ratio']:.3f} x timeout)   "
          f"in order {rows['in order']['seconds']:7.3f}s ({rows['in order']['ratio']:.3f} x timeout)   "
          f"probe used: {rows['probe']['outcome']}", flush=True)
    return rows


def mid_session(server, timeout: float, repeat: int) -> None:
    """A member frozen while a client uses it: the next call waits one timeout, then the others are probed."""
    runs = []
    for _unused in range(repeat):
        with EtcdClient(server.endpoints, timeout=timeout) as client:
            client.revision()
            in_use = server.endpoints.index(client.endpoint)
            with server.frozen(in_use):
                server.wait_for_leader_without(in_use)
                start = time.monotonic()
                client.revision()
                runs.append(time.monotonic() - start)
        server.wait_healthy()
    seconds = statistics.median(runs)
    print(f"{'member in use frozen mid-session':<38} probe {seconds:7.3f}s ({seconds / timeout:.3f} x timeout)   "
          "(one call pays one timeout; the calls after it none)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-etcd-faults-") as tmp:
        server = make_server(Path(tmp), "bf", size=3)
        server.start()
        try:
            urls = server.endpoints
            dead = [f"http://127.0.0.1:{free_port()}" for _unused in range(3)]
            print(f"etcd 3-member cluster, timeout {args.timeout:g}s, median of {args.repeat}")
            measure("all healthy", urls, args.timeout, args.repeat)
            measure("three dead ports, then a healthy one", [*dead, urls[1]], args.timeout, args.repeat)
            with server.frozen(0):
                server.wait_for_leader_without(0)
                measure("first member frozen", urls, args.timeout, args.repeat)
                measure("frozen, dead port, then healthy", [urls[0], dead[0], *urls[1:]], args.timeout, args.repeat)
                measure("nothing answers (frozen + 2 dead)", [urls[0], *dead[:2]], args.timeout, args.repeat)
            mid_session(server, args.timeout, args.repeat)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
