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
from fake_k8s_api import FakeKubeAPI
from pki import TestPKI
from playbook_run import run_module, run_modules

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
            "etcd_client_key": etcd_files["key"], "wait_sleep": 0.05, "rollout_batch_seconds": 10}
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
    # the module waited for the rollout: the stand-in replaced one pod (its maxUnavailable) per tick
    assert {k: res["rollout"][k] for k in ("generation", "observed_generation", "desired", "updated", "available",
                                           "ready", "complete", "max_unavailable", "budget_batches")} == {
        "generation": 2, "observed_generation": 2, "desired": 3, "updated": 3, "available": 3, "ready": 3,
        "complete": True, "max_unavailable": 1, "budget_batches": 3}
    assert res["progress"][-1].startswith("DaemonSet kube-system/calico-node: updated 3/3, available 3/3")
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


# ------------------------------------------------------------ rollout sized by the DaemonSet's strategy


def _big(api, pods: int, max_unavailable, tick: float | None) -> None:
    """calico-node with hundreds of pods, rolled max_unavailable at a time, one batch per tick."""
    del api.objects[("DaemonSet", NS, "calico-node")]
    api.seed_calico(pods=pods, max_unavailable=max_unavailable)
    api.set_rollout_tick(tick)


def _patches(api):
    return [r for r in api.requests if r[0] == "PATCH"]


def _counts(line: str) -> tuple[int, int]:
    """(updated, available) of a progress line."""
    updated = int(line.split("updated ")[1].split("/")[0])
    available = int(line.split("available ")[1].split("/")[0])
    return updated, available


@pytest.mark.parametrize(("pods", "option", "batch"), [(600, "10%", 60), (300, "25", 25)])
def test_the_strategy_is_set_with_the_restart_and_sizes_the_budget(api, pki, etcd_files, pods, option, batch):
    _big(api, pods, 1, tick=0.15)
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, max_unavailable=option,
                                                   rollout_batch_seconds=7))
    assert not res["failed"], res.get("msg")
    assert len(_patches(api)) == 1  # strategy and restart in one patch
    ds = api.get("DaemonSet", NS, "calico-node")
    want = option if option.endswith("%") else int(option)
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": want}}
    batches = -(-pods // batch)
    roll = res["rollout"]
    assert (roll["max_unavailable"], roll["budget_batches"], roll["budget"]) == (batch, batches, batches * 7)
    assert roll["complete"] and roll["updated"] == pods
    assert any(f"maxUnavailable {want}" in a for a in res["actions"])
    # progress as it came: never more than one batch unavailable, updated only grows, ends complete
    counts = [_counts(line) for line in res["progress"]]
    assert any(u < pods for u, _unused in counts), res["progress"]
    assert all(a >= pods - batch for _unused, a in counts)
    assert [u for u, _unused in counts] == sorted(u for u, _unused in counts)
    assert counts[-1] == (pods, pods)
    assert "ETA" in res["progress"][0]

    api.requests.clear()
    again = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, max_unavailable=option))
    assert not again["failed"] and again["changed"] is False
    assert _writes(api) == []


def test_a_timeout_says_where_the_rollout_stands_and_a_rerun_resumes(api, pki, etcd_files):
    _big(api, 400, 1, tick=0.25)  # 4 pods a second: minutes for 400
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, max_unavailable="1", wait_timeout=2))
    assert res["failed"]
    msg = res["msg"]
    assert msg.startswith("wait for DaemonSet kube-system/calico-node: rollout not finished within 2s (wait_timeout)")
    stood = res["rollout"]
    assert 0 < stood["updated"] < 400 and stood["desired"] == 400
    assert f"updated {stood['updated']}/400, available {stood['available']}/400" in msg
    assert "elapsed 2s" in msg or "elapsed 3s" in msg
    assert "ETA " in msg and stood["eta"] > 0
    assert "Kubernetes continues the rollout by itself; rerun to resume waiting (nothing is restarted again)" in msg
    assert res["progress"] and _counts(res["progress"][-1])[0] <= stood["updated"]
    assert len(_patches(api)) == 1
    generation = api.get("DaemonSet", NS, "calico-node")["metadata"]["generation"]

    # Kubernetes goes on by itself; held still here so the figures can be compared exactly
    api.set_rollout_tick(None)
    now = api.get("DaemonSet", NS, "calico-node")["status"]["updatedNumberScheduled"]
    assert now >= stood["updated"]
    api.requests.clear()
    look = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, max_unavailable="1", wait=False))
    assert not look["failed"] and look["changed"] is False
    assert look["rollout"]["updated"] == now  # where it stands, not restarted from 0
    assert look["rollout"]["budget_batches"] == 400 - now  # a budget for the pods left, not for all 400
    assert look["rollout"]["budget"] == (400 - now) * 10

    # the rerun writes nothing and waits until the rollout completes
    api.set_rollout_tick(0.01)
    again = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, max_unavailable="1"))
    assert not again["failed"], again.get("msg")
    assert again["changed"] is False and again["rollout"]["complete"]
    assert _writes(api) == []
    assert api.get("DaemonSet", NS, "calico-node")["metadata"]["generation"] == generation
    assert _counts(again["progress"][0])[0] >= now


def test_a_derived_budget_runs_out_with_batches_in_the_message(api, pki, etcd_files):
    _big(api, 300, "10%", tick=5)
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, rollout_batch_seconds=0.1))
    assert res["failed"]
    # 300 pods, 10% = 30 at a time: 10 batches x 0.1 s
    assert "rollout not finished within 1s (10 batch(es) of 30 x 0.1s)" in res["msg"]
    assert res["rollout"]["budget"] == pytest.approx(1.0)


def test_a_slow_large_rollout_gets_a_recommendation(api, pki, etcd_files):
    _big(api, 500, 1, tick=None)  # held still: the figures right after the restart
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files, wait=False))
    assert not res["failed"], res.get("msg")
    assert res["rollout"]["budget"] == 500 * 10  # what a wait would get: 500 batches x 10 s
    assert any("set max_unavailable to a percentage" in w for w in res.get("warnings", []))
    assert "500 batches" in res["_stdout"]


def test_an_on_delete_daemonset_is_refused_before_any_write(api, pki, etcd_files):
    api.objects[("DaemonSet", NS, "calico-node")]["spec"]["updateStrategy"] = {"type": "OnDelete"}
    res = run_module("calico_k8s_datastore", _args(api, pki, etcd_files))
    assert res["failed"]
    assert "updateStrategy OnDelete" in res["msg"] and "set max_unavailable" in res["msg"]
    assert _writes(api) == []


def test_bad_rollout_options_are_refused_before_any_request(api, pki, etcd_files):
    calls = [("calico_k8s_datastore", _args(api, pki, etcd_files, **extra)) for extra in (
        {"max_unavailable": "0"}, {"max_unavailable": "ten"}, {"max_unavailable": "150%"},
        {"rollout_batch_seconds": 0}, {"wait_timeout": -1})]
    results = run_modules(calls)
    assert [r["msg"].split(":")[0] for r in results] == [
        "max_unavailable", "max_unavailable", "max_unavailable", "rollout_batch_seconds", "wait_timeout"]
    assert all(r["failed"] and "\n" not in r["msg"] for r in results)
    assert api.requests == []
