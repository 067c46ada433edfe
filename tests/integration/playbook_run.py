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
(1.5 s on an idle 2-core machine); ``run_modules`` runs a table of calls in one playbook.
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

_PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
"""
_TASK = """\
    - name: call {index}
      {fqcn}: {args}
      ignore_errors: true
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
    return run_modules([(name, args or {})], check=check, diff=diff, env=env, module_env=module_env,
                       timeout=timeout)[0]


def run_modules(calls: list[tuple[str, dict]], check: bool = False, diff: bool = False, env: dict | None = None,
                module_env: dict | None = None, timeout: float = 300) -> list[dict]:
    """Run several module calls as the tasks of one playbook (one ansible start); a result per call.

    Each task has ``ignore_errors: true``, so a failing call does not stop the later ones: use it
    for tables of bad inputs. ``_stdout`` (the whole run's output) and ``_rc`` are added to each.
    """
    with tempfile.TemporaryDirectory(prefix="ansible-run-") as tmp:
        out = Path(tmp) / "results.jsonl"
        tasks = []
        for index, (name, args) in enumerate(calls):
            fqcn = name if "." in name else f"{NAMESPACE}.{name}"
            task = _TASK.format(index=index, fqcn=fqcn, args=json.dumps(args))
            if module_env:
                task += f"      environment: {json.dumps(module_env)}\n"
            tasks.append(task)
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(_PLAY + "".join(tasks))
        cmd = [shutil.which("ansible-playbook") or "ansible-playbook", str(playbook)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, cwd=tmp, env=_env(env, out), capture_output=True, text=True, timeout=timeout,
                              check=False)
        lines = out.read_text().splitlines() if out.exists() else []
        if len(lines) != len(calls):
            raise AnsibleRunError(f"ansible-playbook exited {proc.returncode} with {len(lines)} of {len(calls)} "
                                  f"task results:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    results = [json.loads(line) for line in lines]
    for result in results:
        result["_stdout"] = proc.stdout + proc.stderr
        result["_rc"] = proc.returncode
    return results


def playbook_env(extra: dict | None = None) -> dict:
    """The environment every test's ansible-playbook runs with: the linked collection, no colour or noise."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
    })
    env.update(extra or {})
    return env


def run_playbook(playbook: Path | str, *args: str, inventory: Path | str | None = None, extra_vars: dict | None = None,
                 env: dict | None = None, cwd: Path | str = REPO, timeout: float = 300,
                 own_env: bool = False) -> subprocess.CompletedProcess:
    """Run ``ansible-playbook [-i inventory] playbook [-e json] *args`` the one way tests run playbooks.

    Returns the completed process (rc, stdout, stderr); asserting on it is the caller's business.
    ``args`` are extra command-line arguments (``--check``, ``--diff``, ``--tags``, ...).
    ``own_env``: run with exactly ``env`` (a user's environment outside this repository).
    """
    cmd = [shutil.which("ansible-playbook") or "ansible-playbook"]
    if inventory is not None:
        cmd += ["-i", str(inventory)]
    cmd.append(str(playbook))
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    cmd += list(args)
    return subprocess.run(cmd, cwd=str(cwd), env=env if own_env else playbook_env(env), capture_output=True, text=True,
                          timeout=timeout, check=False)
