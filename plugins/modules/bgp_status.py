#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: bgp_status
short_description: Report the BGP sessions of a BIRD daemon (Calico node or route reflector)
version_added: 0.1.0
description:
  - Connects to a BIRD control socket directly (no C(birdc) needed) and returns the daemon's
    version, router ID and one entry per BGP session with its state, uptime and route counts.
  - Works with BIRD 2 (the distribution's C(bird2), used by the C(kubescale.calico.route_reflector)
    role) and BIRD 1.6 (Calico's own fork, socket C(/var/run/calico/bird.ctl) inside calico-node).
  - Read-only; it never changes anything, so check mode returns the same facts.
options:
  socket:
    description:
      - Path of BIRD's control socket.
      - When omitted, the first existing of O(sockets) is used.
      - Mutually exclusive with O(sockets).
    type: path
  sockets:
    description:
      - Candidate control sockets; the first that exists is read. One task instead of a C(stat) per path.
      - Default C(/var/run/calico/bird.ctl) (Calico) and C(/run/bird/bird.ctl) (Debian/Ubuntu bird2).
    type: list
    elements: path
  missing_ok:
    description:
      - When no control socket exists (BIRD does not run on this host), return RV(found=false) and no
        sessions instead of failing.
      - A socket that exists but does not answer still fails.
    type: bool
    default: false
  expect_routes:
    description:
      - Prefixes (for example the other nodes' pod blocks) that must have a route in BIRD's table;
        the module fails listing the ones missing (RV(routes_missing)).
      - With C(until)/C(retries), waits until a node has learned every block.
    type: list
    elements: str
    default: []
  expect_established:
    description:
      - Fail when any BGP session is not C(Established); the failure lists those sessions.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each answer from BIRD.
    type: float
    default: 10
extends_documentation_fragment:
  - kubescale.calico.attributes
  - kubescale.calico.attributes.info_module
notes:
  - C(uptime_seconds) is computed from BIRD's own clock (C(show status)) and the session's
    last state change; it is null when the session is not established.
seealso:
  - module: kubescale.calico.bgp_topology_report
author:
  - kubescale.calico developers (@kubescale)
"""

EXAMPLES = r"""
- name: Sessions of the route reflector on this host
  kubescale.calico.bgp_status:
  register: bgp

- name: Calico node - fail unless every BGP session is up
  kubescale.calico.bgp_status:
    socket: /var/run/calico/bird.ctl
    expect_established: true

- name: Sessions of a worker, if BIRD runs there (one task, no stat loop)
  kubescale.calico.bgp_status:
    sockets: [/var/run/calico/bird.ctl, /run/bird/bird.ctl]
    missing_ok: true
  register: bgp

- name: Wait until this node has learned the other nodes' blocks
  kubescale.calico.bgp_status:
    expect_routes: [192.168.10.0/26, 192.168.10.64/26]
  register: bgp
  until: bgp.routes_missing | length == 0
  retries: 30
  delay: 2

- name: Wait until all sessions of a freshly configured reflector are up
  kubescale.calico.bgp_status:
    socket: /run/bird/bird.ctl
  register: bgp
  until: bgp.not_established | length == 0
  retries: 12
  delay: 5
"""

RETURN = r"""
socket:
  description: The control socket that was read (null when none exists and O(missing_ok) is set).
  returned: always
  type: str
  sample: /run/bird/bird.ctl
found:
  description: Whether a control socket was found (always true unless O(missing_ok) is set).
  returned: always
  type: bool
  sample: true
routes_missing:
  description: The prefixes of O(expect_routes) without a route in BIRD's table.
  returned: success
  type: list
  elements: str
  sample: [192.168.10.64/26]
version:
  description: BIRD version.
  returned: success
  type: str
  sample: 2.0.12
router_id:
  description: BIRD's router ID.
  returned: success
  type: str
  sample: 198.18.0.1
server_time:
  description: BIRD's clock when the status was read (BIRD's own format, local time).
  returned: success
  type: str
last_reboot:
  description: When BIRD was started.
  returned: success
  type: str
last_reconfiguration:
  description: When BIRD last loaded its configuration.
  returned: success
  type: str
sessions:
  description: One entry per BGP protocol, in BIRD's order.
  returned: success
  type: list
  elements: dict
  contains:
    name: {description: BIRD protocol name., type: str}
    peer_ip: {description: Neighbor address (null if BIRD did not report it)., type: str}
    peer_as: {description: Neighbor AS., type: int}
    peer_router_id: {description: Neighbor's router ID once known., type: str}
    state: {description: "BGP state: Established, Active, Connect, OpenSent, OpenConfirm, Idle.", type: str}
    protocol_state: {description: "BIRD protocol state: up, start, down.", type: str}
    established: {description: Whether the session is Established., type: bool}
    since: {description: Time of the last state change as BIRD prints it., type: str}
    uptime_seconds: {description: Seconds the session has been established (null when not)., type: float}
    info: {description: BIRD's info column (state and last error)., type: str}
    session: {description: "BIRD's session kind, e.g. 'internal route-reflector AS4'.", type: str}
    rr_client: {description: The peer is a route-reflector client of this daemon., type: bool}
    last_error: {description: Last error BIRD recorded for this session., type: str}
    routes_imported: {description: Routes imported from this peer (all channels)., type: int}
    routes_exported: {description: Routes exported to this peer (all channels)., type: int}
    routes_preferred: {description: Imported routes that are the best route., type: int}
    channels: {description: Per channel (BIRD 2) route counts; BIRD 1.6 reports one channel C(default)., type: dict}
  sample:
    - name: n1
      peer_ip: 198.18.0.2
      peer_as: 64512
      state: Established
      established: true
      since: "12:55:44.307"
      uptime_seconds: 7.6
      rr_client: true
      routes_imported: 1
      routes_exported: 1
sessions_total:
  description: Number of BGP sessions configured.
  returned: success
  type: int
sessions_established:
  description: Number of BGP sessions in state Established.
  returned: success
  type: int
not_established:
  description: Names of the BGP sessions that are not Established.
  returned: success
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubescale.calico.plugins.module_utils.bird import (
    DEFAULT_SOCKETS,
    BirdError,
    bgp_status,
    find_socket,
    not_running,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path"},
            "sockets": {"type": "list", "elements": "path"},
            "missing_ok": {"type": "bool", "default": False},
            "expect_established": {"type": "bool", "default": False},
            "expect_routes": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "float", "default": 10.0},
        },
        mutually_exclusive=[("socket", "sockets")],
        supports_check_mode=True,
    )
    params = module.params
    candidates = [params["socket"]] if params["socket"] else params["sockets"] or list(DEFAULT_SOCKETS)
    path = find_socket(candidates)
    if params["missing_ok"] and not any(os.path.lexists(c) for c in candidates):
        module.exit_json(changed=False, **not_running())
    try:
        result = bgp_status(path, params["timeout"], expect_routes=params["expect_routes"])
    except BirdError as exc:
        module.fail_json(msg=str(exc), socket=path)
    if module.params["expect_established"] and result["not_established"]:
        down = ", ".join(
            f"{s['name']} ({s['peer_ip']}: {s['state']}{'; ' + s['last_error'] if s['last_error'] else ''})"
            for s in result["sessions"] if not s["established"]
        )
        module.fail_json(msg=f"BGP sessions not established: {down}", **result)
    if result["routes_missing"]:
        module.fail_json(msg=f"{len(result['routes_missing'])} of {len(params['expect_routes'])} expected routes "
                             f"not in BIRD's table: {', '.join(result['routes_missing'][:20])}"
                             f"{' ...' if len(result['routes_missing']) > 20 else ''}", **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
