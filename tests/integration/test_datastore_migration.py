"""Calico v1 (etcd v2) → v3 (etcd v3) migration against two real etcd 3.4 processes.

The source is a separate etcd with the v2 API enabled (``v2_source``), the target is the shared
``etcd_single`` fixture; both run on loopback and are stopped by PID.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datagen import calico_v1_dataset as gen
from etcd_fixtures import make_server
from playbook_run import playbook_env, run_module, run_modules, run_playbook

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdError
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client, EtcdV2Error
from ansible_collections.kubescale.calico.plugins.module_utils.migration import phases as migration

DRIVER = Path(__file__).resolve().parent / "migrate_driver.py"
SMALL = {"hosts": 6, "workloads": 30, "namespaces": 3, "policies": 4, "host_endpoints": 2}


@pytest.fixture(scope="session")
def _v2_server(tmp_path_factory):
    server = make_server(tmp_path_factory.mktemp("v2src"), "v2src", enable_v2=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def v2_source(_v2_server):
    """A v2 client on the source etcd, with an empty /calico tree."""
    client = EtcdV2Client(_v2_server.endpoints)
    client.delete("/calico", recursive=True)
    client.delete("/other", recursive=True)
    return client


@pytest.fixture
def small_source(v2_source):
    gen.write(v2_source, gen.generate(**SMALL))
    return v2_source


def _opts(tmp_path, **kw) -> migration.Options:
    base = {"settle_time": 0, "snapshot_dir": str(tmp_path / "snaps"), "lock_ttl": 2, "batch_size": 20}
    base.update(kw)
    return migration.Options(**base)


def _dump_target(client) -> dict[str, bytes]:
    """Every /calico/ key of the target, with uid and creationTimestamp taken out of resources."""
    out = {}
    for kv in client.range("/calico/"):
        value = kv.value
        if kv.key.startswith("/calico/resources/"):
            obj = json.loads(value)
            assert obj["metadata"].pop("uid") and obj["metadata"].pop("creationTimestamp")
            value = json.dumps(obj).encode()
        out[kv.key] = value
    return out


def _driver(args: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), json.dumps(args)], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _wait_lock_free(client, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while client.get(migration.LOCK_KEY) is not None:
        assert time.monotonic() < deadline, "the killed run's lock did not expire"
        time.sleep(0.2)


def test_full_migration_writes_calicoctl_objects_and_verifies(small_source, etcd_single, tmp_path):
    before = small_source.read_prefix("/calico")
    target = etcd_single.client()
    result = migration.run("start", small_source, target, _opts(tmp_path), migration.Progress())
    assert result["changed"] and result["verification"]["ok"]
    counts = result["summary"]["counts"]
    assert counts["WorkloadEndpoint"] == 30 and counts["Node"] == 6 and counts["IPAMHandle"] == 36
    assert all(v["expected"] == v["found"] for v in result["verification"]["counts"].values())
    assert os.path.getsize(result["snapshot"]["path"]) == result["snapshot"]["size"] > 0
    assert oct(os.stat(result["snapshot"]["path"]).st_mode & 0o777) == "0o600"

    root = "/calico/resources/v3/projectcalico.org/"
    peer = json.loads(target.get(root + "bgppeers/10-0-0-1").value)
    assert peer["kind"] == "BGPPeer" and peer["apiVersion"] == "projectcalico.org/v3"
    assert peer["metadata"]["uid"] and peer["metadata"]["creationTimestamp"].endswith("Z")
    assert "resourceVersion" not in peer["metadata"]
    assert target.get(root + "bgppeers/fd00-0000-0000-0000-0000-0000-0000-0001") is not None
    assert target.get(root + "ippools/192-168-0-0-16") is not None
    assert target.get(root + "globalnetworkpolicies/default.allow-dns") is not None
    weps = [kv.key for kv in target.range(root + "workloadendpoints/")]
    assert len(weps) == 30 and all("-k8s-" in k and k.endswith("-eth0") for k in weps)
    wep = json.loads(target.get(weps[0]).value)
    assert wep["spec"]["profiles"] == [f"kns.{wep['metadata']['namespace']}"]
    ci = json.loads(target.get(root + "clusterinformations/default").value)
    assert ci["spec"]["datastoreReady"] is False and ci["spec"]["calicoVersion"] == gen.CALICO_VERSION
    assert target.get("/calico/ipam/v2/assignment/ipv4/block/192.168.0.0-26") is not None
    assert target.get("/calico/ipam/v2/host/worker-0005.example.net/ipv4/block/192.168.1.64-26") is not None

    after = small_source.read_prefix("/calico")
    assert after.pop("/calico/v1/Ready") == "false" and before.pop("/calico/v1/Ready") == "true"
    assert after == before  # the v2 source is unchanged apart from the Ready flag

    rev = etcd_single.revision()
    again = migration.run("start", small_source, target, _opts(tmp_path), migration.Progress())
    assert again["written"]["resources"]["created"] == again["written"]["resources"]["updated"] == 0
    assert max(kv.mod_revision for kv in target.range("/calico/")) <= rev  # no Calico key rewritten

    done = migration.run("complete", small_source, target, _opts(tmp_path), migration.Progress())
    assert done["changed"]
    assert json.loads(target.get(root + "clusterinformations/default").value)["spec"]["datastoreReady"] is True
    assert not migration.run("complete", small_source, target, _opts(tmp_path), migration.Progress())["changed"]
    aborted = migration.run("abort", small_source, target, _opts(tmp_path), migration.Progress())
    assert aborted["changed"] and small_source.get("/calico/v1/Ready").value == "true"


# Where to SIGKILL, as progress steps of a start run: after the lock, the snapshot, the marker, the
# pause, the first and the middle resource batch, the first IPAM batch, the prune and the verify.
KILL_STEPS = ["locked", "snapshot", "marker", "paused", "resources", "resources+", "ipam", "pruned", "verified"]


def _kill_points(steps: list[str]) -> list[int]:
    points = []
    for step in KILL_STEPS:
        if step == "resources+":
            batches = [i for i, s in enumerate(steps) if s == "resources"]
            points.append(batches[len(batches) // 2])
        else:
            points.append(steps.index(step))
    return points


def test_killed_migration_converges_to_the_uninterrupted_result(small_source, etcd_single, tmp_path):
    args = {"phase": "start", "source": small_source.endpoints, "target": etcd_single.endpoints,
            "options": {"settle_time": 0, "snapshot_dir": str(tmp_path / "snaps"), "lock_ttl": 2,
                        "batch_size": 20}}
    ref = _driver({**args, "progress_file": str(tmp_path / "ref.progress")})
    assert ref.returncode == 0, ref.stdout + ref.stderr
    steps = [json.loads(line)["step"] for line in (tmp_path / "ref.progress").read_text().splitlines()]
    assert steps[:5] == ["converted", "locked", "snapshot", "marker", "paused"] and steps[-1] == "done"
    points = _kill_points(steps)
    assert len(set(points)) == len(KILL_STEPS)
    reference = _dump_target(etcd_single.client())
    for point in points:
        etcd_single.wipe()
        small_source.set("/calico/v1/Ready", "true")
        killed = _driver({**args, "kill_at": point})
        assert killed.returncode == -signal.SIGKILL, f"kill at {point}: {killed.stdout}{killed.stderr}"
        _wait_lock_free(etcd_single.client())
        rerun = _driver(args)
        assert rerun.returncode == 0, f"rerun after kill at {point} ({steps[point]}): {rerun.stdout}"
        assert _dump_target(etcd_single.client()) == reference, f"kill at event {point} ({steps[point]})"


def test_rerun_keeps_uid_and_creation_timestamp(small_source, etcd_single, tmp_path):
    args = {"phase": "start", "source": small_source.endpoints, "target": etcd_single.endpoints,
            "options": {"settle_time": 0, "snapshot_dir": "", "lock_ttl": 2, "batch_size": 20}}
    assert _driver({**args, "kill_at_step": "resources"}).returncode == -signal.SIGKILL  # after the first batch
    target = etcd_single.client()
    first = {kv.key: json.loads(kv.value)["metadata"]["uid"] for kv in target.range("/calico/resources/")}
    assert first
    _wait_lock_free(target)
    assert _driver(args).returncode == 0
    after = {kv.key: json.loads(kv.value)["metadata"]["uid"] for kv in target.range("/calico/resources/")}
    assert all(after[k] == uid for k, uid in first.items())
    assert len(after) > len(first)


def test_second_concurrent_migration_is_refused_by_the_lock(small_source, etcd_single, tmp_path):
    args = {"phase": "start", "source": small_source.endpoints, "target": etcd_single.endpoints,
            "options": {"settle_time": 0, "snapshot_dir": "", "lock_ttl": 5}, "pause_at": 1, "pause_for": 60}
    first = subprocess.Popen([sys.executable, str(DRIVER), json.dumps(args)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "PAUSED"  # holds the lock now
        with pytest.raises(EtcdError, match=r"lock .* is held by calico_datastore_migrate on \S+ pid \d+"):
            migration.run("start", small_source, etcd_single.client(), _opts(tmp_path), migration.Progress())
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)


def test_non_empty_target_is_refused_unless_allowed(small_source, etcd_single, tmp_path):
    target = etcd_single.client()
    target.put("/calico/resources/v3/projectcalico.org/bgppeers/existing", b'{"kind":"BGPPeer"}')
    rev = etcd_single.revision()
    with pytest.raises(migration.MigrationError, match="already holds 1 keys under /calico/"):
        migration.run("start", small_source, target, _opts(tmp_path), migration.Progress())
    assert etcd_single.revision() == rev
    assert small_source.get("/calico/v1/Ready").value == "true"
    result = migration.run("start", small_source, target, _opts(tmp_path, allow_existing_v3_data=True),
                           migration.Progress())
    assert result["verification"]["ok"]
    assert target.get("/calico/resources/v3/projectcalico.org/bgppeers/existing") is not None  # not pruned


def test_malformed_v1_data_is_reported_and_nothing_is_written(small_source, etcd_single, tmp_path):
    bad = {
        "/calico/v1/ipam/v4/pool/10.0.0.0-8": "{not json",
        "/calico/v1/host/worker-0001/workload/k8s/no-namespace/endpoint/eth0": "{}",
        "/calico/v1/host/Worker-0002/metadata": "{}",  # clashes with worker-0002 after ConvertNodeName
        "/calico/bgp/v1/global/peer_v4/10.9.9.9": '{"ip":"10.9.9.9","as_num":"sixty-four"}',
        "/calico/v1/host/worker-0003/workload/k8s/ns.-pod-/endpoint/eth0": "{}",
    }
    for key, value in bad.items():
        small_source.set(key, value)
    source_before = small_source.read_prefix("/calico")
    rev = etcd_single.revision()
    report_file = tmp_path / "report.json"
    with pytest.raises(migration.MigrationError, match="cannot be migrated") as err:
        migration.run("start", small_source, etcd_single.client(), _opts(tmp_path, report_file=str(report_file)),
                      migration.Progress())
    report = err.value.report
    errs = {e["v1_key"]: e["cause"] for e in report["conversion_errors"]}
    assert "invalid JSON" in errs["/calico/v1/ipam/v4/pool/10.0.0.0-8"]
    assert "malformed k8s workload ID 'no-namespace'" in errs[
        "/calico/v1/host/worker-0001/workload/k8s/no-namespace/endpoint/eth0"]
    assert "not an AS number" in errs["/calico/bgp/v1/global/peer_v4/10.9.9.9"]
    assert "may not start or end" in errs["/calico/v1/host/worker-0003/workload/k8s/ns.-pod-/endpoint/eth0"]
    assert [(c["kind"], c["name"]) for c in report["name_clashes"]] == [("Node", "worker-0002")]
    assert json.loads(report_file.read_text())["conversion_errors_total"] == 4
    assert oct(report_file.stat().st_mode & 0o777) == "0o600"
    assert etcd_single.revision() == rev  # nothing written to the target
    assert small_source.read_prefix("/calico") == source_before  # nor to the source (Ready untouched)


def test_module_validate_and_check_mode_start_write_nothing(small_source, etcd_single, tmp_path):
    conn = {"source": {"endpoints": small_source.endpoints}, "endpoints": etcd_single.endpoints,
            "snapshot_dir": str(tmp_path / "snaps"), "settle_time": 0}
    rev = etcd_single.revision()
    res = run_module("calico_datastore_migrate", {**conn, "phase": "validate", "report_limit": 3})
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is False and res["problems"] == []
    assert res["would_write"]["create"] == res["summary"]["total"]
    assert len(res["report"]["converted_names"]) == 3 and res["report"]["converted_names_total"] > 3
    dry = run_module("calico_datastore_migrate", {**conn, "phase": "start"}, check=True)
    assert not dry.get("failed"), dry.get("msg")
    assert dry["changed"] is True
    assert etcd_single.revision() == rev
    assert small_source.get("/calico/v1/Ready").value == "true"
    assert not (tmp_path / "snaps").exists()
    real = run_module("calico_datastore_migrate", {**conn, "phase": "start",
                                                   "progress_file": str(tmp_path / "p.jsonl")})
    assert real["changed"] and real["verification"]["ok"], real.get("msg")
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == "done" and lines[-1]["keys"] == real["summary"]["total"]
    # the rate users size their migration window with: in the result, the actions and the progress lines
    assert real["rate"]["keys"] == real["summary"]["total"] and real["rate"]["seconds"] > 0
    assert real["rate"]["keys_per_second"] == lines[-1]["rate"] > 0 and real["rate"]["write_keys_per_second"] > 0
    assert any(a.startswith(f"migrated {real['summary']['total']} keys in ") and "keys/s" in a for a in real["actions"])
    writes = [e for e in lines if e["step"] in ("resources", "ipam")]
    assert writes and all(e["rate"] > 0 and e["done"] <= e["total"] for e in writes)
    bad = run_module("calico_datastore_migrate", {**conn, "phase": "start", "batch_size": 0})
    assert bad["failed"] and "batch_size" in bad["msg"]


def test_etcd_v2_to_v3_keeps_ttl_as_lease_drops_dirs_and_check_mode_writes_nothing(v2_source, etcd_single):
    v2_source.set("/other/a", "1")
    v2_source.set("/other/sub/b", "2")
    v2_source.set("/other/ttl", "expiring", ttl=3000)
    v2_source.mkdir("/other/emptydir")
    args = {"prefix": "/other", "destination_prefix": "/copied", "source": {"endpoints": v2_source.endpoints},
            "endpoints": etcd_single.endpoints}
    rev = etcd_single.revision()
    dry = run_module("etcd_v2_to_v3", args, check=True)
    assert dry["changed"] and dry["copied"] == 3, dry.get("msg")
    assert etcd_single.revision() == rev
    res = run_module("etcd_v2_to_v3", args)
    assert res["changed"] and res["created"] == 3 and res["ttl_keys"] == 1 and res["verification"]["ok"]
    target = etcd_single.client()
    assert {kv.key: kv.value for kv in target.range("/copied")} == {
        "/copied/a": b"1", "/copied/sub/b": b"2", "/copied/ttl": b"expiring"}
    ttl_kv = target.get("/copied/ttl")
    assert ttl_kv.lease and 2000 < target.lease_ttl(ttl_kv.lease) <= 3000
    assert target.get("/copied/a").lease == 0
    again = run_module("etcd_v2_to_v3", args)
    assert again["changed"] is False and again["unchanged"] == 3


def test_v2_client_fails_over_and_names_the_endpoint(small_source):
    live = small_source.endpoints[0]
    client = EtcdV2Client(["http://127.0.0.1:9", live])
    assert client.get("/calico/v1/Ready").value == "true"
    assert client.endpoint == live
    with pytest.raises(EtcdV2Error, match=r"http://127.0.0.1:9: connection refused"):
        EtcdV2Client(["http://127.0.0.1:9"]).get("/calico/v1/Ready")
    with pytest.raises(EtcdV2Error, match=r"endpoints: 'ftp://x' must be http\(s\)://host:port"):
        EtcdV2Client(["ftp://x"])


def test_v2_client_over_tls_with_client_certificate(tmp_path_factory):
    from pki import TestPKI

    base = tmp_path_factory.mktemp("v2tls")
    pki = TestPKI(base / "pki")
    server_cert, server_key = pki.issue("etcd-server", server=True, client=True)
    client_cert, client_key = pki.issue("calico-client")
    server = make_server(base, "v2tls", scheme="https", enable_v2=True)
    server.tls = {"ca": pki.ca_cert, "cert": server_cert, "key": server_key}
    server.client_tls = {"ca_cert": str(pki.ca_cert), "client_cert": str(client_cert),
                         "client_key": str(client_key)}
    server.start()
    try:
        client = EtcdV2Client(server.endpoints, ca_cert=str(pki.ca_cert), client_cert=str(client_cert),
                              client_key=str(client_key))
        client.set("/calico/v1/Ready", "true")
        assert client.read_prefix("/calico") == {"/calico/v1/Ready": "true"}
        with pytest.raises(EtcdV2Error, match=server.endpoints[0]):
            EtcdV2Client(server.endpoints, ca_cert=str(pki.ca_cert)).get("/calico/v1/Ready")  # no client cert
    finally:
        server.stop()


def test_abort_resumes_v1_even_when_the_target_is_unreachable(small_source, tmp_path):
    from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient

    small_source.set("/calico/v1/Ready", "false")
    dead = EtcdClient(["http://127.0.0.1:9"], timeout=1)
    result = migration.run("abort", small_source, dead, _opts(tmp_path), migration.Progress())
    assert result["changed"] and small_source.get("/calico/v1/Ready").value == "true"
    assert "marker in the target was not updated" in result["warnings"][0]
    again = migration.run("abort", small_source, dead, _opts(tmp_path), migration.Progress())
    assert again["changed"] is False


def test_v2_client_basic_auth(tmp_path_factory):
    """etcd's v2 auth: root user, guest role revoked; the client must send basic auth."""
    import base64
    import urllib.request

    server = make_server(tmp_path_factory.mktemp("v2auth"), "v2auth", enable_v2=True)
    server.start()
    try:
        url = server.endpoints[0]

        def call(method: str, path: str, body: dict, auth: bool = False) -> None:
            req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                         headers={"Content-Type": "application/json"})
            if auth:
                req.add_header("Authorization", "Basic " + base64.b64encode(b"root:rootpw").decode())
            urllib.request.urlopen(req, timeout=10).read()

        call("PUT", "/v2/auth/users/root", {"user": "root", "password": "rootpw"})
        call("PUT", "/v2/auth/enable", {})
        call("PUT", "/v2/auth/roles/guest", {"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}},
             auth=True)
        client = EtcdV2Client(server.endpoints, user="root", password="rootpw")
        client.set("/calico/v1/Ready", "true")
        assert client.get("/calico/v1/Ready").value == "true"
        with pytest.raises(EtcdV2Error, match=r"authentication failed|permission denied|Insufficient"):
            EtcdV2Client(server.endpoints).get("/calico/v1/Ready")
        with pytest.raises(EtcdV2Error, match=r"authentication failed|Insufficient"):
            EtcdV2Client(server.endpoints, user="root", password="wrong").get("/calico/v1/Ready")
    finally:
        server.stop()


def _conn(small_source, etcd_single, tmp_path) -> dict:
    return {"source": {"endpoints": small_source.endpoints}, "endpoints": etcd_single.endpoints,
            "snapshot_dir": str(tmp_path / "snaps"), "settle_time": 0, "lock_ttl": 2}


def test_rerun_of_start_that_writes_no_object_reports_no_change(small_source, etcd_single, tmp_path):
    conn = _conn(small_source, etcd_single, tmp_path)
    first = run_module("calico_datastore_migrate", {**conn, "phase": "start"})
    assert first["changed"] and first["verification"]["ok"], first.get("msg")
    target = etcd_single.client()
    marker = target.get(migration.STATE_KEY)
    newest = max(kv.mod_revision for kv in target.range("/calico/"))

    dry = run_module("calico_datastore_migrate", {**conn, "phase": "start"}, check=True)
    again = run_module("calico_datastore_migrate", {**conn, "phase": "start"})
    assert dry["changed"] is False, dry.get("msg")
    assert again["changed"] is False and again["actions"] == [], again.get("msg") or again["actions"]
    assert again["verification"]["ok"] and again["written"]["resources"]["unchanged"] > 0
    assert target.get(migration.STATE_KEY).mod_revision == marker.mod_revision  # marker not rewritten
    assert max(kv.mod_revision for kv in target.range("/calico/")) == newest

    # one object changed behind the migration's back: the rerun writes it back, and says so
    key = "/calico/resources/v3/projectcalico.org/ippools/192-168-0-0-16"
    pool = json.loads(target.get(key).value)
    pool["spec"]["ipipMode"] = "CrossSubnet" if pool["spec"].get("ipipMode") != "CrossSubnet" else "Never"
    target.put(key, json.dumps(pool))
    fixed = run_module("calico_datastore_migrate", {**conn, "phase": "start"})
    assert fixed["changed"] is True and fixed["written"]["resources"]["updated"] == 1
    assert target.get(migration.STATE_KEY).mod_revision > marker.mod_revision


def test_abort_is_refused_while_start_holds_the_lock_and_complete_refuses_after_abort(
        small_source, etcd_single, tmp_path):
    args = {"phase": "start", "source": small_source.endpoints, "target": etcd_single.endpoints,
            "options": {"settle_time": 0, "snapshot_dir": "", "lock_ttl": 2}}
    steps = _driver({**args, "progress_file": str(tmp_path / "ref.progress")})
    assert steps.returncode == 0, steps.stdout
    paused_at = [json.loads(line)["step"] for line in (tmp_path / "ref.progress").read_text().splitlines()].index(
        "paused")
    etcd_single.wipe()
    small_source.set("/calico/v1/Ready", "true")
    conn = _conn(small_source, etcd_single, tmp_path)
    with etcd_single.client().lock(migration.LOCK_KEY, ttl=10, owner="another run"):  # Calico 2.x not paused
        idle = run_module("calico_datastore_migrate", {**conn, "phase": "abort"})
    assert not idle.get("failed") and idle["changed"] is False, idle.get("msg")
    assert any("a migration run holds the lock (another run)" in w for w in idle["warnings"])
    # a start paused right after pausing Calico 2.x (where its settle time runs), holding the lock
    start = subprocess.Popen([sys.executable, str(DRIVER), json.dumps({**args, "pause_at": paused_at,
                                                                       "pause_for": 120})],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert start.stdout.readline().strip() == "PAUSED"
        rev = etcd_single.revision()
        aborted = run_module("calico_datastore_migrate", {**conn, "phase": "abort"})
        assert aborted["failed"]
        assert aborted["msg"] == (
            f"a migration run is in progress (lock {migration.LOCK_KEY} held by calico_datastore_migrate on "
            f"{socket.gethostname()} pid {start.pid}): rerun when it has finished or stopped (its lock expires "
            "lock_ttl seconds after it stops); nothing was written")
        assert small_source.get("/calico/v1/Ready").value == "false" and etcd_single.revision() == rev
    finally:
        os.kill(start.pid, signal.SIGKILL)
        start.wait(10)
    _wait_lock_free(etcd_single.client())
    aborted = run_module("calico_datastore_migrate", {**conn, "phase": "abort"})
    assert aborted["changed"] and small_source.get("/calico/v1/Ready").value == "true", aborted.get("msg")
    assert migration.read_state(etcd_single.client())["phase"] == "aborted"
    done = run_module("calico_datastore_migrate", {**conn, "phase": "complete"})
    assert done["failed"] and "in phase 'aborted', not written" in done["msg"]


def test_validate_fails_on_problems_unless_told_only_to_report(small_source, etcd_single, tmp_path):
    target = etcd_single.client()
    target.put("/calico/resources/v3/projectcalico.org/bgppeers/existing", b'{"kind":"BGPPeer"}')
    rev = etcd_single.revision()
    conn = {**_conn(small_source, etcd_single, tmp_path), "phase": "validate"}
    failed, reported = run_modules([("calico_datastore_migrate", conn),
                                    ("calico_datastore_migrate", {**conn, "fail_on_problems": False})])
    problem = "the target holds 1 keys under /calico/ (allow_existing_v3_data not set)"
    assert failed["failed"] and failed["problems"] == [problem]
    assert failed["msg"] == (f"validate found 1 problem(s) that would refuse start: {problem} "
                             "(set fail_on_problems: false only to report)")
    assert not reported.get("failed") and reported["changed"] is False and reported["problems"] == [problem]
    assert etcd_single.revision() == rev


def test_etcd_v2_to_v3_copies_named_hidden_keys_and_ttl_directories_share_a_lease(v2_source, etcd_single):
    v2_source.set("/other/a", "1")
    v2_source.set("/other/_hidden", "h")  # hidden: the v2 API never lists it
    v2_source.set("/other/_hdir/x", "hx")
    v2_source.set("/other/sub/_h2", "h2")
    v2_source.mkdir("/other/tdir", ttl=3000)
    v2_source.set("/other/tdir/k1", "k1")
    v2_source.set("/other/tdir/deep/k2", "k2")
    v2_source.set("/other/tdir/long", "long", ttl=10000)  # the directory expires first
    v2_source.set("/other/tdir/short", "short", ttl=1000)  # its own TTL ends first
    assert "/other/_hidden" not in v2_source.read_prefix("/other")
    args = {"prefix": "/other", "destination_prefix": "/copied", "source": {"endpoints": v2_source.endpoints},
            "endpoints": etcd_single.endpoints, "hidden_keys": ["_hidden", "/other/_hdir", "sub/_h2"]}
    res = run_module("etcd_v2_to_v3", args)
    assert res["changed"] and res["verification"]["ok"], res.get("msg")
    assert res["hidden_keys"] == 3 and res["ttl_keys"] == 4 and res["source_keys"] == 8
    target = etcd_single.client()
    copied = {kv.key: kv for kv in target.range("/copied")}
    assert {k: kv.value for k, kv in copied.items()} == {
        "/copied/a": b"1", "/copied/_hidden": b"h", "/copied/_hdir/x": b"hx", "/copied/sub/_h2": b"h2",
        "/copied/tdir/k1": b"k1", "/copied/tdir/deep/k2": b"k2", "/copied/tdir/long": b"long",
        "/copied/tdir/short": b"short"}
    dir_lease = res["leases"]["/other/tdir"]
    assert copied["/copied/tdir/k1"].lease == copied["/copied/tdir/deep/k2"].lease == dir_lease
    assert copied["/copied/tdir/long"].lease == dir_lease and 2000 < target.lease_ttl(dir_lease) <= 3000
    short = copied["/copied/tdir/short"].lease
    own = {k: v for k, v in res["leases"].items() if k != "/other/tdir"}
    assert list(own.values()) == [short] and 300 < int(next(iter(own))[:-1]) <= 1000  # keyed by remaining seconds
    assert 300 < target.lease_ttl(short) <= 1000
    assert copied["/copied/a"].lease == copied["/copied/_hidden"].lease == 0
    assert run_module("etcd_v2_to_v3", args)["changed"] is False

    target.revoke_lease(dir_lease)  # the directory's expiry: its keys go with it, and only they
    assert sorted(kv.key for kv in target.range("/copied")) == [
        "/copied/_hdir/x", "/copied/_hidden", "/copied/a", "/copied/sub/_h2", "/copied/tdir/short"]


def test_etcd_v2_to_v3_keys_below_a_ttl_directory_above_the_prefix_expire_with_it(v2_source, etcd_single):
    v2_source.mkdir("/other/tdir", ttl=3000)
    v2_source.set("/other/tdir/inner/k", "v")
    res = run_module("etcd_v2_to_v3", {"prefix": "/other/tdir/inner", "source": {"endpoints": v2_source.endpoints},
                                       "endpoints": etcd_single.endpoints})
    assert res["changed"] and list(res["leases"]) == ["/other/tdir"], res.get("msg")
    assert etcd_single.client().get("/other/tdir/inner/k").lease == res["leases"]["/other/tdir"]


def test_verification_reads_one_revision_and_names_a_later_change(small_source, etcd_single, tmp_path):
    conv = migration.read_and_convert(small_source).conv
    target = etcd_single.client()
    result = migration.run("start", small_source, target, _opts(tmp_path), migration.Progress())
    verified_at = result["verification"]["revision"]
    assert result["verification"]["ok"] and result["verification"]["checked"] == len(conv.resources) + len(conv.ipam)
    assert result["verification"]["method"] == "revision"  # a fresh target: every key still as this run wrote it
    stored = list(target.range("/calico/"))
    revisions = {kv.key: kv.mod_revision for kv in stored}
    bodies = {kv.key: hashlib.sha256(kv.value).hexdigest() for kv in stored}
    wep = next(kv for kv in stored if "/workloadendpoints/" in kv.key)
    changed = json.loads(wep.value)
    changed["spec"]["interfaceName"] = "tampered"
    target.put(wep.key, json.dumps(changed))
    # the changed key no longer has the revision it was written at: values are read, and it is named
    after = migration.verify(target, conv, bodies, revisions)
    assert after["method"] == "content" and after["mismatches"] == [f"{wep.key}: bytes differ from what was written"]
    now = migration.verify(target, conv)
    assert not now["ok"] and now["mismatches"] == [f"{wep.key}: content differs"]
    pinned = migration._verify(target, conv, {}, 7, verified_at)  # small pages, all at the old revision
    assert pinned["ok"] and pinned["revision"] == verified_at
    target.put(wep.key, wep.value)  # the same bytes again, at a new revision: content still verifies
    assert migration.verify(target, conv, bodies, revisions)["ok"]


# -- the role through ansible-playbook: the start phase in the background, progress lines while it runs --

PROGRESS_PLAY = """\
- name: Migration under test
  hosts: localhost
  gather_facts: false
  roles:
    - role: kubescale.calico.datastore_migration
  post_tasks:
    - name: Save the start phase's result
      ansible.builtin.copy:
        content: "{{ _datastore_migration_start | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""
# migration: writing resources | 1200/7331 keys (16%) | 2403 keys/s | ETA 3s | 4s elapsed
WRITE_LINE = re.compile(r"^migration: writing (?:resources|IPAM keys) \| (\d+)/(\d+) keys \(\d+%\) \| (\d+) keys/s "
                        r"\| ETA [\d:s]+ \| [\d:s]+ elapsed$", re.M)


def _role_run(tmp_path: Path, source, target, name: str, *args: str, **role_vars):
    play = tmp_path / "play.yml"
    play.write_text(PROGRESS_PLAY)
    result_file = tmp_path / f"{name}.json"
    extra = {"calico_legacy_etcd_endpoints": source.endpoints, "calico_etcd_endpoints": target.endpoints,
             "calico_etcd_ca_cert": "", "calico_etcd_client_cert": "", "calico_etcd_client_key": "",
             "calico_etcd_timeout": 30, "calico_controller": "localhost", "datastore_migration_settle_time": 0,
             "datastore_migration_snapshot_dir": str(tmp_path / f"snaps-{name}"), "result_file": str(result_file),
             **role_vars}
    proc = run_playbook(play, *args, extra_vars=extra, cwd=tmp_path, timeout=600)
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return proc, result


def test_role_prints_progress_while_start_runs_and_ends_as_the_foreground_run(v2_source, etcd_single, tmp_path):
    gen.write(v2_source, gen.generate(hosts=60, workloads=3000, namespaces=10), workers=4)
    target = etcd_single.client()
    try:
        # check mode: in the foreground (Ansible refuses async there), a dry run that writes nothing
        rev = etcd_single.revision()
        dry, dry_result = _role_run(tmp_path, v2_source, etcd_single, "check", "--check",
                                    datastore_migration_poll_interval=0.2)
        assert dry.returncode == 0, dry.stdout[-4000:]
        assert "migration: " not in dry.stdout and dry_result["changed"] is True
        assert etcd_single.revision() == rev and v2_source.get("/calico/v1/Ready").value == "true"

        # in the background, small write rounds so that several polls fall inside the writes
        bg, bg_result = _role_run(tmp_path, v2_source, etcd_single, "bg", datastore_migration_poll_interval=0.2,
                                  datastore_migration_batch_size=10, datastore_migration_settle_time=1)
        assert bg.returncode == 0, bg.stdout[-4000:]
        total = bg_result["summary"]["total"]
        writes = [tuple(map(int, m)) for m in WRITE_LINE.findall(bg.stdout)]
        assert writes, bg.stdout[-4000:]
        assert all(t == total and 0 < done <= total and speed > 0 for done, t, speed in writes)
        assert any(done < total for done, _t, _s in writes)  # seen while it was still writing
        assert [d for d, _t, _s in writes] == sorted(d for d, _t, _s in writes)
        assert "migration: Calico 2.x paused, settling | 0/" in bg.stdout
        assert re.search(rf"^migration: done \| {total} keys \| \d+ keys/s overall", bg.stdout, re.M)
        assert "FAILED - RETRYING" not in bg.stdout
        assert "changed=" in bg.stdout and bg_result["changed"] and bg_result["verification"]["ok"]
        assert not any("ansible_job_id" in k or k == "finished" for k in bg_result)
        progress_files = list((tmp_path / "snaps-bg").glob("progress-*.jsonl"))
        assert len(progress_files) == 1
        background = _dump_target(target)

        # the same migration in the foreground (poll interval 0) stores the same data
        target.delete_prefix("/calico/")
        target.delete_prefix("/kubescale/")
        v2_source.set("/calico/v1/Ready", "true")
        fg, fg_result = _role_run(tmp_path, v2_source, etcd_single, "fg", datastore_migration_poll_interval=0)
        assert fg.returncode == 0, fg.stdout[-4000:]
        assert "migration: " not in fg.stdout
        assert _dump_target(target) == background
        for key in ("changed", "summary", "would_write"):
            assert fg_result.get(key) == bg_result.get(key), key
        assert fg_result["verification"]["counts"] == bg_result["verification"]["counts"]
    finally:
        target.close()


def test_role_failure_in_the_background_job_keeps_the_module_message(small_source, etcd_single, tmp_path):
    target = etcd_single.client()
    try:
        # Another migration holds the lock: the dry run passes, the background start fails, the role aborts.
        with target.lock(migration.LOCK_KEY, ttl=120, owner="another migration"):
            proc, result = _role_run(tmp_path, small_source, etcd_single, "failed",
                                     datastore_migration_poll_interval=0.2)
    finally:
        target.close()
    assert proc.returncode != 0 and result is None
    out = proc.stdout
    wait = out.split("TASK [kubescale.calico.datastore_migration : Wait for the start phase")[1].split("\nTASK [")[0]
    # the wait task fails with the module's own message, and the role's abort quotes it as the cause
    assert re.search(r'fatal: \[localhost\]: FAILED! => .*"msg": "etcd \S+: lock /kubescale/calico-migration/lock is '
                     r'held by another migration; another run is in progress', wait), wait[-3000:]
    assert "Abort (v1 Ready back to true" in out
    assert re.search(r"Cause: etcd \S+: lock /kubescale/calico-migration/lock is held by another migration", out)
    assert small_source.get("/calico/v1/Ready").value == "true"


def test_role_interrupted_while_waiting_the_migration_finishes_in_the_background(small_source, etcd_single, tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(PROGRESS_PLAY)
    extra = {"calico_legacy_etcd_endpoints": small_source.endpoints, "calico_etcd_endpoints": etcd_single.endpoints,
             "calico_etcd_ca_cert": "", "calico_etcd_client_cert": "", "calico_etcd_client_key": "",
             "calico_etcd_timeout": 30, "calico_controller": "localhost", "datastore_migration_settle_time": 4,
             "datastore_migration_snapshot_dir": str(tmp_path / "snaps"), "result_file": str(tmp_path / "r.json"),
             "datastore_migration_poll_interval": 0.5}
    proc = subprocess.Popen(["ansible-playbook", str(play), "-e", json.dumps(extra)], cwd=tmp_path,
                            env=playbook_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen = []
    for text in proc.stdout:
        seen.append(text)
        if text.startswith("migration: Calico 2.x paused"):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C while the start phase settles
            break
    proc.communicate(timeout=60)
    assert proc.returncode != 0 and not (tmp_path / "r.json").exists(), "".join(seen)[-3000:]
    progress_file = next((tmp_path / "snaps").glob("progress-*.jsonl"))
    deadline = time.monotonic() + 60
    while '"step": "done"' not in progress_file.read_text():  # the job goes on without the playbook
        assert time.monotonic() < deadline, progress_file.read_text()
        time.sleep(0.5)
    target = etcd_single.client()
    try:
        state = json.loads(target.get("/kubescale/calico-migration/state").value)
        assert state["phase"] == "written"
        assert target.count("/calico/resources/v3/projectcalico.org/workloadendpoints/") == SMALL["workloads"]
        _wait_lock_free(target)
    finally:
        target.close()
    # a rerun finds the data in place and completes the migration
    again, result = _role_run(tmp_path, small_source, etcd_single, "again", datastore_migration_poll_interval=0.5)
    assert again.returncode == 0, again.stdout[-4000:]
    assert result["verification"]["ok"] and result["written"]["resources"]["created"] == 0
