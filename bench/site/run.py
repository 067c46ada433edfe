"""Bench: what playbooks/site.yml costs per host, first run and no-op rerun, on the lab at two sizes.

    python3 -u bench/site/run.py                        # 9 hosts (2 workers) and 50 hosts (43 workers)
    python3 -u bench/site/run.py --workers 2,20 --forks 20

For each size: a lab of real systemd-nspawn hosts (scripts/lab.sh create, on its own bridge and /24 so a
running `make lab` is not touched), the legacy etcd with Calico 2.6 data (tests/lab/prepare.yml), then,
timed: site.yml (first run: etcd, migration, topology, reflectors, tuning, rollout), site.yml again (the
no-op rerun, which must report changed=0) and the lab's final check (tests/lab/calico_node_from_etcd.yml:
BIRD on every Calico node from etcd, every node with every other node's block). The lab is torn down
(by PID) after each size, also on failure.

Printed, from this one run: seconds per run, the rerun's cost per added host (difference of the two
reruns over the difference of the host counts) and the ratio of the reruns. Goals (issue 15): per added
host <= 0.5 s at forks 20; the 50-host rerun <= 1.3x the 9-host rerun. Results go to
bench/site/results.json with the machine's load, so a loaded run can be told from a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def lab_env(state: Path, workers: int, forks: int) -> dict:
    env = dict(os.environ)
    env.update({"KSLAB_STATE_DIR": str(state), "KSLAB_BRIDGE": "br-ksbench", "KSLAB_SUBNET": "10.213.4.0/24",
                "KSLAB_K8S_PORT": "16445", "KSLAB_WORKERS": str(workers), "ANSIBLE_FORKS": str(forks),
                # as scripts/lab.sh: facts gathered once, cached for the rerun
                "ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(state / "facts"),
                "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400",
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                "PYTHONPATH": f"{REPO}/.lab/collections:{REPO}/tests"})
    return env


def playbook(env: dict, state: Path, path: str, log: Path) -> tuple[float, dict]:
    """Run one playbook on the lab; its wall time and the recap's totals. Raises when it fails.

    Each task's wall time goes to ``<log>.tasks.jsonl`` (callback bench/site/callback_plugins/task_times.py).
    """
    cmd = ["ansible-playbook", "-i", "inventories/lab", "-i", str(state / "inventory.yml"), path]
    times = log.with_suffix(".tasks.jsonl")
    times.unlink(missing_ok=True)
    env = {**env, "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).parent / "callback_plugins"),
           "ANSIBLE_CALLBACKS_ENABLED": "task_times", "KUBESCALE_TASK_TIMES": str(times)}
    start, cpu_before = time.monotonic(), _children_cpu()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    log.write_text(proc.stdout + proc.stderr)
    recap = RECAP.findall(proc.stdout)
    totals = {"controller_cpu_s": round(_children_cpu() - cpu_before, 1),
              "hosts": len(recap), "changed": sum(int(r[2]) for r in recap),
              "failed": sum(int(r[4]) for r in recap), "unreachable": sum(int(r[3]) for r in recap)}
    if proc.returncode != 0:
        raise RuntimeError(f"{path} failed (rc {proc.returncode}) after {seconds:.0f}s; see {log}")
    return seconds, totals


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children: ansible-playbook, its forks and
    ssh clients, not the lab hosts (they are not our children), so the controller's own share."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_size(workers: int, forks: int, logs: Path) -> dict:
    state = REPO / ".lab" / f"bench-site-{workers}"
    env = lab_env(state, workers, forks)
    lab = ["bash", "scripts/lab.sh"]
    try:
        start = time.monotonic()
        subprocess.run([*lab, "create"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
        boot = time.monotonic() - start
        playbook(env, state, "tests/lab/prepare.yml", logs / f"{workers}-prepare.log")
        first, first_recap = playbook(env, state, "playbooks/site.yml", logs / f"{workers}-site-first.log")
        rerun, rerun_recap = playbook(env, state, "playbooks/site.yml", logs / f"{workers}-site-rerun.log")
        check = playbook(env, state, "tests/lab/calico_node_from_etcd.yml", logs / f"{workers}-final-check.log")[0]
    finally:
        subprocess.run([*lab, "down"], cwd=REPO, env=env, check=False, stdout=subprocess.DEVNULL)
    hosts = 7 + workers
    if rerun_recap["changed"]:
        raise RuntimeError(f"the rerun on {hosts} hosts changed {rerun_recap['changed']} things; see {logs}")
    return {"workers": workers, "hosts": hosts, "boot_s": round(boot, 1), "first_s": round(first, 1),
            "rerun_s": round(rerun, 1), "final_check_s": round(check, 1), "first_changed": first_recap["changed"],
            "rerun_changed": rerun_recap["changed"], "first_controller_cpu_s": first_recap["controller_cpu_s"],
            "rerun_controller_cpu_s": rerun_recap["controller_cpu_s"],
            "rerun_tasks": task_times(logs / f"{workers}-site-rerun.tasks.jsonl")}


def task_times(path: Path) -> dict[str, float]:
    """{"play / task": seconds} of one run (a task run in several plays or includes is summed)."""
    out: dict[str, float] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        row = json.loads(line)
        key = f"{row['play']} / {row['task']}"
        out[key] = round(out.get(key, 0.0) + row["seconds"], 3)
    return out


def per_host_costs(small: dict, big: dict, top: int = 12) -> list[tuple[str, float, float, float]]:
    """The tasks whose rerun time grew most with the host count: (task, small s, big s, s per added host)."""
    added = big["hosts"] - small["hosts"]
    rows = []
    for task, seconds in big["rerun_tasks"].items():
        before = small["rerun_tasks"].get(task, 0.0)
        rows.append((task, before, seconds, (seconds - before) / added))
    return sorted(rows, key=lambda r: r[3], reverse=True)[:top]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--workers", default="2,43", help="worker counts, comma-separated (hosts = 7 + workers)")
    ap.add_argument("--forks", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "site" / "results.json")
    args = ap.parse_args()
    logs = REPO / ".lab" / "bench-site-logs"
    logs.mkdir(parents=True, exist_ok=True)
    sizes = []
    for workers in (int(w) for w in args.workers.split(",")):
        print(f"== {7 + workers} hosts ({workers} workers), forks {args.forks}", flush=True)
        sizes.append(one_size(workers, args.forks, logs))
        print(json.dumps({k: v for k, v in sizes[-1].items() if k != "rerun_tasks"}), flush=True)
    print(f"\n{'hosts':>6} {'boot s':>7} {'first s':>8} {'rerun s':>8} {'rerun CPU s':>12} {'check s':>8}")
    for s in sizes:
        print(f"{s['hosts']:>6} {s['boot_s']:>7} {s['first_s']:>8} {s['rerun_s']:>8} {s['rerun_controller_cpu_s']:>12} "
              f"{s['final_check_s']:>8}")
    record = {"forks": args.forks, "cores": os.cpu_count(), "load_after": os.getloadavg()[0], "sizes": sizes,
              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        added = big["hosts"] - small["hosts"]
        record["rerun_per_added_host_s"] = round((big["rerun_s"] - small["rerun_s"]) / added, 3)
        record["first_per_added_host_s"] = round((big["first_s"] - small["first_s"]) / added, 3)
        record["rerun_ratio"] = round(big["rerun_s"] / small["rerun_s"], 2)
        record["rerun_controller_cpu_per_added_host_s"] = round(
            (big["rerun_controller_cpu_s"] - small["rerun_controller_cpu_s"]) / added, 3)
        print(f"\nrerun tasks that grow with the hosts ({small['hosts']} -> {big['hosts']}):")
        for task, before, after, per_host in per_host_costs(small, big):
            print(f"  {per_host:6.3f} s/host  {before:6.1f} -> {after:6.1f} s  {task[:110]}")
        print(f"no-op rerun per added host: {record['rerun_per_added_host_s']} s (goal <= 0.5 s at forks 20); "
              f"{big['hosts']}-host rerun = {record['rerun_ratio']}x the {small['hosts']}-host one (goal <= 1.3x); "
              f"first run per added host: {record['first_per_added_host_s']} s; controller CPU of the rerun per "
              f"added host: {record['rerun_controller_cpu_per_added_host_s']} s (the lab hosts share this "
              f"machine's {os.cpu_count()} cores, so wall time also pays for their CPU)")
    runs = json.loads(args.out.read_text()) if args.out.exists() else []
    args.out.write_text(json.dumps([*runs, record], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
