"""Human-readable reports of a BGP topology plan: a short summary, Markdown and an SVG picture.

``summary``, ``markdown`` and ``svg`` are pure: they take the plan dict from ``topology.plan_topology``
and return text. ``write_report`` writes them (and the plan as JSON) into a directory.
"""

from __future__ import annotations

import json
import math
import os
from html import escape

REPORT_FILES = {"markdown": "topology.md", "svg": "topology.svg", "json": "plan.json"}
PLAN_KEYS = (
    "mode",
    "reason",
    "warnings",
    "as_number",
    "reflector_kind",
    "nodes",
    "reflectors",
    "router_peers",
    "stats",
    "resources",
)


class ReportError(ValueError):
    """The plan or the destination cannot be reported on; the message says why."""


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
MESH_COLOUR = "#7f7f7f"


def _n(value: int) -> str:
    return f"{value:,}"


def _ratio(plan: dict) -> str:
    stats = plan["stats"]
    if not stats["plan_sessions"] or stats["plan_sessions"] == stats["mesh_sessions"]:
        return "1x"
    return f"{stats['mesh_sessions'] / stats['plan_sessions']:,.0f}x fewer"


def _racks(plan: dict) -> list[dict]:
    """Per rack: name, zone, nodes, reflectors, clients per cluster ID; sorted by rack name."""
    racks: dict[str, dict] = {}
    for node in plan["nodes"]:
        key = node["rack"] or "(no rack)"
        rack = racks.setdefault(key, {"name": key, "zones": set(), "nodes": 0, "reflectors": [], "clusters": {}})
        rack["nodes"] += 1
        if node["zone"]:
            rack["zones"].add(node["zone"])
        if node["route_reflector"]:
            rack["reflectors"].append(node["name"])
        elif node["cluster_id"]:
            rack["clusters"][node["cluster_id"]] = rack["clusters"].get(node["cluster_id"], 0) + 1
    for r in plan["reflectors"]:
        if r["name"] not in {n["name"] for n in plan["nodes"]}:  # external reflector hosts
            key = r["rack"] or "(no rack)"
            rack = racks.setdefault(key, {"name": key, "zones": set(), "nodes": 0, "reflectors": [], "clusters": {}})
            rack["reflectors"].append(r["name"])
    out = []
    for key in sorted(racks):
        rack = racks[key]
        rack["zone"] = ", ".join(sorted(rack.pop("zones"))) or "-"
        out.append(rack)
    return out


SUMMARY_CLUSTERS = 10
SUMMARY_ITEMS = 8


def _capped(lines: list[str], limit: int, what: str) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... and {len(lines) - limit} more {what}"]


def summary(plan: dict) -> list[str]:
    """A few lines for the console (at most ~30 whatever the size: clusters and warnings are capped)."""
    stats = plan["stats"]
    lines = [
        f"mode: {plan['mode']} ({plan['reflector_kind'].replace('_', '-')} reflectors)"
        if plan["mode"] == "route_reflector"
        else "mode: mesh",
        f"reason: {plan['reason']}",
        f"sessions: full mesh {_n(stats['mesh_sessions'])}, this plan {_n(stats['plan_sessions'])} ({_ratio(plan)}); "
        f"most on one node {_n(stats['max_sessions_on_node'])}; router sessions {_n(stats['router_sessions'])}",
    ]
    clusters: dict[str, list[dict]] = {}
    for r in plan["reflectors"]:
        clusters.setdefault(r["cluster_id"], []).append(r)
    cluster_lines = []
    for cid, members in clusters.items():
        where = ", ".join(
            f"{r['name']} ({'/'.join(x for x in (r['zone'], r['rack']) if x) or 'no rack'})" for r in members
        )
        cluster_lines.append(f"cluster {cid}: {where}; {_n(members[0]['clients'])} clients")
    lines += _capped(cluster_lines, SUMMARY_CLUSTERS, "clusters")
    if plan.get("default_cluster"):
        lines.append(
            f"nodes not in the plan (autoscaled, not yet in the inventory) peer with cluster {plan['default_cluster']}"
        )
    lines += _capped([f"warning: {w}" for w in plan["warnings"]], SUMMARY_ITEMS, "warnings (see the report)")
    return lines


