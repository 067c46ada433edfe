"""The progress line progress_wait prints from a JSON-lines progress file."""

from __future__ import annotations

import json

import pytest

from ansible_collections.kubescale.calico.plugins.plugin_utils import progress

# A start phase as calico_datastore_migrate writes it: 100 resources then 50 IPAM keys.
START = [
    {"t": 0.5, "step": "converted", "total": 150},
    {"t": 0.6, "step": "locked"},
    {"t": 0.7, "step": "paused"},
    {"t": 15.7, "step": "source-unchanged"},
    {"t": 16.0, "step": "resources", "done": 40, "total": 100, "rate": 200.0},
    {"t": 16.3, "step": "resources", "done": 100, "total": 100, "rate": 250.0},
    {"t": 16.4, "step": "ipam", "done": 25, "total": 50, "rate": 500.0},
    {"t": 16.5, "step": "ipam", "done": 50, "total": 50, "rate": 500.0},
    {"t": 16.6, "step": "pruned", "deleted": 0},
    {"t": 16.8, "step": "verified", "ok": True},
    {"t": 16.9, "step": "done", "keys": 150, "rate": 98.7},
]


def _text(events) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def test_an_unfinished_last_line_and_garbage_are_left_out():
    text = _text(START[:2]) + "not json\n" + '{"no_step": 1}\n' + '{"t": 1, "step": "pau'
    assert progress.parse(text) == START[:2]
    assert progress.parse("") == []


@pytest.mark.parametrize(("upto", "line"), [
    (0, "starting, 3s elapsed"),
    (1, "v1 data read and converted | 0/150 keys (0%) | 3s elapsed"),
    (3, "Calico 2.x paused, settling | 0/150 keys (0%) | 3s elapsed"),
    (5, "writing resources | 40/150 keys (26%) | 200 keys/s | ETA 1s | 3s elapsed"),
    (7, "writing IPAM keys | 125/150 keys (83%) | 500 keys/s | ETA 0s | 3s elapsed"),
    (9, "verifying | 150/150 keys (100%) | 3s elapsed"),
    (11, "done | 150 keys | 99 keys/s overall | 3s elapsed"),
])
def test_each_step_of_a_start_phase(upto, line):
    assert progress.line(START[:upto], 3.2) == line


def test_data_steps_add_up_without_an_announced_total():
    events = [{"t": 1, "step": "copy", "done": 10, "total": 40, "rate": 5.0}]
    assert progress.figures(events) == {"done": 10, "total": 40, "rate": 5.0, "eta": 6.0}
    assert progress.line(events, 65) == "copy | 10/40 keys (25%) | 5 keys/s | ETA 6s | 1:05 elapsed"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (7.4, "7s"), (65, "1:05"), (3725, "1:02:05"), (-1, "0s")])
def test_clock(seconds, text):
    assert progress.clock(seconds) == text


def test_steps_that_count_the_whole_run_are_not_added_up():
    events = [{"t": 0.1, "step": "planned", "total": 60, "unit": "objects"},
              {"t": 1.0, "step": "BGPPeers created or updated", "done": 10, "total": 60, "unit": "objects",
               "rate": 10.0},
              {"t": 2.0, "step": "Nodes: created", "done": 40, "total": 60, "unit": "objects", "rate": 20.0}]
    assert progress.line(events, 2) == "Nodes: created | 40/60 objects (66%) | 20 objects/s | ETA 1s | 2s elapsed"
