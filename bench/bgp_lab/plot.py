"""Plots (PNG): convergence and sessions vs N (plan-driven runs, ``results``), and the probe's
reachability timelines of the datastore-driven runs (``datastore_runs``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"route_reflector": ("tab:blue", "o", "2 route reflectors"), "mesh": ("tab:red", "s", "full mesh")}
    for mode, (color, marker, label) in styles.items():
        rows = sorted((r for r in results if r["mode"] == mode), key=lambda r: r["n"])
        done = [r for r in rows if r["converged_s"] is not None]
        ax1.plot([r["n"] for r in done], [r["converged_s"] for r in done], marker=marker, color=color, label=label)
        for r in rows:
            if r["converged_s"] is None:
                bound = r["timeout_s"]
                ax1.scatter([r["n"]], [bound], marker="x", s=80, color=color)
                ax1.annotate(
                    f"not converged in {bound:.0f} s\n({r['converged_nodes']}/{r['n']} nodes)",
                    (r["n"], bound),
                    textcoords="offset points",
                    xytext=(-120, -28),
                    fontsize=8,
                    color=color,
                )
        ax2.plot(
            [r["n"] for r in rows],
            [r["plan_sessions"] for r in rows],
            marker=marker,
            color=color,
            label=f"{label} (planned)",
        )
        est = [r for r in rows if r["sessions_established"] is not None]
        ax2.scatter(
            [r["n"] for r in est], [r["sessions_established"] for r in est], marker="+", s=120, color="black", zorder=3
        )
    ax1.set(
        xlabel="Calico nodes (N)",
        ylabel="seconds until every node has every block",
        title="BGP convergence (BIRD 2, 2 cores)",
    )
    ax1.grid(alpha=0.3)
    ax1.legend()
    ax2.set(
        xlabel="Calico nodes (N)", ylabel="BGP sessions", yscale="log", title="BGP sessions (+ = counted Established)"
    )
    ax2.grid(alpha=0.3, which="both")
    ax2.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def plot_timelines(runs: list[dict], out: Path) -> None:
    """(node, block) pairs missing per probe sample over time, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13, 4.8))
    colours = plt.cm.tab20.colors  # more runs than the default cycle's 10 colours
    for i, run in enumerate(runs):
        line = run.get("timeline") or []
        if not line:
            continue
        what = {
            "switch": f"mesh -> reflectors ({run.get('phase')}, mesh rule {run.get('reflector_mesh', 'ignore')})",
            "rr": "one reflector stopped",
            "multi": "one reflector per cluster stopped",
            "join": "node joins",
            "replace": "reflector replaced",
        }[run["kind"]]
        ax.plot(
            [s["t"] for s in line],
            [s["lost_pairs"] for s in line],
            marker=".",
            drawstyle="steps-post",
            color=colours[i % len(colours)],
            label=f"{what}, N={run['n']}",
        )
    ax.set(
        xlabel="seconds since the probe started (dots: samples of every node's table, ~1/s or as load allows)",
        ylabel="(node, block) pairs lost (symlog)",
        title="Reachability through transitions (real BIRD, from etcd)",
    )
    ax.set_yscale("symlog", linthresh=1)  # 0 stays visible next to 100,000
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    data = json.loads(Path(sys.argv[1]).read_text())
    plot(data["results"], Path(sys.argv[2]))