def apply_summary(result: dict) -> list[str]:
    """bgp_topology's result in at most ~30 lines; the whole action list goes to the report file."""
    counts = {k: len(result.get(k) or []) for k in ("created", "updated", "deleted")}
    lines = [
        f"mode: {result['mode']} (mesh was {'on' if result['mesh_before'] else 'off'}); "
        f"{counts['created']} created, {counts['updated']} updated, {counts['deleted']} deleted, "
        f"{result['unchanged']} unchanged",
    ]
    kept = result["assignment"]
    if kept["source"] == "datastore":
        lines.append(
            f"assignment: kept from the datastore ({kept['reflectors']} reflectors, {kept['clients']} clients; "
            f"{kept['disagreed']} differed from the plan handed in)"
        )
    writes = [f"{i}. {s['step']}: {s['written']}" for i, s in enumerate(result["steps"], 1) if s["written"]]
    lines += ["order of writes:", *writes] if writes else ["nothing to do: the datastore matches the plan"]
    unplanned = result["unplanned_nodes"]
    if unplanned["count"]:
        shown = ", ".join(unplanned["names"][:SUMMARY_ITEMS])
        more = f" and {unplanned['count'] - SUMMARY_ITEMS} more" if unplanned["count"] > SUMMARY_ITEMS else ""
        attach = (
            f"; they peer with cluster {result['default_cluster']} (BGPPeer kubescale-rr-default)"
            if result["mode"] == "route_reflector" and result.get("default_cluster")
            else ""
        )
        lines.append(f"nodes in the datastore but not in the plan: {unplanned['count']} ({shown}{more}){attach}")
    lines += _capped([f"warning: {w}" for w in result["plan_warnings"]], SUMMARY_ITEMS, "warnings")
    if result.get("report_file"):
        lines.append(f"every action: {result['report_file']}")
    return lines


def write_apply_report(path: str, result: dict) -> None:
    """The full record of one apply (summary, then every action in order) as a text file."""
    body = ["# bgp_topology apply", "", *apply_summary(result), "", "## actions", ""]
    body += result["actions"] or ["(none)"]
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
        handle.write("\n".join(body) + "\n")
    os.replace(f"{path}.tmp", path)


def markdown(plan: dict, svg_name: str | None = "topology.svg") -> str:
    """The report as Markdown; links the SVG picture when ``svg_name`` is given."""
    stats = plan["stats"]
    out = ["# BGP topology plan", ""]
    if svg_name:
        out += [f"![reflectors, racks and sessions]({svg_name})", ""]
    out += [
        f"**Mode:** {plan['mode']}"
        + (f" ({plan['reflector_kind'].replace('_', '-')} reflectors)" if plan["mode"] == "route_reflector" else ""),
        "",
        f"**Why:** {plan['reason']}",
        "",
    ]
    if plan["warnings"]:
        out += ["## Warnings", ""] + [f"- {w}" for w in plan["warnings"]] + [""]
    out += [
        "## Sessions",
        "",
        "| | count |",
        "|---|---:|",
        f"| Calico nodes | {_n(stats['nodes'])} |",
        f"| BGP sessions, full mesh n(n-1)/2 | {_n(stats['mesh_sessions'])} |",
        f"| BGP sessions, this plan | {_n(stats['plan_sessions'])} ({_ratio(plan)}) |",
        f"| most sessions on one node | {_n(stats['max_sessions_on_node'])} |",
        f"| router (ToR) sessions | {_n(stats['router_sessions'])} |",
        f"| reflectors / clusters | {stats['reflectors']} / {stats['clusters']} |",
        f"| AS number | {plan['as_number']} |",
        "",
    ]
    if plan["reflectors"]:
        out += [
            "## Reflectors",
            "",
            "| name | IP | cluster ID | zone | rack | group | clients | sessions |",
            "|---|---|---|---|---|---|---:|---:|",
        ]
        for r in plan["reflectors"]:
            out.append(
                f"| {r['name']} | {r['ip']} | {r['cluster_id']} | {r['zone'] or '-'} | {r['rack'] or '-'} | "
                f"{r['group']} | {_n(r['clients'])} | {_n(stats['sessions_per_reflector'].get(r['name'], 0))} |"
            )
        out.append("")
    racks = _racks(plan)
    out += ["## Racks", "", "| rack | zone | nodes | reflectors | clients by cluster |", "|---|---|---:|---|---|"]
    for rack in racks:
        clusters = ", ".join(f"{cid}: {count}" for cid, count in sorted(rack["clusters"].items())) or "-"
        out.append(
            f"| {rack['name']} | {rack['zone']} | {rack['nodes']} | {', '.join(rack['reflectors']) or '-'} | "
            f"{clusters} |"
        )
    out.append("")
    if plan["router_peers"]:
        out += ["## Router peers", "", "| name | IP | AS | scope |", "|---|---|---:|---|"]
        for p in plan["router_peers"]:
            scope = p["scope"] + (f" {p.get('rack') or p.get('node')}" if p["scope"] != "global" else "")
            out.append(f"| {p['name']} | {p['ip']} | {p['as_number']} | {scope} |")
        out.append("")
    peers = plan["resources"]["bgppeers"]
    out += [
        "## Calico objects",
        "",
        f"- BGPConfiguration `default`: nodeToNodeMeshEnabled={str(plan['mode'] == 'mesh').lower()}, "
        f"asNumber={plan['as_number']}",
        f"- {len(plan['resources']['nodes'])} Node objects (BGP address, labels"
        + (", routeReflectorClusterID on reflectors" if plan["reflector_kind"] == "in_cluster" else "")
        + ")",
        f"- {len(peers)} BGPPeers:",
        "",
    ]
    for p in peers[:50]:
        spec = p["spec"]
        what = ", ".join(f"{k}=`{v}`" for k, v in spec.items())
        out.append(f"  - `{p['metadata']['name']}`: {what}")
    if len(peers) > 50:
        out.append(f"  - ... and {len(peers) - 50} more")
    out += ["", "## Settings", "", "| setting | value |", "|---|---|"]
    out += [f"| calico_{k} | {v} |" for k, v in plan.get("settings", {}).items()]
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# SVG


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def rect(self, x, y, w, h, fill, stroke="none", rx=4, extra=""):
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}" {extra}/>'
        )

    def line(self, x1, y1, x2, y2, stroke, width=1.0, extra=""):
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="{width:.2f}" {extra}/>'
        )

    def circle(self, cx, cy, r, fill, stroke="#fff"):
        self.parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" fill="{fill}" stroke="{stroke}" stroke-width="2"/>'
        )

    def text(self, x, y, body, size=13, anchor="start", weight="normal", fill="#222"):
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(str(body))}</text>'
        )


