# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bench aid: wall time of every task (start to the next task's start), written as JSON lines.

Enabled by bench/site/run.py (ANSIBLE_CALLBACKS_ENABLED=task_times, ANSIBLE_CALLBACK_PLUGINS=this
directory); the file is $KUBESCALE_TASK_TIMES. Not part of the collection.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: wall time per task, as JSON lines (bench aid)
description: Writes one line per task to the file named by KUBESCALE_TASK_TIMES.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._current: dict | None = None
        self._play = ""
        self._out = os.environ.get("KUBESCALE_TASK_TIMES")

    def _close(self) -> None:
        if self._current and self._out:
            self._current["seconds"] = round(time.monotonic() - self._current.pop("_start"), 3)
            with open(self._out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(self._current) + "\n")
        self._current = None

    def v2_playbook_on_play_start(self, play) -> None:
        self._close()
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._close()
        self._current = {"play": self._play, "task": task.get_name(), "_start": time.monotonic(), "hosts": 0}

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.v2_playbook_on_task_start(task, False)

    def _count(self, *_args, **_kwargs) -> None:
        if self._current is not None:
            self._current["hosts"] += 1

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _count

    def v2_playbook_on_stats(self, stats) -> None:
        self._close()
