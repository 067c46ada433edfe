# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for bgp_topology_report: write the report on the controller, in the Ansible process.

A plan of thousands of nodes is megabytes of JSON; rendering it here avoids serialising it into a
module process (which cost more than planning itself). The module file holds the documentation and
the same code path for direct module use.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubescale.calico.plugins.module_utils.topology_report import ReportError, write_report
from ansible_collections.kubescale.calico.plugins.modules.bgp_topology_report import ARGUMENT_SPEC


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(write_report(args["plan"], args["dest"], args["formats"],
                                       check_mode=self._task.check_mode))
        except (ReportError, OSError) as exc:
            raise AnsibleActionFail(str(exc)) from None
        return result
