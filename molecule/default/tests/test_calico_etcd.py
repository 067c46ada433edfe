"""The dedicated Calico etcd on the management hosts is healthy and requires TLS with client certificates."""

from __future__ import annotations

from conftest import etcdctl

testinfra_hosts = ["ansible://management"]


def test_service_is_active(host):
    assert host.service("calico-etcd").is_running
    assert host.service("calico-etcd").is_enabled


def test_every_member_is_healthy(host):
    out = etcdctl(host, "endpoint health --cluster -w json").stdout
    import json

    health = json.loads(out)
    assert len(health) == 3
    assert all(member["health"] for member in health), health


def test_plain_http_is_refused(host):
    ip = host.ansible.get_variables()["ansible_host"]
    res = host.run(f"curl -sS -m 5 http://{ip}:2389/version")
    assert res.rc != 0 or "version" not in res.stdout, res.stdout


def test_tls_without_a_client_certificate_is_refused(host):
    ip = host.ansible.get_variables()["ansible_host"]
    res = host.run(f"curl -sS -m 5 --cacert /etc/calico-etcd/pki/ca.crt https://{ip}:2389/version")
    assert res.rc != 0, f"a client without a certificate was served: {res.stdout}"
    ok = host.run(f"curl -sS -m 5 --cacert /etc/calico-etcd/pki/ca.crt --cert /etc/calico-etcd/pki/calico.crt "
                  f"--key /etc/calico-etcd/pki/calico.key https://{ip}:2389/version")
    assert ok.rc == 0 and "etcdserver" in ok.stdout, ok.stderr
