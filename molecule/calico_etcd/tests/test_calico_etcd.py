"""Behaviour of the dedicated Calico etcd on three real systemd-nspawn hosts (after converge and side effect).

Run by molecule's testinfra verifier against the labhosts inventory (group management).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

VARS = yaml.safe_load((Path(__file__).resolve().parent.parent / "inventory" / "vars.yml").read_text())["all"]["vars"]
PKI = "/etc/calico-etcd/pki"
CLIENT_PORT, PEER_PORT = 2389, 2390


def ip_of(host) -> str:
    return host.ansible.get_variables()["ansible_host"]


def etcdctl(host, args: str, env: dict[str, str] | None = None, check: bool = True):
    """etcdctl with the admin settings of /etc/calico-etcd/etcdctl.env, plus ``env`` overrides."""
    extra = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    cmd = f"set -a; . /etc/calico-etcd/etcdctl.env; set +a; env {extra} etcdctl {args}"
    result = host.run(cmd)
    if check:
        assert result.rc == 0, f"etcdctl {args}: {result.stderr}"
    return result


def as_calico_password() -> dict[str, str]:
    """Authenticate as the calico user by password (over TLS with the calico client certificate)."""
    return {"ETCDCTL_CERT": f"{PKI}/calico.crt", "ETCDCTL_KEY": f"{PKI}/calico.key",
            "ETCDCTL_USER": VARS.get("calico_etcd_calico_user", "calico"),
            "ETCDCTL_PASSWORD": VARS["calico_etcd_calico_password"]}


def test_service_is_active_and_enabled(host):
    svc = host.service("calico-etcd")
    assert svc.is_running
    assert svc.is_enabled


def test_listens_on_its_own_ports_beside_kubernetes_etcd_ports(host):
    ip = ip_of(host)
    assert host.socket(f"tcp://{ip}:{CLIENT_PORT}").is_listening
    assert host.socket(f"tcp://127.0.0.1:{CLIENT_PORT}").is_listening
    assert host.socket(f"tcp://{ip}:{PEER_PORT}").is_listening
    assert not host.socket("tcp://0.0.0.0:2379").is_listening


def test_plain_http_client_is_refused(host):
    out = host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' http://{ip_of(host)}:{CLIENT_PORT}/version")
    assert out.stdout.strip() != "200"  # Go's TLS server answers plain HTTP with 400


def test_tls_without_client_certificate_is_refused(host):
    out = host.run(f"curl -sS --cacert {PKI}/ca.crt https://{ip_of(host)}:{CLIENT_PORT}/version")
    assert out.rc != 0, out.stdout


def test_tls_with_client_certificate_is_served(host):
    out = host.run(f"curl -sS --cacert {PKI}/ca.crt --cert {PKI}/admin.crt --key {PKI}/admin.key "
                   f"https://{ip_of(host)}:{CLIENT_PORT}/version")
    assert out.rc == 0 and "etcdserver" in out.stdout


def test_keys_are_private(host):
    for name, owner in (("member.key", "etcd"), ("admin.key", "root"), ("calico.key", "root")):
        f = host.file(f"{PKI}/{name}")
        assert f.mode == 0o600 and f.user == owner, name


def test_all_three_members_healthy(host):
    health = etcdctl(host, "endpoint health --cluster -w json")
    entries = json.loads(health.stdout)
    assert len(entries) == 3 and all(e["health"] for e in entries), health.stdout
    members = json.loads(etcdctl(host, "member list -w json").stdout)["members"]
    assert sorted(m.get("name", "") for m in members) == ["etcd-1", "etcd-2", "etcd-3"]


@pytest.mark.parametrize("auth", ["password", "certificate"])
def test_calico_user_is_confined_to_calico_prefix(host, auth):
    env = as_calico_password() if auth == "password" else {
        "ETCDCTL_CERT": f"{PKI}/calico.crt", "ETCDCTL_KEY": f"{PKI}/calico.key"}
    ok = etcdctl(host, f"put /calico/x from-{auth}", env=env, check=False)
    assert ok.rc == 0, ok.stderr
    denied = etcdctl(host, f"put /registry/x from-{auth}", env=env, check=False)
    assert denied.rc != 0 and "permission denied" in denied.stderr
    denied_read = etcdctl(host, "get /registry/ --prefix --keys-only", env=env, check=False)
    assert denied_read.rc != 0 and "permission denied" in denied_read.stderr


def test_auth_is_enabled_unknown_user_refused(host):
    out = etcdctl(host, "get /calico/x", env={"ETCDCTL_USER": "nobody", "ETCDCTL_PASSWORD": "x"}, check=False)
    assert out.rc != 0 and "authentication failed" in out.stderr


def test_backup_timer_and_retention(host):
    timer = host.service("calico-etcd-backup.timer")
    assert timer.is_enabled and timer.is_running
    for _unused in range(VARS["calico_etcd_backup_keep"] + 1):
        run = host.run("systemctl start calico-etcd-backup.service")
        assert run.rc == 0, run.stderr
    snaps = host.run("ls -1 /var/backups/calico-etcd/").stdout.split()
    assert len([s for s in snaps if s.endswith(".db")]) == VARS["calico_etcd_backup_keep"], snaps
    latest = sorted(snaps)[-1]
    status = host.run(f"etcdctl snapshot status /var/backups/calico-etcd/{latest} -w json")
    assert status.rc == 0 and json.loads(status.stdout)["totalKey"] > 0


def test_side_effect_write_while_one_member_down_survived_replacement(host):
    """side_effect.yml wrote this key while etcd-3 was stopped, then replaced etcd-3 with an empty member."""
    out = etcdctl(host, "get /calico/side-effect/written-with-one-member-down --print-value-only")
    assert out.stdout.strip() == "yes"