def _log_width(value: int, top: int, width: float) -> float:
    if value <= 0:
        return 0.0
    return max(2.0, width * math.log10(value + 1) / math.log10(top + 1))


def svg(plan: dict) -> str:
    """A picture of reflectors, racks and clients with the session counts, full mesh vs this plan."""
    stats = plan["stats"]
    width = 1200
    s = _Svg()
    y = 40
    title = (
        "BGP topology: full node-to-node mesh"
        if plan["mode"] == "mesh"
        else (f"BGP topology: route reflectors ({plan['reflector_kind'].replace('_', '-')})")
    )
    s.text(30, y, title, size=24, weight="bold")
    y += 26
    s.text(30, y, f"{_n(stats['nodes'])} Calico nodes, AS {plan['as_number']}", size=15, fill="#555")
    y += 30
    y = _session_bars(s, plan, y, width)
    colours = {
        cid: PALETTE[i % len(PALETTE)]
        for i, cid in enumerate(
            sorted({r["cluster_id"] for r in plan["reflectors"]}, key=lambda c: tuple(int(p) for p in c.split(".")))
        )
    }
    anchors: dict[str, tuple[float, float]] = {}
    if plan["reflectors"]:
        y, anchors = _clusters(s, plan, colours, y, width)
    y = _rack_grid(s, plan, colours, anchors, y, width)
    y = _legend(s, plan, colours, y)
    body = "\n".join(s.parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 20}" '
        f'viewBox="0 0 {width} {y + 20}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">\n'
        f'<rect width="100%" height="100%" fill="#ffffff"/>\n{body}\n</svg>\n'
    )


