# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One line a person reads, from the JSON-lines progress file a long module writes.

Events are dicts with ``step`` and ``t`` (seconds since the module started); steps that move data carry
``done``/``total`` (and ``rate``, keys per second, in that step). An event with ``total`` and no ``done``
(e.g. the migration's ``converted``) gives the overall total; consecutive steps with ``done``/``total``
add up to it (the migration writes resources, then IPAM keys), unless their ``total`` is that overall
total (then ``done`` counts the whole run, as in the topology apply). ``unit`` names what is counted
(default keys).
"""

from __future__ import annotations

import json

# Plain words for the steps of the modules that write progress files (others are shown as named).
STEP_WORDS = {
    "converted": "v1 data read and converted",
    "locked": "migration lock taken",
    "snapshot": "snapshot taken",
    "marker": "marker written",
    "paused": "Calico 2.x paused, settling",
    "source-unchanged": "source unchanged since the first read",
    "source-reread": "source read again",
    "resources": "writing resources",
    "ipam": "writing IPAM keys",
    "pruned": "verifying",
    "verified": "verified",
    "done": "done",
    "planned": "datastore read, writing",
    "applied": "applied, writing the report",
}


def parse(text: str) -> list[dict]:
    """The complete, well-formed lines of a progress file (a line still being written is left out)."""
    events = []
    for line in text.split("\n")[:-1]:  # the part after the last newline is not complete yet
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "step" in event:
            events.append(event)
    return events


def clock(seconds: float) -> str:
    """1:05:09, 4:02 or 7s."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}" if minutes else f"{secs}s"


def figures(events: list[dict]) -> dict:
    """Overall done/total, the rate of the latest data step and the ETA (None when unknown)."""
    total = None
    base = 0  # keys of the data steps already finished
    current = None  # the latest data event
    for event in events:
        if "total" in event and "done" not in event:
            total = event["total"]
        elif "done" in event and "total" in event:
            if event["total"] == total:  # counts the whole run (the topology apply's steps)
                base = 0
            elif current is not None and current["step"] != event["step"]:
                base += current["total"]
            current = event
    done = base + (current["done"] if current else 0)
    if events and current is not None and events[-1] is not current and current["done"] >= current["total"]:
        done = base + current["total"]
    if total is None and current is not None:
        total = base + current["total"]
    rate = current.get("rate") if current else None
    eta = None
    if rate and total is not None and events and events[-1] is current:
        eta = max(0.0, (total - done) / rate)
    return {"done": done, "total": total, "rate": rate, "eta": eta}


def line(events: list[dict], elapsed: float) -> str:
    """What is happening now: step, done/total (percent), rate, ETA, elapsed."""
    if not events:
        return f"starting, {clock(elapsed)} elapsed"
    last = events[-1]
    step = STEP_WORDS.get(last["step"], last["step"])
    if "keys" in last and "rate" in last:  # the closing event: what it took overall
        return f"{step} | {last['keys']} keys | {last['rate']:.0f} keys/s overall | {clock(elapsed)} elapsed"
    fig = figures(events)
    unit = next((e["unit"] for e in reversed(events) if "unit" in e), "keys")
    parts = [step]
    if fig["total"] is not None:
        pct = 100 * fig["done"] // fig["total"] if fig["total"] else 100
        parts.append(f"{fig['done']}/{fig['total']} {unit} ({pct}%)")
    if fig["rate"] and "done" in last:
        parts.append(f"{fig['rate']:.0f} {unit}/s")
    if fig["eta"] is not None:
        parts.append(f"ETA {clock(fig['eta'])}")
    parts.append(f"{clock(elapsed)} elapsed")
    return " | ".join(parts)
