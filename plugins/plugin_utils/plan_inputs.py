# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning from Ansible's variables, on the controller: shared by the filter and the report action."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.kubescale.calico.plugins.module_utils.topology.planner import plan_topology


class HostvarsView(Mapping):
    """Read-only view over Ansible's ``hostvars``: unknown hosts are absent (not Undefined) and each
    host's variables are fetched once."""

    def __init__(self, hostvars):
        self._hostvars = hostvars
        self._cache: dict = {}

    def __getitem__(self, host):
        if host not in self._cache:
            if host not in self._hostvars:
                raise KeyError(host)
            self._cache[host] = self._hostvars[host]
        return self._cache[host]

    def __iter__(self):
        return iter(self._hostvars)

    def __len__(self):
        return len(self._hostvars)


def plan_from_vars(groups: Mapping, hostvars, settings: Mapping | None = None, previous=None) -> dict:
    """The plan of ``groups``/``hostvars`` as a play sees them; raises TopologyError on bad input."""
    return plan_topology(groups, HostvarsView(hostvars), settings, previous=previous)
