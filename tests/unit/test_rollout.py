"""The calico-node rollout arithmetic: maxUnavailable values, batches, budget, ETA, the wait loop."""

from __future__ import annotations

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.calico import rollout


@pytest.mark.parametrize(("value", "parsed"), [(None, None), ("", None), (5, 5), ("5", 5), (" 10% ", "10%"),
                                               ("100%", "100%")])
def test_max_unavailable_values(value, parsed):
    assert rollout.parse_max_unavailable(value) == parsed


@pytest.mark.parametrize("value", ["0", "0%", "101%", "-1", "ten", "1.5", "10 %"])
def test_bad_max_unavailable_values_are_one_line_errors(value):
    with pytest.raises(rollout.RolloutError, match=r"^max_unavailable: ") as err:
        rollout.parse_max_unavailable(value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("value", "desired", "batch"), [
    (None, 1000, 1), (25, 1000, 25), ("10%", 1000, 100), ("10%", 995, 100),  # rounded up
    ("1%", 50, 1), ("10%", 0, 1), (2000, 1000, 2000)])
def test_batch_size(value, desired, batch):
    assert rollout.resolve_batch(value, desired) == batch


def test_batches_and_the_recommendation():
    assert rollout.batches(1000, 100) == 10 and rollout.batches(1001, 100) == 11 and rollout.batches(0, 5) == 0
    assert rollout.recommendation(1000, 100, 60) is None  # 10 batches, 10 minutes
    advice = rollout.recommendation(1000, 1, 60)
    assert advice.startswith("calico-node rollout of 1000 pods, 1 at a time: 1000 batches, about 16h40m")
    assert rollout.recommendation(9, 1, 60) is None  # small DaemonSet


def test_eta_from_the_rate_seen_else_from_batches():
    state = {"desired": 1000, "updated": 300}
    assert rollout.eta(state, 100, 60, elapsed=120, updated_at_start=100) == pytest.approx(700 * 120 / 200)
    assert rollout.eta(state, 100, 60, elapsed=120, updated_at_start=300) == 7 * 60  # nothing moved yet
    assert rollout.eta({"desired": 5, "updated": 5}, 1, 60, 10, 0) == 0


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (63, "1m03s"), (7322, "2h02m"), (-1, "0s")])
def test_duration(seconds, text):
    assert rollout.duration(seconds) == text


def _ds(generation, observed, desired, updated, available, mu=None):
    spec = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": mu}}} if mu else {}
    return {"metadata": {"generation": generation}, "spec": spec,
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                       "updatedNumberScheduled": updated, "numberAvailable": available}}


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_wait_budget_counts_all_pods_until_the_new_generation_is_observed(monkeypatch):
    clock = FakeClock()
    reads = iter([_ds(2, 1, 100, 100, 100), _ds(2, 2, 100, 10, 90), _ds(2, 2, 100, 100, 100)])
    monkeypatch.setattr(rollout.time, "sleep", lambda s: setattr(clock, "t", clock.t + s))
    state, lines = rollout.wait(lambda: next(reads), "ns/ds", "10%", 30, None, sleep=5, clock=clock)
    assert state["complete"] and state["budget_batches"] == 10 and state["budget"] == 300
    assert len(lines) == 3 and lines[-1].startswith("DaemonSet ns/ds: updated 100/100, available 100/100")


def test_wait_times_out_with_the_figures_or_returns_them(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(rollout.time, "sleep", lambda s: setattr(clock, "t", clock.t + s))
    stuck = _ds(2, 2, 100, 40, 90)
    with pytest.raises(rollout.RolloutError) as err:
        rollout.wait(lambda: stuck, "ns/ds", 10, 4, None, sleep=1, every=1000, clock=clock)
    msg = str(err.value)
    # 60 pods left, 10 at a time: 6 batches x 4 s = 24 s
    assert msg.startswith("wait for DaemonSet ns/ds: rollout not finished within 24s (6 batch(es) of 10 x 4s): "
                          "updated 40/100, available 90/100, generation 2 observed 2, elapsed 24s, ETA 24s.")
    assert err.value.progress == ["DaemonSet ns/ds: updated 40/100, available 90/100, elapsed 0s, ETA 24s"]
    clock.t = 0
    state, _unused = rollout.wait(lambda: stuck, "ns/ds", 10, 4, 3, sleep=1, clock=clock, fail=False)
    assert not state["complete"] and "within 3s (wait_timeout)" in state["message"]
