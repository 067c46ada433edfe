"""Benchmark B2: the Calico v1 → v3 migration at seed scale, against baselines measured in the same run.

    python bench/migration/run_b2.py [--hosts 1000] [--workloads 20000] [--repeat 1] [--out FILE]

Measured (each in its own child process; wall time, and peak RSS from wait4):
  migration   calico_datastore_migrate's start phase (module_utils path, settle_time 0, with snapshot,
              verification and everything else it does) from the v2 source into a fresh etcd
  raw         a raw v2 recursive read of /calico (one HTTP GET + JSON parse) plus a raw v3 batched put
              (transactions of 128, the project's EtcdClient) of exactly the keys and values the
              migration wrote, into another fresh etcd
  etcdctl     ETCDCTL_API=3 etcdctl migrate --data-dir <copy of the source's stopped data dir> (etcd 3.4,
              offline; copies the v1 paths unchanged, so it is a lower bound, not an equivalent)
Targets (issue 13): migration ≤ 1.5 × raw and ≤ 2.0 × etcdctl migrate; migration peak RSS ≤ 300 MB.
The raw baseline uses the same client and (compiled) protobuf. Prints the ratios and the migration's
own rate (keys/s, as the module reports it); writes JSON to --out.
Every etcd runs on loopback and is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # links the checkout into .lab/collections
from datagen import calico_v1_dataset as gen  # noqa: E402
from etcd_fixtures import ETCDCTL, make_server  # noqa: E402

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client  # noqa: E402

HERE = Path(__file__).resolve().parent


def child(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; return wall seconds, the child's CPU seconds (user + system) and stdout.

    Peak RSS is reported by the Python children themselves (VmHWM of their own address space):
    wait4's ru_maxrss would include the pages of this forked parent before exec.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({rc}): {err.decode()[-2000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "stdout": out.decode()}


def fresh_target(base: Path, name: str):
    server = make_server(base / name, name)
    server.start()
    return server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "b2.json"))
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-b2-"))
    servers = []
    results: dict = {"hosts": args.hosts, "workloads": args.workloads, "runs": []}
    try:
        source = make_server(base / "src", "src", enable_v2=True)
        source.start()
        servers.append(source)
        v2 = EtcdV2Client(source.endpoints)
        t = time.perf_counter()
        keys = gen.write(v2, gen.generate(hosts=args.hosts, workloads=args.workloads))
        results["generate"] = {"v2_keys": keys, "wall_s": round(time.perf_counter() - t, 2)}
        print(f"generated {keys} v2 keys in {results['generate']['wall_s']} s", flush=True)

        source.stop()  # a consistent copy of the stopped member's data dir for etcdctl migrate
        member_dir = source.members[0].data_dir
        copy_dir = base / "migrate-copy"
        shutil.copytree(member_dir, copy_dir)
        source.start()

        for i in range(args.repeat):
            run: dict = {}
            # Alternate the order (raw first in odd repeats, using the previous migration's output) so that a
            # load that changes during the run does not always favour the same side.
            order = ("migration", "raw") if i % 2 == 0 else ("raw", "migration")
            for proc in order:
                target = fresh_target(base, f"{proc}{i}")
                servers.append(target)
                if proc == "migration":
                    spec = {"source": source.endpoints, "target": target.endpoints,
                            "snapshot_dir": str(base / f"snaps{i}")}
                    v2.set("/calico/v1/Ready", "true")
                    run["migration"] = child([sys.executable, str(HERE / "migrate_once.py"), json.dumps(spec)])
                    run["migration"].update(json.loads(run["migration"].pop("stdout")))
                    client = target.client()
                    dump = [(kv.key, kv.value) for kv in client.range("/calico/")]
                    client.close()
                    dump_file = base / "output.pickle"
                    dump_file.write_bytes(pickle.dumps(dump))
                    run["output_keys"] = len(dump)
                else:
                    spec = {"source": source.endpoints, "target": target.endpoints, "dump": str(dump_file)}
                    run["raw"] = child([sys.executable, str(HERE / "raw_baseline.py"), json.dumps(spec)])
                    run["raw"].update(json.loads(run["raw"].pop("stdout")))
                target.stop()
                shutil.rmtree(target.members[0].data_dir, ignore_errors=True)
            work = base / f"copy{i}"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(copy_dir, work)
            run["etcdctl_migrate"] = child([ETCDCTL, "migrate", "--data-dir", str(work)],
                                           env=dict(os.environ, ETCDCTL_API="3"))
            run["etcdctl_migrate"]["stdout"] = run["etcdctl_migrate"]["stdout"].strip()[-200:]
            shutil.rmtree(work, ignore_errors=True)
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)

    def median(path: str, field: str) -> float:
        return statistics.median(r[path][field] for r in results["runs"])

    mig, raw, ctl = median("migration", "wall_s"), median("raw", "wall_s"), median("etcdctl_migrate", "wall_s")
    rss = max(r["migration"]["peak_rss_mb"] for r in results["runs"])
    mig_cpu, raw_cpu = median("migration", "cpu_s"), median("raw", "cpu_s")
    results["summary"] = {
        "migration_s": mig, "raw_read_write_s": raw, "etcdctl_migrate_s": ctl,
        "ratio_vs_raw": round(mig / raw, 2), "ratio_vs_etcdctl_migrate": round(mig / ctl, 2),
        "migration_cpu_s": mig_cpu, "raw_cpu_s": raw_cpu, "cpu_ratio_vs_raw": round(mig_cpu / raw_cpu, 2),
        "load_average_1m": os.getloadavg()[0],
        "migration_peak_rss_mb": rss, "raw_peak_rss_mb": max(r["raw"]["peak_rss_mb"] for r in results["runs"]),
        "target_ratio": 1.5, "target_ratio_vs_etcdctl": 2.0, "target_rss_mb": 300,
        "migration_keys_per_second": statistics.median(r["migration"]["rate"]["keys_per_second"]
                                                       for r in results["runs"]),
    }
    s = results["summary"]
    print()
    print(f"B2 Calico v1→v3 migration, {args.hosts} hosts / {args.workloads} workload endpoints, "
          f"{results['runs'][0]['output_keys']} v3 keys (median of {args.repeat})")
    print(f"  migration (start phase)        {mig:8.2f} s   client CPU {mig_cpu:7.2f} s   peak RSS {rss:6.1f} MB")
    print(f"  raw v2 read + v3 batched put   {raw:8.2f} s   client CPU {raw_cpu:7.2f} s   "
          f"peak RSS {s['raw_peak_rss_mb']:6.1f} MB")
    print(f"  etcdctl migrate (offline)      {ctl:8.2f} s")
    print(f"  migration rate (module's own)  {s['migration_keys_per_second']:8.0f} keys/s")
    print(f"  ratio migration / raw          {s['ratio_vs_raw']:8.2f}   (target <= 1.5: "
          f"{'OK' if s['ratio_vs_raw'] <= 1.5 else 'MISSED'})")
    print(f"  client CPU ratio migration/raw {s['cpu_ratio_vs_raw']:8.2f}")
    print(f"  ratio migration / etcdctl      {s['ratio_vs_etcdctl_migrate']:8.2f}   (target <= 2.0: "
          f"{'OK' if s['ratio_vs_etcdctl_migrate'] <= 2.0 else 'MISSED'})")
    print(f"  load average (1 min) at the end {s['load_average_1m']:.1f} on {os.cpu_count()} CPUs")
    print(f"  peak RSS                       {rss:8.1f} MB (target <= 300: {'OK' if rss <= 300 else 'MISSED'})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
