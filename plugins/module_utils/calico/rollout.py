# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A DaemonSet rollout sized by its update strategy: batches, wait budget, progress, ETA.

A RollingUpdate DaemonSet replaces at most ``maxUnavailable`` pods at a time (an absolute number or
a percentage of the scheduled pods, rounded up, at least 1). A rollout of ``desired`` pods therefore
takes ``ceil(desired / maxUnavailable)`` batches; the wait budget is that many batches times a
per-batch time. The budget is computed from the pods still to update when a wait starts, so a
rerun after a timeout gets a budget for what is left instead of starting the clock over.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

DEFAULT_MAX_UNAVAILABLE = 1  # what Kubernetes uses when the DaemonSet does not say
PROGRESS_KEEP = 200  # progress lines kept in a result (first ones and the most recent)
_INT_OR_PERCENT = re.compile(r"^(?P<n>\d+)(?P<pct>%?)$")


class RolloutError(Exception):
    """A bad strategy value or a rollout that did not finish in its budget; the message says which."""

    def __init__(self, msg: str, state: dict | None = None, progress: list[str] | None = None):
        super().__init__(msg)
        self.state = state or {}
        self.progress = progress or []


def parse_max_unavailable(value: int | str | None, what: str = "max_unavailable") -> int | str | None:
    """``5``, ``"5"`` → 5; ``"10%"`` → ``"10%"``; None stays None. At least 1 (or 1%), at most 100%."""
    if value is None or value == "":
        return None
    m = _INT_OR_PERCENT.match(str(value).strip())
    if not m:
        raise RolloutError(f"{what}: {value!r} must be a number of pods (e.g. 25) or a percentage (e.g. 10%)")
    n = int(m["n"])
    if n < 1 or (m["pct"] and n > 100):
        raise RolloutError(f"{what}: {value!r} must be at least 1 (or 1%) and a percentage at most 100%")
    return f"{n}%" if m["pct"] else n


def resolve_batch(max_unavailable: int | str | None, desired: int) -> int:
    """Pods replaced at a time: the absolute value, or the percentage of ``desired`` rounded up; >= 1."""
    value = parse_max_unavailable(max_unavailable) if max_unavailable is not None else DEFAULT_MAX_UNAVAILABLE
    if isinstance(value, str):
        return max(1, math.ceil(desired * int(value[:-1]) / 100))
    return max(1, value)


def strategy_of(ds: dict) -> tuple[str, int | str | None]:
    """(updateStrategy.type, rollingUpdate.maxUnavailable as given) of a DaemonSet object."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    return strategy.get("type") or "RollingUpdate", rolling.get("maxUnavailable")


def batches(remaining: int, batch: int) -> int:
    return math.ceil(max(0, remaining) / max(1, batch))


def state_of(ds: dict) -> dict:
    """The rollout figures of a DaemonSet object (status and generations)."""
    st = ds.get("status") or {}
    desired = int(st.get("desiredNumberScheduled") or 0)
    state = {
        "generation": int((ds.get("metadata") or {}).get("generation") or 0),
        "observed_generation": int(st.get("observedGeneration") or 0),
        "desired": desired,
        "updated": int(st.get("updatedNumberScheduled") or 0),
        "available": int(st.get("numberAvailable") or 0),
        "ready": int(st.get("numberReady") or 0),
    }
    state["complete"] = (state["observed_generation"] >= state["generation"]
                         and state["updated"] >= desired and state["available"] >= desired)
    return state


def duration(seconds: float) -> str:
    """63 → '1m03s', 7322 → '2h02m', 5 → '5s'."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(state: dict, batch: int, batch_seconds: float, elapsed: float, updated_at_start: int) -> float:
    """Seconds left: from the rate seen in this wait once pods were updated, else batches × batch time."""
    remaining = state["desired"] - state["updated"]
    if remaining <= 0:
        return 0.0
    done = state["updated"] - updated_at_start
    if done > 0 and elapsed > 0:
        return remaining * elapsed / done
    return batches(remaining, batch) * batch_seconds


