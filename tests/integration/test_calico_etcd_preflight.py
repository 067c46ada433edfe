"""Bad input to roles/calico_etcd is caught by its preflight phase, before anything is written.

Runs the role's preflight.yml with ansible-playbook on the local connection (inventory hosts that
all point at this machine); no etcd and no test hosts are needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

PLAY = """
- hosts: management
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: kubescale.calico.calico_etcd
        tasks_from: preflight.yml
"""


def run_preflight(tmp_path: Path, hosts: dict[str, dict], extra: dict | None = None) -> subprocess.CompletedProcess:
    base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "ansible_default_ipv4": {"address": "127.0.0.1"}}
    inv = {"all": {"children": {"management": {"hosts": {n: {**base, **v} for n, v in hosts.items()}}}}}
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(inv))
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({
        "calico_etcd_root_password": "r", "calico_etcd_calico_password": "c", **(extra or {})}))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".lab" / "collections"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(
        ["ansible-playbook", "-i", str(tmp_path / "inv.yml"), "-e", f"@{tmp_path / 'vars.yml'}",
         str(tmp_path / "play.yml")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


def three(**per_host) -> dict[str, dict]:
    hosts = {f"m{i}": {"calico_etcd_address": f"127.0.0.{10 + i}"} for i in (1, 2, 3)}
    for name, values in per_host.items():
        hosts[name].update(values)
    return hosts


def test_valid_three_members_pass_without_warning(tmp_path):
    res = run_preflight(tmp_path, three())
    assert res.returncode == 0, res.stdout
    assert "WARNING: calico_etcd" not in res.stdout


def test_member_name_clash_fails_naming_the_field(tmp_path):
    res = run_preflight(tmp_path, three(m2={"calico_etcd_member_name": "m1"}))
    assert res.returncode != 0
    assert "member name clash" in res.stdout and "calico_etcd_member_name" in res.stdout


def test_even_member_count_warns(tmp_path):
    hosts = three()
    hosts["m4"] = {"calico_etcd_address": "127.0.0.14"}
    res = run_preflight(tmp_path, hosts)
    assert res.returncode == 0, res.stdout
    assert "WARNING: calico_etcd_members: 4 members is an even number" in res.stdout


def test_single_member_in_production_warns(tmp_path):
    res = run_preflight(tmp_path, {"m1": {"calico_etcd_address": "127.0.0.11"}}, {"calico_etcd_production": True})
    assert res.returncode == 0, res.stdout
    assert "WARNING: calico_etcd_production is true but calico_etcd_members has one member" in res.stdout


def test_single_member_outside_production_does_not_warn(tmp_path):
    res = run_preflight(tmp_path, {"m1": {"calico_etcd_address": "127.0.0.11"}})
    assert res.returncode == 0, res.stdout
    assert "WARNING: calico_etcd" not in res.stdout


def test_missing_user_certificate_fails_naming_the_variable(tmp_path):
    present = tmp_path / "present.pem"
    present.write_text("x")
    paths = {k: str(present) for k in (
        "calico_etcd_ca_cert_src", "calico_etcd_member_cert_src", "calico_etcd_member_key_src",
        "calico_etcd_admin_cert_src", "calico_etcd_admin_key_src", "calico_etcd_calico_cert_src",
        "calico_etcd_calico_key_src")}
    paths["calico_etcd_member_key_src"] = str(tmp_path / "missing.key")
    res = run_preflight(tmp_path, three(), {"calico_etcd_pki_mode": "provided", **paths})
    assert res.returncode != 0
    assert "calico_etcd_member_key_src: certificate file" in res.stdout and "missing.key" in res.stdout


def test_missing_passwords_fail_when_auth_is_on(tmp_path):
    res = run_preflight(tmp_path, three(), {"calico_etcd_root_password": ""})
    assert res.returncode != 0
    assert "calico_etcd_root_password and calico_etcd_calico_password: required" in res.stdout


@pytest.mark.parametrize(("var", "value", "needle"), [
    ("calico_etcd_peer_port", 2389, "must be different"),
    ("calico_etcd_pki_mode", "vault", "pki_mode must be generate or provided"),
])
def test_bad_settings_fail_before_any_write(tmp_path, var, value, needle):
    res = run_preflight(tmp_path, three(), {var: value})
    assert res.returncode != 0
    assert needle in res.stdout
