"""The master role's calico-node rollout wait, through ansible-playbook, against the Kubernetes API STAND-IN.

tests/integration/fake_k8s_api.py replaces calico-node pods maxUnavailable at a time, one batch per
tick (it is a stand-in, not Kubernetes). The role waits in slices and prints a progress line per
slice; a spent budget says where the rollout stands; a rerun resumes waiting and restarts nothing.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from fake_k8s_api import FakeKubeAPI
from pki import TestPKI
from playbook_run import run_playbook

NS = "kube-system"
TOKEN = "role-test-token"
PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: kubescale.calico.master
        tasks_from: datastore
"""


@pytest.fixture
def api(tmp_path):
    pki = TestPKI(tmp_path / "pki")
    cert, key = pki.issue("apiserver", server=True, client=False)
    server = FakeKubeAPI(str(cert), str(key), token=TOKEN).start()
    server.ca = str(pki.ca_cert)
    server.seed_calico(pods=300, max_unavailable=1)  # as installed: one pod at a time
    yield server
    server.stop()


@pytest.fixture
def play(tmp_path, api):
    pki_dir = tmp_path / "controller-pki"
    pki_dir.mkdir()
    for name in ("ca.crt", "calico.crt", "calico.key"):
        (pki_dir / name).write_text(f"{name} PEM\n")
    path = tmp_path / "play.yml"
    path.write_text(PLAY)
    settings = {"master_k8s_host": api.url, "master_k8s_api_key": TOKEN, "master_k8s_ca_cert": api.ca,
                "calico_datastore_endpoints": ["https://10.213.0.21:2389"], "calico_controller_pki_dir": str(pki_dir),
                "master_k8s_max_unavailable": "10%", "master_k8s_rollout_batch_seconds": 0.2,
                "master_k8s_wait_slice": 1, "master_k8s_wait_sleep": 0.1}
    return lambda **extra: run_playbook(path, extra_vars={**settings, **extra}, timeout=600)


def _go_on_after_first_look(api, deadline: float = 300) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if sum(1 for m, p in list(api.requests) if m == "GET" and "/daemonsets/" in p) >= 2:
            api.set_rollout_tick(0.2)  # 10 batches: 2 s
            return
        time.sleep(0.01)


def _progress(stdout: str) -> list[str]:
    return re.findall(r'"msg": "(DaemonSet kube-system/calico-node: updated [^"]*)"', stdout)


def test_a_spent_budget_says_where_the_rollout_stands_and_the_rerun_resumes(api, play):
    api.set_rollout_tick(None)  # Kubernetes stalls: the new pods never get ready
    first = play()
    out = first.stdout
    assert first.returncode != 0, out
    # 300 pods, 10% = 30 at a time: 10 batches x 0.2 s = 2 s, waited in 2 slices of 1 s, a line each
    lines = _progress(out)
    assert len(lines) == 2, out
    assert all(line.startswith("DaemonSet kube-system/calico-node: updated 0/300, available 270/300") for line in lines)
    assert "(slice 1 of 2)" in lines[0] and "(slice 2 of 2)" in lines[1]
    assert "calico-node rollout not finished within its budget of 2 s (2 slices of 1 s)" in out
    assert "Kubernetes continues the rollout by itself; rerun the play to resume waiting" in out
    ds = api.get("DaemonSet", NS, "calico-node")
    assert ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "10%"
    assert len([r for r in api.requests if r[0] == "PATCH"]) == 1

    # the rerun: Kubernetes goes on once the role has seen the rollout unfinished (its first call
    # reads the DaemonSet twice), so the rerun must wait for it
    api.requests.clear()
    watcher = threading.Thread(target=_go_on_after_first_look, args=(api,), daemon=True)
    watcher.start()
    again = play(master_k8s_rollout_batch_seconds=10)
    watcher.join(timeout=1)
    assert again.returncode == 0, again.stdout
    assert [r for r in api.requests if r[0] in ("PATCH", "PUT", "POST")] == []  # nothing restarted
    assert _progress(again.stdout)[-1].startswith("DaemonSet kube-system/calico-node: updated 300/300, "
                                                  "available 300/300")
    assert api.get("DaemonSet", NS, "calico-node")["metadata"]["generation"] == ds["metadata"]["generation"]


def test_a_finished_rollout_is_not_waited_for(api, play):
    api.set_rollout_tick(0)  # every batch at once
    first = play()
    assert first.returncode == 0, first.stdout
    assert "Wait for the calico-node rollout, seconds at most" not in first.stdout
