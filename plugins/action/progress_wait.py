# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for progress_wait: wait for an async job, one readable progress line per poll.

Each round asks ``async_status`` for the job and reads the job's progress file (``slurp``), both on
the host the task runs on (its ``delegate_to``), and prints one line through Ansible's display, which
reaches the screen (and ansible-runner's event stream) while the task runs. An ``until``/``retries``
loop would print "FAILED - RETRYING" instead. The job's own result becomes this task's result, so a
failed job fails here with the module's message. A job that already finished (the module ran
synchronously, e.g. in check mode) is returned as it is.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.kubescale.calico.plugins.plugin_utils import progress

display = Display()

ARGS = frozenset(("job", "progress_file", "delay", "timeout", "label"))
# Keys async_status adds to a job's result; the task's result is the module's.
ASYNC_KEYS = ("ansible_job_id", "started", "finished", "results_file", "erased", "stdout", "stderr",
              "stdout_lines", "stderr_lines")


def _number(args: Mapping, name: str, default: float) -> float:
    value = args.get(name, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise AnsibleActionFail(f"{name}: must be a number of seconds, got {value!r}") from None
    if value < 0:
        raise AnsibleActionFail(f"{name}: must not be negative, got {value:g}")
    return value


def _module_result(status: Mapping) -> dict:
    out = {k: v for k, v in status.items() if k not in ASYNC_KEYS or (k.startswith("std") and v)}
    out.pop("invocation", None)  # async_status's own arguments, not the module's
    return out


def _running_locally(status_file: str) -> dict | None:
    """A running job's status read from its file, as async_status says it; None once it has finished (or the
    file is missing or unreadable), when async_status itself gives the final result."""
    try:
        with open(status_file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:  # being written: still running
        return {"started": 1, "finished": 0}
    if isinstance(data, dict) and "started" in data and not data.get("finished"):
        return {"started": 1, "finished": 0}
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = ARGS

    _async_dir: str | None = None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        unknown = sorted(set(args) - ARGS)
        if unknown:
            raise AnsibleActionFail(f"Unsupported parameters: {', '.join(unknown)}; "
                                    f"supported: {', '.join(sorted(ARGS))}")
        job = args.get("job")
        if not isinstance(job, Mapping):
            raise AnsibleActionFail("job: required, the registered result of a task run with async and poll: 0")
        delay = _number(args, "delay", 5)
        timeout = _number(args, "timeout", 0)
        label = str(args.get("label") or "progress")
        path = args.get("progress_file") or ""
        jid = job.get("ansible_job_id")
        if not jid or job.get("finished") or job.get("skipped"):
            result.update(_module_result(job))  # ran synchronously (check mode, no async): nothing to wait for
            return result
        try:
            final = self._wait(str(jid), path, delay, timeout, label, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(_module_result(final))
        return result

    def _local(self) -> bool:
        """The job runs in this machine as this user: its files can be read here, without a module run."""
        return getattr(self._connection, "transport", None) == "local" and not self._play_context.become

    def _status(self, jid: str, task_vars: dict, mode: str = "status") -> dict:
        if self._async_dir is None:
            self._async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        if mode == "status" and self._local():
            running = _running_locally(os.path.join(self._async_dir, jid))
            if running is not None:
                return running
        return self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                    module_args={"jid": jid, "mode": mode, "_async_dir": self._async_dir})

    def _events(self, path: str, task_vars: dict) -> list[dict]:
        if not path:
            return []
        if self._local():
            try:
                with open(os.path.expanduser(path), encoding="utf-8", errors="replace") as handle:
                    return progress.parse(handle.read())
            except OSError:  # not written yet
                return []
        read = self._execute_module(module_name="ansible.legacy.slurp", module_args={"src": path},
                                    task_vars=task_vars)
        if read.get("failed"):  # not written yet
            return []
        return progress.parse(base64.b64decode(read.get("content", "")).decode("utf-8", "replace"))

    def _wait(self, jid: str, path: str, delay: float, timeout: float, label: str, task_vars: dict) -> dict:
        started = time.monotonic()
        while True:
            status = self._status(jid, task_vars)
            elapsed = time.monotonic() - started
            if status.get("finished") or (status.get("failed") and not status.get("started")):
                break
            display.display(f"{label}: {progress.line(self._events(path, task_vars), elapsed)}")
            if timeout and elapsed > timeout:
                raise AnsibleActionFail(
                    f"{label}: job {jid} still running after {progress.clock(elapsed)} (timeout); it goes on "
                    f"in the background, its progress is in {path or 'no file'}")
            time.sleep(delay)
        if status.get("finished"):
            events = self._events(path, task_vars)
            if events:
                display.display(f"{label}: {progress.line(events, elapsed)}")
            self._status(jid, task_vars, mode="cleanup")
        return status
