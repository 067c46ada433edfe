#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: calico_datastore_migrate
short_description: Migrate Calico 2.x data (v1 model, etcd v2) to Calico v3 (etcd v3)
version_added: 0.1.0
description:
  - Does what C(calico-upgrade) does, in its phases, with its name conversions and refusals, and
    writes what C(calicoctl) would store (kind/apiVersion, uid/creationTimestamp, C(default.) policy names).
  - O(phase=validate) reads and converts the v1 data and reports; it never writes. It fails when it finds
    problems that would refuse O(phase=start) (listed in the message and in RV(problems)), unless
    O(fail_on_problems=false).
  - O(phase=start) refuses bad v1 data before any write, takes the migration lock in the target etcd,
    snapshots the target, sets the v1 C(Ready) flag to false (pausing Calico 2.x networking), converts the
    paused data, writes it (ClusterInformation C(datastoreReady=false)), and verifies it by re-reading.
  - O(phase=complete) sets ClusterInformation C(datastoreReady=true) (resumes networking for Calico v3 nodes).
  - O(phase=abort) sets the v1 C(Ready) flag back to true; the v3 data is left in place. Like O(phase=start)
    and O(phase=complete) it takes the migration lock; while another run holds it, abort is refused if
    Calico 2.x is paused and only warns if it is not (nothing to undo yet). An unreachable target does not
    stop it; it then warns that the marker was not updated.
  - The lock key (C(/kubescale/calico-migration/lock)) names its holder by host and process ID.
  - C(changed) is true only when something was written; a rerun of O(phase=start) that finds every object
    in place writes nothing (not even the marker) and reports no change.
  - Resumable, unlike C(calico-upgrade). A run killed at any point is finished by running O(phase=start)
    again. A marker key in the target (C(/kubescale/calico-migration/state)) marks the partial output as
    this module's, and objects are reconciled by content (those already stored keep their uid and
    creationTimestamp).
  - The source (etcd v2 API, O(source)) and the target (etcd v3 API, the connection options) may be
    different clusters; the target is usually the dedicated Calico etcd.
author:
  - kubescale.calico developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.etcd_connection
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
    details: A dry run of the phase with the full report; nothing is written to either etcd.
  diff_mode:
    support: none
options:
  phase:
    description: The migration phase to run.
    type: str
    choices: [validate, start, complete, abort]
    required: true
  source:
    description: The etcd v2 API that holds the Calico 2.x data (etcd must run with C(--enable-v2=true)).
    type: dict
    suboptions:
      endpoints:
        description: v2 client URLs, tried in order.
        type: list
        elements: str
        default: ["http://127.0.0.1:2379"]
      ca_cert:
        description: CA bundle for the source's server certificates.
        type: path
      client_cert:
        description: Client certificate (with O(source.client_key)).
        type: path
      client_key:
        description: Key of O(source.client_cert).
        type: path
      user:
        description: Basic-auth user of the v2 API.
        type: str
      password:
        description: Password of O(source.user).
        type: str
      timeout:
        description: Seconds per request.
        type: float
        default: 10.0
  fail_on_problems:
    description:
      - With O(phase=validate), fail when the dry run finds problems that would refuse O(phase=start)
        (bad v1 data, a non-empty target, Calico 2.x paused by someone else).
      - Set to V(false) only to report them in RV(problems) and carry on.
    type: bool
    default: true
  allow_existing_v3_data:
    description:
      - Proceed when the target already holds keys under C(/calico/) that this module did not write
        (C(calico-upgrade --ignore-v3-data)). Migrated objects overwrite objects of the same name.
    type: bool
    default: false
  snapshot_dir:
    description:
      - Directory (created 0700) for the snapshot of the target taken before the first write.
      - Set to an empty string to skip the snapshot.
    type: path
    default: /var/backups/calico-migration
  settle_time:
    description: Seconds to wait after pausing Calico 2.x before the final read (calico-upgrade waits 15).
    type: float
    default: 15
  lock_ttl:
    description: TTL in seconds of the lock lease; a killed run releases the lock after this time.
    type: int
    default: 60
  batch_size:
    description:
      - Objects per store round (written in transactions of at most 128 operations).
      - Progress is reported after each round.
    type: int
    default: 500
  progress_file:
    description:
      - Append one JSON line per progress step (step, seconds, objects done/total, keys per second) to this file.
    type: path
  report_file:
    description: Write the full report (every converted name, error and filtered key) as JSON to this file (mode 0600).
    type: path
  report_limit:
    description: At most this many entries per list in the returned report (the file has them all).
    type: int
    default: 100
notes:
  - Kubernetes-backed objects are left to the v3 controllers as calico-upgrade does (policies
    C(knp.default.*), profiles C(k8s_ns.*) and C(openstack-sg-*), OpenStack workload endpoints);
    they are listed in RV(report) under C(filtered).
seealso:
  - module: kubescale.calico.etcd_v2_to_v3
