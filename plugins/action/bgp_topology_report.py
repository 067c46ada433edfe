# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for bgp_topology_report: write the report on the controller, in the Ansible process.

A plan of thousands of nodes is megabytes of JSON; rendering it here avoids serialising it into a
module process (which cost more than planning itself). The options are checked by hand rather than
with ``validate_argument_spec``, which deep-copies every parameter (the whole plan). The module file
holds the documentation and the same code path for direct module use.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubescale.calico.plugins.module_utils.topology.inventory import TopologyError
from ansible_collections.kubescale.calico.plugins.module_utils.topology.report import (
    REPORT_ARGUMENT_SPEC,
    REPORT_FILES,
    ReportError,
    write_report,
)
from ansible_collections.kubescale.calico.plugins.plugin_utils.plan_inputs import plan_from_vars


def _options(args: Mapping) -> tuple[dict | None, str, list[str]]:
    unknown = sorted(set(args) - set(REPORT_ARGUMENT_SPEC))
    if unknown:
        supported = ", ".join(REPORT_ARGUMENT_SPEC)
        raise AnsibleActionFail(f"Unsupported parameters: {', '.join(unknown)}; supported: {supported}")
    plan, dest = args.get("plan"), args.get("dest")
    if plan is not None and not isinstance(plan, Mapping):
        raise AnsibleActionFail("plan: must be the dict returned by the bgp_topology_plan filter")
    settings = args.get("settings")
    if settings is not None and not isinstance(settings, Mapping):
        raise AnsibleActionFail("settings: must be a mapping of planner settings")
    if not isinstance(dest, str) or not dest:
        raise AnsibleActionFail("dest: required, a directory path on the controller")
    formats = args.get("formats", list(REPORT_FILES))
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",")]
    bad = [f for f in formats if f not in REPORT_FILES]
    if bad:
        raise AnsibleActionFail(f"formats: {', '.join(map(str, bad))} not in {', '.join(REPORT_FILES)}")
    return (dict(plan) if plan is not None else None), dest, list(formats)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(REPORT_ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        plan, dest, formats = _options(self._task.args)
        if plan is None:
            try:
                plan = plan_from_vars(task_vars["groups"], task_vars["hostvars"], self._task.args.get("settings"),
                                      previous=self._task.args.get("previous"))
            except TopologyError as exc:
                raise AnsibleActionFail(f"bgp_topology_report: {exc}") from None
        try:
            result.update(
                write_report(
                    plan,
                    self._loader.path_dwim(dest) if not dest.startswith("/") else dest,
                    formats,
                    check_mode=self._task.check_mode,
                )
            )
        except (ReportError, OSError) as exc:
            raise AnsibleActionFail(str(exc)) from None
        return result
