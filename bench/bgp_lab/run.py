"""Scale lab driver, datastore-driven: the plan goes into a real etcd through the collection's apply,
every BIRD is configured only from etcd (``bird_render``), one network namespace per daemon.

Run as root from the repository root, one measurement per call, e.g.::

    nice -n 10 python bench/bgp_lab/run.py rr --n 1000
    nice -n 10 python bench/bgp_lab/run.py multi --n 2000 --reflectors 4 --capacity 1000
    nice -n 10 python bench/bgp_lab/run.py switch --n 400
    nice -n 10 python bench/bgp_lab/run.py join --n 400

* ``rr`` / ``multi``: reflectors (``multi``: as many clusters as ``--capacity`` needs), converge, then
  stop one reflector of each cluster (SIGTERM) and probe every node for ``--observe`` seconds;
* ``switch``: a mesh converges, then the reflector plan is applied as site.yml does (``prepare``,
  wait for every rendered session, ``finish``; ``--phase all`` applies it at once), every revision
  the apply wrote synced back to back, probed throughout;
* ``join``: reflectors converge, then a Node the inventory does not know is written to etcd;
* ``replace``: reflectors converge, then the last reflector is replaced by the next node in site.yml's
  order (``prepare``, wait for every rendered session, ``finish``), probed throughout.

Every run is bounded by ``--timeout``, torn down by PID, and appended to ``--out`` with its probe
timeline (``--plot`` draws the timelines of all runs in ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from ansible_collections.kubescale.calico.plugins.module_utils.topology.sessions import REFLECTOR_MESH_RULES
from bgp_lab.configs import LabEtcd, add_node, apply, host_ip, make_plan, seed_ipam
from bgp_lab.scenario import Probe, Scenario, mem_available_kib


def _bird_version() -> str:
    out = subprocess.run(["bird", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).strip()


def _converge(sc: Scenario, plan: dict, timeout: float, log) -> dict:
    t = time.monotonic()
    apply(sc.client, plan)
    seed_ipam(sc.client, plan)
    applied = time.monotonic() - t
    sc.t0 = time.monotonic()
    sc.sync()
    started = time.monotonic() - sc.t0
    secs, done, outcome = sc.wait_converged(time.monotonic() + timeout)
    log(f"{plan['mode']} N={len(plan['nodes'])}: {outcome} in {secs} s ({done} nodes)")
    return {
        "apply_s": round(applied, 2),
        "started_s": round(started, 1),
        "converged_s": round(secs, 1) if secs else None,
        "converged_nodes": done,
        "outcome": outcome,
    }


def _failover(sc: Scenario, plan: dict, observe: float) -> dict:
    """Stop the first reflector of every cluster; probe."""
    victims = {}
    for r in plan["reflectors"]:
        victims.setdefault(r["cluster_id"], r["name"])
    probe = Probe(sc).start()
    time.sleep(2)
    for name in victims.values():
        probe.exclude(name)
        sc.stop(name, signal.SIGTERM)
    time.sleep(observe)
    out = probe.stop()
    out["stopped"] = sorted(victims.values())
    missing = sc.tables()
    want = sc.expected()
    out["nodes_with_every_block_at_end"] = sum(1 for t in missing.values() if t is not None and want <= t)
    out["timeline"] = probe.samples
    return out


def _replace(sc: Scenario, plan: dict, args) -> dict:
    """Replace the last reflector by the next node (the inventory's route_reflectors group changes),
    applied in site.yml's order (prepare: the new reflector and its peers; wait for every rendered
    session; finish: the old one's cluster ID and peers removed); probed throughout."""
    old = plan["reflectors"][-1]["name"]
    kept = list(range(args.reflectors - 1))
    new_plan = make_plan(args.n, "route_reflector", args.reflectors, args.capacity, candidates=[*kept, args.reflectors])
    new = sorted({r["name"] for r in new_plan["reflectors"]} - {r["name"] for r in plan["reflectors"]})
    probe = Probe(sc, interval=1.0).start()
    time.sleep(3)
    t = time.monotonic()
    steps = sc.transition(new_plan, "prepare")
    sessions_up = sc.wait_sessions(time.monotonic() + args.timeout)
    steps += sc.transition(new_plan, "finish")
    secs, _done, _outcome = sc.wait_converged(time.monotonic() + args.timeout)
    out = {"replaced": {"old": old, "new": new}, "steps": steps, "sessions_up": sessions_up,
           "replace_converged_s": round(time.monotonic() - t, 1) if secs else None}
    time.sleep(args.observe)
    out["probe"] = probe.stop()
    out["timeline"] = probe.samples
    for step in steps:
        step["t"] = round(step.pop("done_at") - probe.t0, 2)
    return out


def measure(kind: str, args, workdir: Path, log=print) -> dict:
    etcd = LabEtcd(workdir / "etcd").start()
    row: dict = {"kind": kind, "n": args.n, "reflector_mesh": args.reflector_mesh,
                 "load_avg_before": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
    try:
        lab = workdir / "lab"
        with etcd.client() as client, Scenario(client, lab, log=log, reflector_mesh=args.reflector_mesh) as sc:
            if kind == "switch":
                row.update(_converge(sc, make_plan(args.n, "mesh"), args.timeout, log))
                if row["outcome"] != "converged":
                    return row
                rr = make_plan(args.n, "route_reflector", args.reflectors, args.capacity)
                probe = Probe(sc, interval=1.0, answer_timeout=args.answer_timeout).start()
                time.sleep(3)
                t = time.monotonic()
                if args.phase == "all":
                    row["steps"] = sc.transition(rr, "all")
                else:
                    row["steps"] = sc.transition(rr, "prepare")
                    row["sessions_up"] = sc.wait_sessions(time.monotonic() + args.timeout)
                    row["steps"] += sc.transition(rr, "finish")
                secs, _done, _outcome = sc.wait_converged(time.monotonic() + args.timeout)
                row["switch_converged_s"] = round(time.monotonic() - t, 1) if secs else None
                time.sleep(args.observe)
                row["probe"] = probe.stop()
                for step in row["steps"]:  # on the probe's clock, as the timeline's "t"
                    step["t"] = round(step.pop("done_at") - probe.t0, 2)
                row["phase"] = args.phase
                row["timeline"] = probe.samples
                return row
            plan = make_plan(args.n, "route_reflector", args.reflectors, args.capacity)
            row["clusters"] = len({r["cluster_id"] for r in plan["reflectors"]})
            row["reflectors"] = len(plan["reflectors"])
            row.update(_converge(sc, plan, args.timeout, log))
            if row["outcome"] != "converged":
                return row
            if kind == "replace":
                row.update(_replace(sc, plan, args))
            elif kind == "join":
                probe = Probe(sc).start()
                time.sleep(2)
                t = time.monotonic()
                add_node(client, "joined-0", host_ip(args.n + 10))
                row["sync"] = sc.sync()
                secs, _done, _outcome = sc.wait_converged(time.monotonic() + args.timeout)
                row["join_converged_s"] = round(time.monotonic() - t, 1) if secs else None
                time.sleep(args.observe)
                row["probe"] = probe.stop()
                row["timeline"] = probe.samples
            else:
                row["failover"] = _failover(sc, plan, args.observe)
                row["timeline"] = row["failover"].pop("timeline")
            pss = [sc.lab.pss_kib(n) for n in sc.nodes]
            row["pss_total_mib"] = round(sum(pss) / 1024, 1)
    finally:
        etcd.stop()
    return row


def table(runs: list[dict]) -> str:
    """Markdown rows of the datastore-driven runs."""
    rows = [
        "| scenario | N | reflectors (clusters) | every node has every block | transition | probe samples | "
        "max pairs lost at a sample | distinct pairs lost | nodes that lost a block | PSS total | load before |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        p = r.get("probe") or r.get("failover") or {}
        what = {
            "rr": "reflectors, one stopped",
            "multi": "multi-cluster, one reflector per cluster stopped",
            "switch": f"live mesh -> reflectors ({r.get('phase')}, mesh rule {r.get('reflector_mesh', 'ignore')})",
            "join": "node joins outside the inventory",
            "replace": "reflector replaced (add the new, remove the old)",
        }
        conv = f"{r['converged_s']} s" if r.get("converged_s") else r.get("outcome", "")
        trans = r.get("switch_converged_s") or r.get("join_converged_s") or r.get("replace_converged_s")
        pss = f"{r['pss_total_mib'] / 1024:.2f} GiB" if r.get("pss_total_mib") else "—"
        rows.append(
            f"| {what[r['kind']]} | {r['n']} | {r.get('reflectors', '—')} ({r.get('clusters', '—')}) | {conv} | "
            f"{f'{trans} s' if trans else '—'} | {p.get('samples', '—')} over {p.get('observed_s', '—')} s | "
            f"{p.get('max_lost_pairs_at_a_sample', '—')} | {p.get('distinct_pairs_lost', '—')} | "
            f"{p.get('nodes_that_lost_a_block', '—')} | {pss} | {r.get('load_avg_before', '')} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["rr", "multi", "switch", "join", "replace", "table"],
                    help="table: print --out's runs")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--reflectors", type=int, default=2, help="reflector candidates (first nodes)")
    ap.add_argument("--capacity", type=int, default=1000, help="clients per reflector (rr_capacity)")
    ap.add_argument("--phase", choices=["prepare-finish", "all"], default="prepare-finish")
    ap.add_argument("--reflector-mesh", choices=list(REFLECTOR_MESH_RULES), default="ignore",
                    help="which confd's mesh rule for reflectors: ignore (confd PR #116, Calico 3.3), keep (PR #311), "
                         "exclude (PR #619: no node renders Mesh_<reflector>)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--answer-timeout", type=float, default=30,
                    help="switch: seconds the probe waits for one BIRD (slower: counted unanswered)")
    ap.add_argument("--observe", type=float, default=20)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/kubescale-bgp-lab"))
    ap.add_argument("--out", type=Path, default=Path("bench/bgp_lab/results.json"))
    ap.add_argument("--plot", type=Path, help="write the probe timelines of --out as PNG (matplotlib)")
    args = ap.parse_args(argv)
    if args.kind == "table":
        print(table(json.loads(args.out.read_text()).get("datastore_runs", [])))
        return 0
    if os.geteuid() != 0:
        ap.error("needs root: it creates network namespaces")
    # SIGTERM (e.g. from `timeout`) ends the run through the teardown, as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    t = time.monotonic()
    row = measure(args.kind, args, args.workdir / f"{args.kind}-{args.n}", log=lambda m: print(m, flush=True))
    row["wall_s"] = round(time.monotonic() - t, 1)
    row["command"] = shlex.join(["python", "bench/bgp_lab/run.py", *(argv if argv is not None else sys.argv[1:])])
    row["machine"] = {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "bird": _bird_version(),
        "mem_available_mib_at_end": mem_available_kib() // 1024,
    }
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = data.get("datastore_runs", [])
    runs.append(row)
    data["datastore_runs"] = runs
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "timeline"}), flush=True)
    if args.plot:
        from bgp_lab.plot import plot_timelines

        plot_timelines(runs, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