"""

EXAMPLES = r"""
- name: Dry run with the full report
  kubescale.calico.calico_datastore_migrate:
    phase: validate
    source:
      endpoints: ["https://10.0.0.5:2379"]
      ca_cert: /etc/calico/certs/ca.pem
    endpoints: ["https://10.0.0.11:2389"]
    ca_cert: /etc/calico-etcd/ca.pem
    client_cert: /etc/calico-etcd/client.pem
    client_key: /etc/calico-etcd/client-key.pem
    report_file: /root/calico-migration-report.json
  register: dry

- name: Migrate (pauses Calico 2.x networking until the nodes run Calico v3)
  kubescale.calico.calico_datastore_migrate:
    phase: start
    source: "{{ dry.invocation.module_args.source }}"
    endpoints: ["https://10.0.0.11:2389"]
    progress_file: /var/log/calico-migration.progress
  register: migration

- name: After calico/node v3 runs everywhere, resume networking
  kubescale.calico.calico_datastore_migrate:
    phase: complete
    endpoints: ["https://10.0.0.11:2389"]
"""

RETURN = r"""
phase:
  description: The phase that ran.
  returned: always
  type: str
actions:
  description: What was done, in plain sentences.
  returned: when a phase wrote something
  type: list
  elements: str
summary:
  description: Objects converted per kind (v3 resources and IPAM keys), filtered and renamed counts.
  returned: validate and start
  type: dict
  sample: {"counts": {"Node": 1000, "WorkloadEndpoint": 20000}, "total": 43000, "filtered": 100, "renamed": 21000}
report:
  description:
    - converted_names, name_clashes, conversion_errors, validation_errors, filtered (each cut to O(report_limit),
      with a C(<list>_total) count) and counts per kind.
  returned: validate and start, and on refusal
  type: dict
snapshot:
  description: The snapshot of the target taken before the first write (path, size, sha256).
  returned: start
  type: dict
verification:
  description: The target re-read after writing; per-kind expected/found counts, mismatches, content hash.
  returned: start
  type: dict
problems:
  description:
    - Why O(phase=start) would be refused (validate only; the task fails on them unless O(fail_on_problems=false)).
  returned: validate
  type: list
  elements: str
would_write:
  description: Objects start would create, update or leave (validate and check mode).
  returned: validate
  type: dict
state:
  description: The migration marker stored in the target.
  returned: when present
  type: dict
rate:
  description:
    - How fast the start phase went, to estimate other migrations (see docs/performance.md) -
      v3 keys produced, seconds (settle time not counted), keys per second overall and while writing.
  returned: start, when it wrote or checked the data
  type: dict
  sample: {"keys": 44091, "seconds": 10.2, "keys_per_second": 4322.6, "write_keys_per_second": 9500.0}
progress:
  description: The progress steps with seconds since the start (write steps also with keys per second).
  returned: always
  type: list
  elements: dict
"""

import copy
import traceback

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import StoreError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.connection import client_from_module, etcd_module
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import (
    V2_CONNECTION_ARGSPEC,
    EtcdV2Error,
    client_from_params,
)
from ansible_collections.kubescale.calico.plugins.module_utils.migration.phases import (
    MigrationError,
    Options,
    Progress,
    check_options,
    run,
)


def main() -> None:
    module = etcd_module(dict(
        phase=dict(type="str", required=True, choices=["validate", "start", "complete", "abort"]),
        source=dict(type="dict", options=copy.deepcopy(V2_CONNECTION_ARGSPEC)),
        fail_on_problems=dict(type="bool", default=True),
        allow_existing_v3_data=dict(type="bool", default=False),
        snapshot_dir=dict(type="path", default="/var/backups/calico-migration"),
        settle_time=dict(type="float", default=15.0),
        lock_ttl=dict(type="int", default=60),
        batch_size=dict(type="int", default=500),
        progress_file=dict(type="path"),
        report_file=dict(type="path"),
        report_limit=dict(type="int", default=100),
    ), required_if=[["phase", "validate", ["source"]], ["phase", "start", ["source"]], ["phase", "abort", ["source"]]])
    p = module.params
    opts = Options(allow_existing_v3_data=p["allow_existing_v3_data"], snapshot_dir=p["snapshot_dir"] or None,
                   settle_time=p["settle_time"], lock_ttl=p["lock_ttl"], batch_size=p["batch_size"],
                   report_limit=p["report_limit"], report_file=p["report_file"], check_mode=module.check_mode,
                   fail_on_problems=p["fail_on_problems"])
    try:
        check_options(opts, p["progress_file"])
    except MigrationError as exc:
        module.fail_json(msg=str(exc))
    progress = Progress(path=p["progress_file"])
    target = client_from_module(module)
    try:
        source = client_from_params(p["source"]) if p["source"] else None
        result = run(p["phase"], source, target, opts, progress)
    except MigrationError as exc:
        extra = {"report": exc.report} if exc.report else {}
        extra.update(exc.extra)
        module.fail_json(msg=str(exc), progress=progress.events, **extra)
    except (EtcdError, EtcdV2Error, StoreError, ValidationError) as exc:
        module.fail_json(msg=str(exc), progress=progress.events)
    except OSError as exc:
        module.fail_json(msg=f"local file error: {exc}", exception=traceback.format_exc(), progress=progress.events)
    finally:
        target.close()
    result["progress"] = progress.events
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
