#!/usr/bin/python
# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: progress_wait
short_description: Wait for an async task and print one progress line per poll (done/total, rate, ETA)
version_added: 0.1.0
description:
  - "Waits for a job started with C(async) and C(poll: 0) (the registered result is O(job)). Every O(delay)
    seconds it asks for the job's status and reads the JSON-lines progress file the job writes
    (O(progress_file)), then prints one line such as
    C(migration: writing resources | 12000/44091 keys | 4310 keys/s | ETA 0:07 | 0:05 elapsed) (the count also
    shows a percentage)."
  - The lines are printed while the task runs, without the C(FAILED - RETRYING) lines of an
    C(until)/C(retries) loop over M(ansible.builtin.async_status).
  - The task's result is the job's module result, so a failed job fails this task with the module's
    own message. The job's status file is removed once it finished.
  - A job that already finished (the module ran synchronously, as it must in check mode, where
    Ansible refuses C(async)) is returned as it is, so a role can use one result either way.
  - Interrupting the playbook stops the waiting, not the job, which runs on in the background on the
    host and keeps writing its progress file.
  - Runs as an action plugin; the job status and the progress file are read on the host the task runs
    on (its C(delegate_to)), which must be the host that runs the job.
author:
  - kubescale.calico developers (@kubescale)
extends_documentation_fragment:
  - kubescale.calico.attributes
attributes:
  check_mode:
    support: full
    details: Nothing is changed by waiting; in check mode the job is usually a synchronous result, returned as it is.
  diff_mode:
    support: none
options:
  job:
    description: The registered result of the task started with C(async) and C(poll=0).
    type: dict
    required: true
  progress_file:
    description:
      - The JSON-lines progress file the job writes (for example the C(progress_file) of
        M(kubescale.calico.calico_datastore_migrate)). Without it the lines say only how long the job has run.
    type: path
  delay:
    description: Seconds between polls, so between progress lines.
    type: float
    default: 5
  timeout:
    description:
      - Give up waiting after this many seconds (the job goes on). V(0) waits as long as the job runs;
        the task's C(async) value already limits that.
    type: float
    default: 0
  label:
    description: The word each progress line starts with.
    type: str
    default: progress
seealso:
  - module: ansible.builtin.async_status
  - module: kubescale.calico.calico_datastore_migrate
"""

EXAMPLES = r"""
- name: Start the migration in the background
  kubescale.calico.calico_datastore_migrate:
    phase: start
    source:
      endpoints: ["https://10.0.0.5:2379"]
    endpoints: ["https://10.0.0.11:2389"]
    progress_file: /var/backups/calico-migration/progress.jsonl
  async: "{{ 0 if ansible_check_mode else 21600 }}"
  poll: 0
  register: migration_job

- name: Wait for it, a progress line every 5 seconds
  kubescale.calico.progress_wait:
    job: "{{ migration_job }}"
    progress_file: /var/backups/calico-migration/progress.jsonl
    delay: 5
    label: migration
  register: migration
"""

RETURN = r"""
msg:
  description: The job's message, when it has one (a failed job's error).
  returned: when the job returns one
  type: str
changed:
  description: Whether the job changed something, as the job's module says.
  returned: always
  type: bool
"""
