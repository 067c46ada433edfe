"""pki_certificate through Ansible: a foreign CA key is refused, check mode reports file attribute fixes."""

from __future__ import annotations

import os
import pwd
import stat

import pytest
from playbook_run import run_module, run_modules


def _ca(tmp_path, name: str) -> dict:
    return {"path": str(tmp_path / f"{name}.crt"), "key_path": str(tmp_path / f"{name}.key"), "kind": "ca",
            "common_name": "etcd-ca", "days": 30, "renew_before_days": 1}


def _server(tmp_path, ca_crt: str, ca_key: str, **kw) -> dict:
    return {"path": str(tmp_path / "s.crt"), "key_path": str(tmp_path / "s.key"), "kind": "server",
            "common_name": "etcd-1", "subject_alt_names": ["IP:127.0.0.1"], "ca_path": ca_crt,
            "ca_key_path": ca_key, "days": 30, "renew_before_days": 1, **kw}


def test_ca_key_not_matching_the_ca_certificate_is_refused(tmp_path):
    ca, other = _ca(tmp_path, "ca"), _ca(tmp_path, "other")
    made = run_modules([("pki_certificate", ca), ("pki_certificate", other)])
    assert all(r["changed"] and not r.get("failed") for r in made), made
    res = run_module("pki_certificate", _server(tmp_path, ca["path"], other["key_path"]))
    assert res["failed"]
    assert res["msg"] == (f"ca_key_path: {other['key_path']} is not the private key of the CA certificate "
                          f"{ca['path']} (their public keys differ); nothing was written")
    assert not (tmp_path / "s.crt").exists() and not (tmp_path / "s.key").exists()
    good = run_modules([("pki_certificate", _server(tmp_path, ca["path"], ca["key_path"]))] * 2)
    assert good[0]["changed"] and good[1]["changed"] is False  # the right pair: issued once, then kept


@pytest.mark.skipif(os.geteuid() != 0, reason="changing the owner needs root")
def test_check_mode_reports_mode_and_owner_fixes_a_real_run_makes(tmp_path):
    ca = _ca(tmp_path, "ca")
    server = _server(tmp_path, ca["path"], ca["key_path"])
    assert not run_modules([("pki_certificate", ca), ("pki_certificate", server)])[1].get("failed")
    key, crt = tmp_path / "s.key", tmp_path / "s.crt"
    os.chmod(key, 0o644)
    nobody = pwd.getpwnam("nobody").pw_uid
    wanted = {**server, "owner": "nobody"}

    dry = run_module("pki_certificate", wanted, check=True)
    assert not dry.get("failed"), dry.get("msg")
    assert dry["changed"] is True
    assert f"set mode of {key} to 0600 (was 0644)" in dry["actions"]
    assert f"set owner of {crt} to {nobody} (was 0)" in dry["actions"]
    assert f"set owner of {key} to {nobody} (was 0)" in dry["actions"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o644 and crt.stat().st_uid == 0  # nothing changed

    real = run_module("pki_certificate", wanted)
    assert real["changed"] and sorted(real["actions"]) == sorted(dry["actions"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and crt.stat().st_uid == key.stat().st_uid == nobody
    again = run_modules([("pki_certificate", wanted)])[0]
    assert again["changed"] is False and again["actions"] == []
    assert run_module("pki_certificate", wanted, check=True)["changed"] is False