def _session_bars(s: _Svg, plan: dict, y: float, width: int) -> float:
    stats = plan["stats"]
    top = max(stats["mesh_sessions"], 1)
    bar_x, bar_w = 250, width - 250 - 230
    s.text(30, y, "BGP sessions (log scale)", size=14, weight="bold")
    y += 14
    rows = [
        ("full mesh n(n-1)/2", stats["mesh_sessions"], MESH_COLOUR),
        ("this plan", stats["plan_sessions"], "#1f77b4" if plan["mode"] != "mesh" else MESH_COLOUR),
        ("most on one node", stats["max_sessions_on_node"], "#ff7f0e"),
    ]
    for label, value, colour in rows:
        s.text(30, y + 17, label, size=13)
        s.rect(bar_x, y + 4, bar_w, 18, "#f0f0f0", rx=2)
        s.rect(bar_x, y + 4, _log_width(value, top, bar_w), 18, colour, rx=2)
        s.text(bar_x + bar_w + 10, y + 18, _n(value), size=13, weight="bold")
        y += 26
    for power in range(0, int(math.log10(top)) + 1):
        x = bar_x + _log_width(10**power - 1, top, bar_w) if power else bar_x
        s.line(x, y, x, y + 5, "#999")
        s.text(x, y + 17, f"{10**power:,}", size=10, anchor="middle", fill="#777")
    y += 30
    if plan["mode"] == "route_reflector":
        s.text(
            30, y, f"This plan needs {_ratio(plan)} sessions than a full mesh.", size=14, fill="#1f77b4", weight="bold"
        )
        y += 24
    return y + 10


def _clusters(s: _Svg, plan: dict, colours: dict, y: float, width: int):
    stats = plan["stats"]
    by_cluster: dict[str, list[dict]] = {}
    for r in plan["reflectors"]:
        by_cluster.setdefault(r["cluster_id"], []).append(r)
    s.text(
        30,
        y,
        "Reflector clusters (reflectors mesh with each other; every client peers with all reflectors of its cluster)",
        size=14,
        weight="bold",
    )
    y += 12
    per_row = max(1, min(len(by_cluster), 3))
    box_w = (width - 60 - (per_row - 1) * 16) / per_row
    anchors: dict[str, tuple[float, float]] = {}
    centres: list[tuple[float, float]] = []
    cids = list(by_cluster)
    row_h = 0.0
    for i, cid in enumerate(cids):
        col, row = i % per_row, i // per_row
        members = by_cluster[cid]
        box_h = 52 + 34 * len(members)
        row_h = max(row_h, box_h)
        x = 30 + col * (box_w + 16)
        top = y + row * (row_h + 16)
        colour = colours[cid]
        s.rect(x, top, box_w, box_h, "#fafafa", stroke=colour, rx=8, extra='stroke-width="2"')
        clients = members[0]["clients"] if members else 0
        s.text(x + 10, top + 20, f"cluster {cid}", size=14, weight="bold", fill=colour)
        s.text(
            x + 10,
            top + 37,
            f"{_n(clients)} clients, each peering with all {len(members)} reflectors",
            size=12,
            fill="#555",
        )
        for j, r in enumerate(members):
            cy = top + 60 + 34 * j
            s.circle(x + 20, cy - 4, 9, colour)
            s.text(x + 36, cy - 6, f"{r['name']}  {r['ip']}", size=12, weight="bold")
            s.text(
                x + 36,
                cy + 9,
                f"{r['zone'] or '-'} / {r['rack'] or '-'}  ·  "
                f"{_n(stats['sessions_per_reflector'].get(r['name'], 0))} sessions",
                size=11,
                fill="#555",
            )
            centres.append((x + 20, cy - 4))
        anchors[cid] = (x + box_w / 2, top + box_h)
    rows = (len(cids) + per_row - 1) // per_row
    y += rows * (row_h + 16) + 4
    return y, anchors


