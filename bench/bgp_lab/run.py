"""Scale lab driver: mesh vs route reflectors with real BIRD, one network namespace per daemon.

Run as root from the repository root, e.g.::

    python bench/bgp_lab/run.py --rr 50,100,200,400,1000 --mesh 50,100,200,400,1000 \\
        --timeout 240 --out bench/bgp_lab/results.json --plot docs/img/bgp-lab.png

Each size is run once per mode, one after the other; every run is bounded by ``--timeout`` (from
the first daemon's start) and by free memory (``--min-free-mib``), and is torn down by PID before
the next one. The mesh is listed last so the hardest run comes at the end. The baseline in the
printed table is the route-reflector run of the same N: ratios are mesh / reflectors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bgp_lab.configs import make_plan
from bgp_lab.scenario import mem_available_kib, run


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _bird_version() -> str:
    out = subprocess.run(["bird", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).strip()


def table(results: list[dict]) -> str:
    rows = ["| mode | N | daemons | plan sessions | established | max sessions/daemon | "
            "every node has every block | last route change | PSS total | PSS max | reflector killed |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        conv = (f"{r['converged_s']:.1f} s ({r['converged_s'] - r['started_s']:.1f} s after the last start)"
                if r["converged_s"] is not None else r["outcome"])
        quiet = f"{r['last_route_change_s']:.1f} s" if r.get("last_route_change_s") is not None else "—"
        fo = r.get("failover") or {}
        killed = (f"{fo['nodes_with_all_blocks_at_end']}/{r['n']} nodes kept all blocks "
                  f"({len(fo['nodes_that_lost_a_block'])} lost one) over {fo['observed_s']} s"
                  if fo else "—")
        rows.append(f"| {r['mode']} | {r['n']} | {r['daemons']} | {r['plan_sessions']} | "
                    f"{r['sessions_established'] if r['sessions_established'] is not None else '—'} | "
                    f"{r['sessions_per_daemon_max'] if r['sessions_per_daemon_max'] is not None else '—'} | "
                    f"{conv} | {quiet} | {r['pss_total_mib'] / 1024:.2f} GiB | {r['pss_max_mib']:.1f} MiB | {killed} |")
    return "\n".join(rows)


def ratios(results: list[dict]) -> str:
    rr = {r["n"]: r for r in results if r["mode"] == "route_reflector"}
    lines = []
    for r in results:
        base = rr.get(r["n"])
        if r["mode"] != "mesh" or not base or not base["converged_s"]:
            continue
        t = f"{r['converged_s'] / base['converged_s']:.1f}x" if r["converged_s"] else "n/a (mesh did not converge)"
        sessions = r["plan_sessions"] / base["plan_sessions"]
        pss = r["pss_total_mib"] / base["pss_total_mib"]
        lines.append(f"N={r['n']}: mesh/RR convergence {t}, sessions {sessions:.0f}x, PSS {pss:.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rr", type=_sizes, default=[50, 100, 200, 400, 1000], help="sizes with 2 reflectors")
    ap.add_argument("--mesh", type=_sizes, default=[50, 100, 200, 400, 1000], help="full-mesh sizes")
    ap.add_argument("--timeout", type=float, default=240, help="bound of each run, seconds")
    ap.add_argument("--observe", type=float, default=20, help="seconds to watch after killing a reflector")
    ap.add_argument("--min-free-mib", type=int, default=3072, help="abort a run below this MemAvailable")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/kubescale-bgp-lab"))
    ap.add_argument("--out", type=Path, default=Path("bench/bgp_lab/results.json"))
    ap.add_argument("--plot", type=Path, help="write a PNG plot (needs matplotlib)")
    ap.add_argument("--append", action="store_true", help="add to the runs already in --out")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root: it creates network namespaces")

    results: list[dict] = []
    commands: list[str] = []
    if args.append and args.out.exists():
        previous = json.loads(args.out.read_text())
        results, commands = previous["results"], previous["commands"]
    commands.append(shlex.join(["python", "bench/bgp_lab/run.py", *(argv if argv is not None else sys.argv[1:])]))
    runs = [("route_reflector", n) for n in args.rr] + [("mesh", n) for n in args.mesh]
    for mode, n in runs:
        plan = make_plan(n, mode)
        t = time.monotonic()
        res = run(plan, args.workdir / f"{mode}-{n}", timeout=args.timeout, observe_s=args.observe,
                  min_mem_kib=args.min_free_mib * 1024, log=lambda m: print(m, flush=True))
        d = res.as_dict()
        d["wall_s"] = round(time.monotonic() - t, 1)
        d["timeout_s"] = args.timeout
        results.append(d)
        print(json.dumps(d), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "commands": commands,
            "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "bird": _bird_version(),
                        "mem_available_mib_at_end": mem_available_kib() // 1024},
            "results": results}, indent=1) + "\n")
    print(table(results))
    print(ratios(results))
    if args.plot:
        from bgp_lab.plot import plot
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