def line(name: str, state: dict, elapsed: float, eta_s: float) -> str:
    """One progress line: updated/available/desired, elapsed and ETA."""
    d = state["desired"]
    return (f"DaemonSet {name}: updated {state['updated']}/{d}, available {state['available']}/{d}, "
            f"elapsed {duration(elapsed)}, ETA {duration(eta_s)}")


def _keep(lines: list[str]) -> list[str]:
    if len(lines) <= PROGRESS_KEEP:
        return lines
    head = PROGRESS_KEEP // 4
    return [*lines[:head], f"... {len(lines) - PROGRESS_KEEP + 1} lines left out ...",
            *lines[-(PROGRESS_KEEP - head - 1):]]


def wait(get: Callable[[], dict | None], name: str, max_unavailable: int | str | None, batch_seconds: float,
         timeout: float | None, sleep: float, every: float = 30.0,
         clock: Callable[[], float] = time.monotonic, once: bool = False,
         fail: bool = True) -> tuple[dict, list[str]]:
    """Poll ``get()`` (the DaemonSet) until the rollout is complete; return (state, progress lines).

    The budget is ``timeout`` when given, else derived from the pods left and the strategy. A
    progress line is recorded when the figures change and at least every ``every`` seconds.
    Raises RolloutError with where the rollout stands when the budget runs out (with ``fail``
    false: returns, the state's ``message`` saying the same). ``once``: one read, no waiting.
    """
    start = clock()
    progress: list[str] = []
    first: dict | None = None
    last_key, last_at = None, start
    limit = 0.0
    while True:
        ds = get()
        if ds is None:
            raise RolloutError(f"wait for DaemonSet {name}: it disappeared during the rollout")
        state = state_of(ds)
        now = clock()
        elapsed = now - start
        batch = resolve_batch(max_unavailable, state["desired"])
        if first is None:
            first = state
            # before the controller observed the new spec, "updated" counts the old template's pods
            left = state["desired"] - (state["updated"] if state["observed_generation"] >= state["generation"] else 0)
            budget_batches = max(1, batches(left, batch))
            limit = float(timeout) if timeout else budget_batches * batch_seconds
        eta_s = eta(state, batch, batch_seconds, elapsed, first["updated"])
        key = (state["updated"], state["available"], state["observed_generation"])
        if key != last_key or now - last_at >= every or state["complete"]:
            progress.append(line(name, state, elapsed, eta_s))
            last_key, last_at = key, now
        state.update(max_unavailable=batch, batches_left=batches(state["desired"] - state["updated"], batch),
                     batch_seconds=batch_seconds, budget=limit, budget_batches=None if timeout else budget_batches,
                     elapsed=round(elapsed, 1), eta=round(eta_s, 1))
        if state["complete"] or once:
            return state, _keep(progress)
        if elapsed >= limit:
            state["message"] = timeout_message(name, state, limit, bool(timeout))
            if not fail:
                return state, _keep(progress)
            raise RolloutError(state["message"], state, _keep(progress))
        time.sleep(sleep)


def timeout_message(name: str, state: dict, limit: float, overridden: bool) -> str:
    d = state["desired"]
    how = ("wait_timeout" if overridden else
           f"{state['budget_batches']} batch(es) of {state['max_unavailable']} x {state['batch_seconds']:g}s")
    return (f"wait for DaemonSet {name}: rollout not finished within {duration(limit)} ({how}): "
            f"updated {state['updated']}/{d}, available {state['available']}/{d}, "
            f"generation {state['generation']} observed {state['observed_generation']}, "
            f"elapsed {duration(state['elapsed'])}, ETA {duration(state['eta'])}. "
            "Kubernetes continues the rollout by itself; rerun to resume waiting (nothing is restarted again), "
            "or give more time per batch (rollout_batch_seconds) or wait_timeout")


def recommendation(desired: int, batch: int, batch_seconds: float) -> str | None:
    """A warning for a large DaemonSet rolled a few pods at a time (more than an hour expected)."""
    expected = batches(desired, batch) * batch_seconds
    if desired >= 100 and expected > 3600:
        return (f"calico-node rollout of {desired} pods, {batch} at a time: {batches(desired, batch)} batches, "
                f"about {duration(expected)}; for large clusters set max_unavailable to a percentage "
                "(10% replaces 100 pods at a time at 1,000 nodes)")
    return None