def _rack_grid(s: _Svg, plan: dict, colours: dict, anchors: dict, y: float, width: int) -> float:
    racks = _racks(plan)
    reflector_cluster = {r["name"]: r["cluster_id"] for r in plan["reflectors"]}
    caption = (
        "Racks (every node in one full mesh)"
        if plan["mode"] == "mesh"
        else "Racks (bar: clients per reflector cluster; ★ a reflector in the rack)"
    )
    s.text(30, y + 30, caption, size=14, weight="bold")
    y += 40
    cols = max(1, min(len(racks), 10))
    gap = 10
    cell_w = (width - 60 - (cols - 1) * gap) / cols
    cell_h = 66
    fan = len(anchors) == 1  # one cluster: draw its fan of client racks; more: the colours say it
    grid_top = y + (60 if fan else 0)
    served: dict[str, list[tuple[float, float, int]]] = {}
    behind = len(s.parts)  # lines go under the rack boxes
    for i, rack in enumerate(racks):
        col, row = i % cols, i // cols
        x = 30 + col * (cell_w + gap)
        top = grid_top + row * (cell_h + gap)
        s.rect(x, top, cell_w, cell_h, "#f4f4f4", stroke="#bbb", rx=5)
        s.text(x + 6, top + 16, rack["name"], size=12, weight="bold")
        s.text(x + cell_w - 6, top + 16, rack["zone"], size=10, anchor="end", fill="#666")
        s.text(x + 6, top + 33, f"{rack['nodes']} nodes", size=11, fill="#333")
        for k, name in enumerate(reversed(rack["reflectors"][:4])):
            s.text(
                x + cell_w - 6 - 13 * k,
                top + 33,
                "★",
                size=13,
                anchor="end",
                fill=colours.get(reflector_cluster.get(name), "#d4a017"),
            )
        total = sum(rack["clusters"].values())
        bx = x + 6
        bar_w = cell_w - 12
        if total:
            for cid, count in sorted(rack["clusters"].items()):
                w = bar_w * count / total
                s.rect(bx, top + 42, w, 14, colours.get(cid, MESH_COLOUR), rx=1)
                served.setdefault(cid, []).append((x + cell_w / 2, top, count))
                bx += w
        else:
            s.rect(bx, top + 42, bar_w, 14, MESH_COLOUR if plan["mode"] == "mesh" else "#ddd", rx=1)
    lines = _Svg()
    for cid, targets in served.items():
        if not fan or cid not in anchors:
            continue
        ax, ay = anchors[cid]
        for tx, ty, count in targets:
            lines.line(ax, ay, tx, ty, colours[cid], width=0.6 + 2.4 * min(1.0, count / 60), extra='opacity="0.35"')
    s.parts[behind:behind] = lines.parts
    rows = (len(racks) + cols - 1) // cols
    return grid_top + rows * (cell_h + gap) + 10


def _legend(s: _Svg, plan: dict, colours: dict, y: float) -> float:
    x = 30
    if plan["mode"] == "mesh":
        s.rect(x, y, 14, 14, MESH_COLOUR, rx=2)
        s.text(x + 20, y + 12, "full mesh: every node peers with every other node", size=12)
        return y + 24
    for cid, colour in colours.items():
        s.rect(x, y, 14, 14, colour, rx=2)
        s.text(x + 20, y + 12, f"clients of cluster {cid}", size=12)
        x += 200
        if x > 1000:
            x, y = 30, y + 22
    return y + 24


# --------------------------------------------------------------------------------------------
# files


def render(plan: dict, fmt: str) -> str:
    """One report file's text: ``markdown``, ``svg`` or ``json``."""
    if fmt == "markdown":
        return markdown(plan, svg_name=REPORT_FILES["svg"])
    if fmt == "svg":
        return svg(plan)
    if fmt == "json":
        return json.dumps(plan, sort_keys=True, separators=(",", ":")) + "\n"
    raise ReportError(f"formats: {fmt!r} must be one of {', '.join(REPORT_FILES)}")


def write_report(plan: dict, dest: str, formats=tuple(REPORT_FILES), check_mode: bool = False) -> dict:
    """Write the report files whose content differs; returns files, written, summary, mode, stats."""
    if not isinstance(plan, dict):
        raise ReportError("plan: must be the dict returned by the bgp_topology_plan filter")
    missing = [k for k in PLAN_KEYS if k not in plan]
    if missing:
        raise ReportError(f"plan: not a bgp_topology_plan result, missing {', '.join(missing)}")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ReportError(f"dest: {dest} exists and is not a directory")
    files, written = [], []
    for fmt in formats:
        text = render(plan, fmt)
        path = os.path.join(dest, REPORT_FILES[fmt])
        files.append(path)
        try:
            with open(path, encoding="utf-8") as handle:
                same = handle.read() == text
        except FileNotFoundError:
            same = False
        if same:
            continue
        written.append(path)
        if not check_mode:
            os.makedirs(dest, exist_ok=True)
            with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(f"{path}.tmp", path)
    return {
        "changed": bool(written),
        "files": files,
        "written": written,
        "summary": summary(plan),
        "mode": plan["mode"],
        "stats": plan["stats"],
        "reflectors": plan["reflectors"],
        "warnings_plan": plan["warnings"],
    }


# The options of bgp_topology_report, shared by the module and its action plugin.
REPORT_ARGUMENT_SPEC = {
    "plan": {"type": "dict"},
    "settings": {"type": "dict"},
    "previous": {"type": "raw"},
    "dest": {"type": "path", "required": True},
    "formats": {"type": "list", "elements": "str", "choices": list(REPORT_FILES), "default": list(REPORT_FILES)},
}
