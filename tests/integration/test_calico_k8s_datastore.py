"""calico_k8s_datastore against a Kubernetes API STAND-IN.

kube-apiserver cannot run on the test machines, so these tests use tests/integration/fake_k8s_api.py:
a small HTTPS server on 127.0.0.1 (certificate from a test CA) that serves ConfigMaps, Secrets and a
DaemonSet with resourceVersion, 409 conflicts, bearer-token auth and a DaemonSet status that rolls
forward like the controller's. It is a stand-in, not Kubernetes. The module runs through
ansible-playbook (run_module), so argument parsing, check mode and diff mode are Ansible's own.
"""

from __future__ import annotations

import base64

import pytest
from ansible_runner import run_module
from fake_k8s_api import FakeKubeAPI
from pki import TestPKI

NS = "kube-system"
TOKEN = "test-token-123"
ENDPOINTS = ["https://10.213.0.21:2389", "https://10.213.0.22:2389"]


@pytest.fixture
def pki(tmp_path):
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def api(pki):
    cert, key = pki.issue("apiserver", server=True, client=False)
    server = FakeKubeAPI(str(cert), str(key), token=TOKEN).start()
    server.seed_calico(pods=3)
    yield server
    server.stop()


@pytest.fixture
def etcd_files(tmp_path):
    files = {}
    for name, content in (("ca", b"CA-PEM\n"), ("cert", b"CERT-PEM\n"), ("key", b"KEY-PEM-SECRET\n")):
        path = tmp_path / f"etcd-{name}.pem"
        path.write_bytes(content)
        files[name] = str(path)
    return files


def _args(api, pki, etcd_files, **extra):
    args = {"host": api.url, "api_key": TOKEN, "ca_cert": str(pki.ca_cert), "etcd_endpoints": ENDPOINTS,
            "etcd_ca_cert": etcd_files["ca"], "etcd_client_cert": etcd_files["cert"],
            "etcd_client_key": etcd_files["key"], "wait_sleep": 0.05, "wait_timeout": 30}
    args.update(extra)
    return args


def _writes(api):
    return [r for r in api.requests if r[0] in ("PUT", "PATCH", "POST")]


def test_check_mode_reports_the_change_and_writes_nothing(api, pki, etcd_files):
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files), check=True, diff=True)
    assert not res["failed"], res.get("msg")
    assert res["changed"] is True
    assert _writes(api) == []
    assert any("would restart DaemonSet kube-system/calico-node" in a for a in res["actions"])
    assert res["diff"]["before"]["configmap"]["etcd_endpoints"] == "http://127.0.0.1:2379"
    assert res["diff"]["after"]["configmap"]["etcd_endpoints"] == ",".join(ENDPOINTS)
    # secret values are never shown, only fingerprints
    assert "KEY-PEM-SECRET" not in res["_stdout"]
    assert res["diff"]["after"]["secret"]["etcd-key"].startswith("<15 bytes, sha256 ")
    assert api.get("ConfigMap", NS, "calico-config")["data"]["etcd_endpoints"] == "http://127.0.0.1:2379"


def test_apply_sets_config_secret_restarts_and_waits_then_rerun_is_a_noop(api, pki, etcd_files):
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files))
    assert not res["failed"], res.get("msg")
    assert res["changed"] is True
    cm = api.get("ConfigMap", NS, "calico-config")["data"]
    assert cm["etcd_endpoints"] == ",".join(ENDPOINTS)
    assert cm["etcd_ca"] == "/calico-secrets/etcd-ca"
    assert cm["etcd_key"] == "/calico-secrets/etcd-key"
    assert cm["calico_backend"] == "bird"  # keys the module does not manage are kept
    sec = api.get("Secret", NS, "calico-etcd-secrets")["data"]
    assert base64.b64decode(sec["etcd-key"]) == b"KEY-PEM-SECRET\n"
    ds = api.get("DaemonSet", NS, "calico-node")
    ann = ds["spec"]["template"]["metadata"]["annotations"]
    assert "kubescale.io/restartedAt" in ann
    assert ann["kubescale.io/calico-datastore-hash"] == res["config_hash"]
    assert ds["metadata"]["generation"] == 2
    # the module waited for the rollout: the stand-in advanced one pod per GET
    assert res["rollout"] == {"generation": 2, "observed_generation": 2, "desired": 3, "updated": 3,
                              "available": 3, "ready": 3, "complete": True}
    assert ("PATCH", "/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node") in api.requests

    api.requests.clear()
    again = run_module("calico_k8s_datastore", _args(api, pki, etcd_files), diff=True)
    assert not again["failed"], again.get("msg")
    assert again["changed"] is False
    assert _writes(api) == []
    assert api.get("DaemonSet", NS, "calico-node")["metadata"]["generation"] == 2


def test_a_run_that_died_before_the_restart_restarts_on_the_next_run(api, pki, etcd_files):
    first = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, restart=False))
    assert first["changed"] is True
    assert api.get("DaemonSet", NS, "calico-node")["metadata"]["generation"] == 1
    second = run_module("calico_k8s_datastore", _args(api, pki, etcd_files))
    assert second["changed"] is True
    assert second["objects"]["configmap"]["changed"] is False
    assert second["objects"]["daemonset"]["changed"] is True
    assert api.get("DaemonSet", NS, "calico-node")["metadata"]["generation"] == 2


def test_a_concurrent_update_is_reread_and_retried(api, pki, etcd_files):
    api.conflict_next_put = 1
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, restart=False))
    assert not res["failed"], res.get("msg")
    puts = [r for r in api.requests if r[0] == "PUT" and "configmaps" in r[1]]
    assert len(puts) == 2
    assert api.get("ConfigMap", NS, "calico-config")["data"]["etcd_endpoints"] == ",".join(ENDPOINTS)


def test_a_missing_secret_is_created(api, pki, etcd_files):
    del api.objects[("Secret", NS, "calico-etcd-secrets")]
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, restart=False))
    assert not res["failed"], res.get("msg")
    assert ("POST", "/api/v1/namespaces/kube-system/secrets") in api.requests
    assert set(api.get("Secret", NS, "calico-etcd-secrets")["data"]) == {"etcd-ca", "etcd-cert", "etcd-key"}


def test_wrong_token_is_a_clear_error(api, pki, etcd_files):
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, api_key="wrong"))
    assert res["failed"]
    assert "read DaemonSet kube-system/calico-node" in res["msg"] and "401" in res["msg"]


def test_an_untrusted_server_certificate_is_refused(api, tmp_path, etcd_files):
    other = TestPKI(tmp_path / "other", ca_name="other-ca")
    res = run_module("calico_k8s_datastore", _args(api, other, etcd_files))
    assert res["failed"]
    assert "cannot reach the Kubernetes API" in res["msg"] and "CERTIFICATE_VERIFY_FAILED" in res["msg"]
    assert _writes(api) == []


def test_bad_input_is_refused_before_any_request(api, pki, etcd_files, tmp_path):
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, etcd_endpoints=["10.0.0.1:2379"]))
    assert res["failed"]
    assert res["msg"].startswith("etcd_endpoints: '10.0.0.1:2379' must be an http:// or https:// URL")
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, etcd_ca_cert=str(tmp_path / "nope.pem")))
    assert res["failed"]
    assert res["msg"].startswith("etcd_ca: cannot read")
    assert api.requests == []


def test_a_missing_daemonset_is_a_clear_error(api, pki, etcd_files):
    del api.objects[("DaemonSet", NS, "calico-node")]
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files))
    assert res["failed"]
    assert "daemonset: DaemonSet kube-system/calico-node not found" in res["msg"]
    assert _writes(api) == []
