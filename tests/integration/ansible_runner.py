"""Run a collection module the way Ansible runs it, and return its result as a dict.

``run_module("etcd_info", {"endpoints": [...]})`` writes a one-task playbook for the implicit
``localhost``, runs ``ansible-playbook`` on it (optionally with ``--check`` / ``--diff``) and
returns the task's result as callbacks see it: the module's return values plus ``changed``,
``failed``, ``msg``, ``diff``, ``warnings``. The module runs in its own Python process, through
Ansible's argument parsing (types, defaults, aliases, ``no_log``), module packaging and check-mode
and diff plumbing; a failed module returns ``{"failed": True, "msg": ...}`` instead of raising.

The collection is found through ``.lab/collections`` (linked by tests/conftest.py, or
``make link``). Arguments are written into the playbook as JSON, so Jinja in them is templated as
it would be in a playbook. The result is captured by the test callback
``callback_plugins/result_file.py`` (no extra task). Each call costs one ansible-playbook start
(about 1.5 s on the CI machine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".lab" / "collections"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
NAMESPACE = "kubescale.calico"

_PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: module under test
      {fqcn}: {args}
{env_block}
"""


class AnsibleRunError(RuntimeError):
    """ansible-playbook itself failed (syntax, missing module, crash): no task result exists."""


def _env(extra: dict | None, result_file: Path) -> dict:
    if not (COLLECTIONS / "ansible_collections" / "kubescale" / "calico").exists():
        raise AnsibleRunError(f"{COLLECTIONS}/ansible_collections/kubescale/calico is missing: "
                              "run the tests through pytest (tests/conftest.py links it) or `make link`")
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
        "ANSIBLE_CALLBACKS_ENABLED": "result_file",
        "RESULT_FILE": str(result_file),
    })
    env.update(extra or {})
    return env


def run_module(name: str, args: dict | None = None, check: bool = False, diff: bool = False,
               env: dict | None = None, module_env: dict | None = None, timeout: float = 300) -> dict:
    """Run module ``name`` (short name → ``kubescale.calico.<name>``) with ``args``; return its result.

    check/diff: run with ``--check`` / ``--diff``. env: extra environment for ansible-playbook.
    module_env: task-level ``environment:`` for the module. The returned dict has two extra keys:
    ``_stdout`` (ansible-playbook's screen output, e.g. to see warnings and diffs as a user would)
    and ``_rc``.
    """
    fqcn = name if "." in name else f"{NAMESPACE}.{name}"
    with tempfile.TemporaryDirectory(prefix="ansible-run-") as tmp:
        out = Path(tmp) / "result.json"
        env_block = f"      environment: {json.dumps(module_env)}" if module_env else ""
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(_PLAYBOOK.format(fqcn=fqcn, args=json.dumps(args or {}), env_block=env_block))
        cmd = [shutil.which("ansible-playbook") or "ansible-playbook", str(playbook)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, cwd=tmp, env=_env(env, out), capture_output=True, text=True, timeout=timeout)
        if not out.exists():
            raise AnsibleRunError(f"ansible-playbook exited {proc.returncode} without a task result:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        result = json.loads(out.read_text())
    result["_stdout"] = proc.stdout + proc.stderr
    result["_rc"] = proc.returncode
    return result
