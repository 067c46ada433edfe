"""Benchmark B1: the BGP topology apply and plan.yml, as ratios against baselines measured in the same run.

    python3 bench/topology/bench_b1.py                 # 1,000 and 5,000 nodes, 3 repeats, medians
    python3 bench/topology/bench_b1.py --sizes 1000 --repeat 1 --no-playbooks   # quick look

Datastore part (a real etcd 3.4 started here on a free loopback port in a temporary directory and
stopped by PID at the end, also on failure), for each size:
  first apply      apply_plan() into an empty keyspace (what bgp_topology does)
  no-op reapply    apply_plan() again with nothing to change (answered by the applied-topology marker)
  no-op, full read the same with the marker deleted first: every Node read and compared
  raw put          the same keys and values, unconditional puts in transactions of 128
  raw read         a paged read of those keys (pages of 1,000)
  per-resource     one get + one put per object, as a calicoctl-per-node loop does
Targets (issue 13): first <= 1.2x raw put; no-op <= 1.5x raw read; 5,000-node apply <= 5.5x the
1,000-node one; per-resource >= 10x the first apply (both variants are printed). The raw baselines
use the same client and (compiled) protobuf as the apply, so the ratios measure the collection's own cost.

Playbook part: ``ansible-playbook playbooks/plan.yml`` against a baseline playbook that only loads the
same inventory and reads every host's hostvars once (bench/topology/hostvars_baseline.yml), on the
1,000-node example inventory and a generated 5,000-node one. Target: plan.yml <= 1.5x the baseline.
Runs are interleaved (baseline, plan, baseline, plan, ...) so that machine load hits both alike.
Results also go to bench/results/b1.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# conftest links the checkout as ansible_collections.kubescale.calico (imported for that effect).
import conftest  # noqa: E402,F401  # pylint: disable=unused-import
from etcd_fixtures import make_server  # noqa: E402

from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import key_of  # noqa: E402
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore  # noqa: E402
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import MAX_TXN_OPS, Op  # noqa: E402
from ansible_collections.kubescale.calico.plugins.module_utils.topology.apply import apply_plan  # noqa: E402
from ansible_collections.kubescale.calico.plugins.module_utils.topology.marker import MARKER_KEY  # noqa: E402
from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology  # noqa: E402

PREFIX = "/calico/"
_spec = importlib.util.spec_from_file_location("generate", REPO / "inventories" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


def inventory(nodes: int) -> dict:
    return generate.build(nodes, 25, 3, 2, 0 if nodes <= 2000 else 2 * ((nodes + 999) // 1000) + 2)


def flatten(inv: dict) -> tuple[dict, dict]:
    groups, hostvars = {}, {}
    for group, body in inv["all"]["children"].items():
        groups[group] = list(body["hosts"])
        for host, hv in body["hosts"].items():
            if hv:
                hostvars.setdefault(host, {}).update(hv)
    return groups, hostvars


def stored_values(plan: dict) -> list[tuple[str, bytes]]:
    """The keys and values the store writes for this plan (uid and creationTimestamp included)."""
    out = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for items in plan["resources"].values():
        for obj in items:
            body = json.loads(json.dumps(obj))
            body["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=stamp)
            out.append((key_of(body), json.dumps(body, separators=(",", ":")).encode()))
    return out


ETCD_PIDS: list[int] = []  # the benchmark's etcd, whose CPU is counted with ours
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_now() -> float:
    """CPU seconds so far of this process, its reaped children and the benchmark's etcd."""
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    etcd = 0.0
    for pid in ETCD_PIDS:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        etcd += (int(fields[11]) + int(fields[12])) / _TICK
    return own + kids.ru_utime + kids.ru_stime + etcd


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the bench process, its children and etcd) of ``fn()``."""
    cpu, start = _cpu_now(), time.perf_counter()
    fn()
    return time.perf_counter() - start, _cpu_now() - cpu


def per_resource_cli(server, values: list[tuple[str, bytes]], sample: int) -> tuple[float, float]:
    """(wall, CPU) seconds for all objects, scaled from ``sample`` objects done with one etcdctl get + put each."""
    chosen = values[:sample]
    endpoint = ",".join(server.endpoints)
    env = dict(os.environ, ETCDCTL_API="3")
    etcdctl = shutil.which("etcdctl") or "/usr/bin/etcdctl"

    def loop():
        for key, value in chosen:
            subprocess.run([etcdctl, "--endpoints", endpoint, "get", key], env=env, capture_output=True, check=True)
            subprocess.run(
                [etcdctl, "--endpoints", endpoint, "put", key], input=value, env=env, capture_output=True, check=True
            )

    wall, cpu = timed(loop)
    scale = len(values) / len(chosen)
    return wall * scale, cpu * scale


def bench_datastore(client, plan: dict, repeat: int) -> dict:
    values = stored_values(plan)
    names = ("raw_put", "raw_read", "first_apply", "noop_apply", "noop_full", "per_resource")
    times: dict[str, list[float]] = {k: [] for k in names}

    def raw_put():
        for start in range(0, len(values), MAX_TXN_OPS):
            lost = client.apply([Op.put(k, v) for k, v in values[start : start + MAX_TXN_OPS]])
            assert not lost

    def raw_read():
        count = sum(1 for _unused in client.range(PREFIX, page_size=1000))
        assert count == len(values), (count, len(values))

    def per_resource():
        for key, value in values:
            client.get(key)
            client.put(key, value)

    for _unused in range(repeat):
        client.delete_prefix(PREFIX)
        times["raw_put"].append(timed(raw_put))
        times["raw_read"].append(timed(raw_read))
        client.delete_prefix(PREFIX)
        store = CalicoStore(client, want_diff=False)
        times["first_apply"].append(timed(lambda store=store: apply_plan(store, plan)))
        result: dict = {}
        times["noop_apply"].append(timed(lambda store=store, result=result: result.update(apply_plan(store, plan))))
        assert result["changed"] is False
        client.delete(MARKER_KEY)  # as after an edit elsewhere in etcd: the full read and compare
        times["noop_full"].append(timed(lambda store=store, result=result: result.update(apply_plan(store, plan))))
        assert result["changed"] is False
        client.delete_prefix(PREFIX)
        times["per_resource"].append(timed(per_resource))
    client.delete_prefix(PREFIX)
    out: dict = {"objects": len(values), "_values": values}
    for key, runs in times.items():
        out[key] = statistics.median(r[0] for r in runs)
        out[f"{key}_cpu"] = statistics.median(r[1] for r in runs)
    return out


def run_playbook(playbook: Path, inventory_dir: Path, report_dir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of ansible-playbook and its children)."""
    cmd = [
        shutil.which("ansible-playbook") or "ansible-playbook",
        "-i",
        str(inventory_dir),
        str(playbook),
        "-e",
        f"calico_topology_report_dir={report_dir}",
    ]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=1800)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{playbook.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed, cpu


def bench_playbooks(sizes: list[int], repeat: int, tmp: Path) -> dict:
    out = {}
    for n in sizes:
        if n == 1000:
            inv_dir = REPO / "inventories" / "example-1000"
        else:
            inv_dir = tmp / f"inventory-{n}"
            generate.main(
                [
                    "--nodes",
                    str(n),
                    "--racks",
                    "25",
                    "--rr-hosts",
                    str(2 * ((n + 999) // 1000) + 2),
                    "--out",
                    str(inv_dir),
                ]
            )
        base, plan = [], []
        run_playbook(REPO / "bench" / "topology" / "hostvars_baseline.yml", inv_dir, tmp / "warm")  # warm caches
        for _unused in range(repeat):
            base.append(run_playbook(REPO / "bench" / "topology" / "hostvars_baseline.yml", inv_dir, tmp / "r"))
            plan.append(run_playbook(REPO / "playbooks" / "plan.yml", inv_dir, tmp / f"report-{n}"))
        out[n] = {
            "baseline": statistics.median(b[0] for b in base),
            "plan_yml": statistics.median(p[0] for p in plan),
            "baseline_cpu": statistics.median(b[1] for b in base),
            "plan_yml_cpu": statistics.median(p[1] for p in plan),
            "baseline_runs": base,
            "plan_runs": plan,
        }
    return out


def verdict(value: float, limit: float, smaller: bool = True) -> str:
    ok = value <= limit if smaller else value >= limit
    return f"{'ok' if ok else 'MISSED'} (target {'<=' if smaller else '>='} {limit}x)"


def print_datastore(results: dict) -> None:
    print(f"B1 datastore (medians of {results['repeat']}; wall seconds, and CPU seconds of bench + etcd)")
    names = ("raw_put", "raw_read", "first_apply", "noop_apply", "noop_full", "per_resource", "per_resource_cli")
    checks = (
        ("first apply / raw batched put", "first_apply", "raw_put", 1.2, True),
        ("no-op reapply / raw paged read", "noop_apply", "raw_read", 1.5, True),
        ("no-op, full read / raw read", "noop_full", "raw_read", 1.5, True),
        ("per-resource / first apply", "per_resource", "first_apply", 10, False),
        ("per-resource CLI / first apply", "per_resource_cli", "first_apply", 10, False),
    )
    for n, d in results["datastore"].items():
        print(f"\n{n} nodes, {d['objects']} objects into etcd:")
        for key in names:
            print(f"  {key:<17} wall {d[key]:8.3f} s   cpu {d[key + '_cpu']:8.3f} s")
        for label, top, bottom, limit, smaller in checks:
            wall, cpu = d[top] / d[bottom], d[top + "_cpu"] / d[bottom + "_cpu"]
            print(
                f"  {label:<32} wall {wall:7.2f}x {verdict(wall, limit, smaller)}   "
                f"cpu {cpu:7.2f}x {verdict(cpu, limit, smaller)}"
            )
    ds = results["datastore"]
    if 1000 in ds and 5000 in ds:
        for key in ("first_apply", "noop_apply", "noop_full"):
            wall = ds[5000][key] / ds[1000][key]
            cpu = ds[5000][key + "_cpu"] / ds[1000][key + "_cpu"]
            print(
                f"\n5,000 / 1,000 nodes {key:<12} wall {wall:6.2f}x {verdict(wall, 5.5)}   "
                f"cpu {cpu:6.2f}x {verdict(cpu, 5.5)}"
            )


def print_playbooks(results: dict) -> None:
    for n, p in results["playbooks"].items():
        ratio = p["plan_yml"] / p["baseline"]
        print(
            f"\nplan.yml at {n} hosts: {p['plan_yml']:.2f} s vs hostvars-only baseline {p['baseline']:.2f} s: "
            f"{ratio:.2f}x  {verdict(ratio, 1.5)}"
        )
        cpu = p["plan_yml_cpu"] / p["baseline_cpu"]
        print(
            f"plan.yml at {n} hosts, CPU: {p['plan_yml_cpu']:.2f} s vs {p['baseline_cpu']:.2f} s: "
            f"{cpu:.2f}x  {verdict(cpu, 1.5)}"
        )


def save(results: dict) -> None:
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "b1.json").write_text(json.dumps(results, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-playbooks", action="store_true")
    parser.add_argument("--no-datastore", action="store_true")
    parser.add_argument("--cli-sample", type=int, default=200, help="objects timed for the etcdctl loop")
    args = parser.parse_args(argv)
    results: dict = {"sizes": args.sizes, "repeat": args.repeat, "datastore": {}, "playbooks": {}}
    with tempfile.TemporaryDirectory(prefix="bench-b1-") as tmpdir:
        tmp = Path(tmpdir)
        if not args.no_datastore:
            server = make_server(tmp / "etcd", "b1")
            server.start()
            ETCD_PIDS[:] = [m.proc.pid for m in server.members if m.proc]
            try:
                client = server.client()
                try:
                    for n in args.sizes:
                        plan = plan_topology(*flatten(inventory(n)))
                        data = bench_datastore(client, plan, args.repeat)
                        wall, cpu = per_resource_cli(server, data.pop("_values"), args.cli_sample)
                        data["per_resource_cli"], data["per_resource_cli_cpu"] = wall, cpu
                        client.delete_prefix(PREFIX)
                        results["datastore"][n] = data
                finally:
                    client.close()
            finally:
                server.stop()
            print_datastore(results)
            save(results)
        if not args.no_playbooks:
            results["playbooks"] = bench_playbooks(args.sizes, args.repeat, tmp)
            print_playbooks(results)
            save(results)

    return 0


if __name__ == "__main__":
    sys.exit(main())
