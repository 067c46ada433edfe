"""Role calico_defaults through ansible-playbook: the etcd endpoints clients use match what the certificates name.

Role calico_etcd issues each member's server certificate for ``calico_etcd_address`` (default: the address
of the default IPv4 route); clients must connect to that address, not to ``ansible_host``, or TLS fails on
a multi-homed or DNS-addressed host.
"""

from __future__ import annotations

import json

import yaml
from playbook_run import run_playbook

PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: kubescale.calico.calico_defaults
  tasks:
    - name: Write the endpoints
      ansible.builtin.copy:
        content: "{{ calico_etcd_endpoints | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
"""


def _endpoints(tmp_path, hosts: dict, group_vars: dict | None = None) -> list[str]:
    inventory = {"all": {"vars": group_vars or {}, "children": {"management": {"hosts": hosts}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(PLAY)
    out = tmp_path / "endpoints.json"
    proc = run_playbook(tmp_path / "play.yml", inventory=tmp_path / "hosts.yml", extra_vars={"out": str(out)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_endpoints_follow_the_address_the_certificate_names(tmp_path):
    hosts = {
        # DNS-addressed, facts gathered: the default route's address, as calico_etcd's certificate has it
        "etcd-a": {"ansible_host": "etcd-a.example.net", "ansible_default_ipv4": {"address": "10.0.0.11"}},
        # the inventory names the member address explicitly
        "etcd-b": {"ansible_host": "192.0.2.12", "calico_etcd_address": "10.0.0.12"},
        # role calico_etcd ran and published its URL: that wins
        "etcd-c": {"ansible_host": "192.0.2.13", "calico_etcd_client_url": "https://10.0.0.13:2389"},
        # nothing known but ansible_host
        "etcd-d": {"ansible_host": "10.0.0.14"},
    }
    assert _endpoints(tmp_path, hosts) == ["https://10.0.0.11:2389", "https://10.0.0.12:2389",
                                           "https://10.0.0.13:2389", "https://10.0.0.14:2389"]


def test_the_older_variable_still_wins(tmp_path):
    hosts = {"etcd-a": {"ansible_host": "10.0.0.11"}}
    assert _endpoints(tmp_path, hosts, {"calico_datastore_endpoints": ["https://lb.example.net:2389"]}) == [
        "https://lb.example.net:2389"]
