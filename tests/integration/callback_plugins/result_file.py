"""Ansible callback for tests: append each task result as one JSON line to the file named by $RESULT_FILE.

Used by tests/integration/playbook_run.py. The result is what a callback sees (the module's return
values, ``changed``, ``diff``, ``warnings``, ``invocation`` with no_log values censored) plus
``failed``.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "result_file"
    CALLBACK_NEEDS_ENABLED = True

    def _save(self, result, failed: bool) -> None:
        data = dict(getattr(result, "result", None) or result._result)
        data["failed"] = failed
        data["warnings"] = [str(getattr(w, "msg", None) or getattr(getattr(w, "event", None), "msg", w))
                            for w in data.get("warnings") or []]
        with open(os.environ["RESULT_FILE"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps(data, default=repr) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._save(result, False)

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        self._save(result, True)

    def v2_runner_on_skipped(self, result) -> None:
        self._save(result, False)
