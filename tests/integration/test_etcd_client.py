"""The etcd v3 client layer against real etcd 3.4 members on loopback (fixtures in etcd_fixtures.py).

Paging past gRPC's 4 MiB limit, batches of at most 128 ops, failover, TLS, auth, locks, leases,
snapshots and cluster calls; every error is one line that names the endpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import time

import grpc
import pytest
from etcd_fixtures import free_port

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import (
    MAX_TXN_OPS,
    EtcdClient,
    EtcdError,
    Op,
    rpc,
    wait_for,
)

PAGING_KEYS = 20_000
VALUE_SIZE = 450


def one_line(exc: BaseException, endpoint: str) -> str:
    """The error text, checked to be a single line that starts with the endpoint."""
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    assert text.startswith(f"etcd {endpoint}: "), text
    return text


def dead_endpoint() -> str:
    """A loopback endpoint where nothing listens (a member that never existed)."""
    return f"http://127.0.0.1:{free_port()}"


# ------------------------------------------------------------------------------------------------
# Paging and batches
# ------------------------------------------------------------------------------------------------
def test_unpaged_read_of_20000_values_hits_the_4mib_limit_and_paged_read_returns_all(etcd_single):
    client = etcd_single.client()
    keys = [f"/calico/resources/v3/projectcalico.org/workloadendpoints/ns/wep-{i:05d}" for i in range(PAGING_KEYS)]
    ops = [Op.put(key, f"{i:05d}".ljust(VALUE_SIZE, "v")) for i, key in enumerate(keys)]
    before = client.revision()
    assert client.apply(ops) == []  # unconditional ops never lose
    assert client.revision() - before == math.ceil(PAGING_KEYS / MAX_TXN_OPS)  # one revision per txn
    assert client.count("/calico/resources/") == PAGING_KEYS
    prefix = "/calico/resources/v3/projectcalico.org/workloadendpoints/"

    with pytest.raises(EtcdError) as info:
        client.get_prefix_unpaged(prefix)
    text = one_line(info.value, etcd_single.endpoints[0])
    assert "response too large" in text
    assert info.value.__context__.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    calls = []
    real_call = client._call

    def counting(service, method, request, **kw):
        calls.append(method)
        return real_call(service, method, request, **kw)

    client._call = counting
    got = list(client.range(prefix))
    assert [kv.key for kv in got] == keys  # all of them, in key order, no duplicates
    assert all(kv.value == f"{i:05d}".ljust(VALUE_SIZE, "v").encode() for i, kv in enumerate(got))
    assert sum(len(kv.value) for kv in got) > 4 * 1024 * 1024
    assert calls.count("Range") == math.ceil(PAGING_KEYS / 1000)  # DEFAULT_PAGE_SIZE pages


def test_range_pages_are_one_consistent_revision(etcd_single):
    client = etcd_single.client()
    client.apply([Op.put(f"/calico/p/{i:03d}", str(i)) for i in range(25)])
    pages = client.range("/calico/p/", page_size=10)
    first = [next(pages) for _unused in range(10)]
    client.put("/calico/p/000", "changed")  # written between pages
    client.put("/calico/p/999", "new")
    rest = list(pages)
    assert len(first) + len(rest) == 25  # the new key is after the pinned revision
    assert [kv.key for kv in first + rest] == [f"/calico/p/{i:03d}" for i in range(25)]


def test_range_keeps_to_its_prefix(etcd_single):
    client = etcd_single.client()
    client.apply([Op.put(k, "x") for k in ("/calico/a", "/calico/a/1", "/calico/a/2", "/calico/a0", "/calico/b/1")])
    assert [kv.key for kv in client.range("/calico/a/", page_size=1)] == ["/calico/a/1", "/calico/a/2"]
    assert [kv.key for kv in client.range("/calico/a/", keys_only=True)] == ["/calico/a/1", "/calico/a/2"]


def test_a_129_op_transaction_is_refused_by_the_layer_and_by_etcd(etcd_single):
    client = etcd_single.client()
    ops = [Op.put(f"/calico/txn/{i:03d}", "v") for i in range(MAX_TXN_OPS + 1)]
    before = client.revision()
    with pytest.raises(EtcdError, match=r"^a transaction may hold at most 128 operations, got 129$"):
        client.txn(ops)
    # etcd's own limit (--max-txn-ops 128): the same 129 puts sent as a raw Txn are refused by the server
    raw = rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=op.key.encode(), value=op.value))
                                  for op in ops])
    with pytest.raises(EtcdError) as info:
        client._call("KV", "Txn", raw)
    assert "too many operations in txn request" in one_line(info.value, etcd_single.endpoints[0])
    assert client.revision() == before and client.count("/calico/txn/") == 0
    succeeded, revision = client.txn(ops[:MAX_TXN_OPS])
    assert succeeded and revision == before + 1 and client.count("/calico/txn/") == MAX_TXN_OPS


def test_apply_of_300_ops_issues_three_transactions_of_at_most_128(etcd_single):
    client = etcd_single.client()
    sizes = []
    real_txn = client.txn

    def spy(batch):
        sizes.append(len(batch))
        return real_txn(batch)

    client.txn = spy
    before = client.revision()
    assert client.apply([Op.put(f"/calico/batch/{i:03d}", "v") for i in range(300)]) == []
    assert sizes == [128, 128, 44]
    assert client.revision() == before + 3  # each transaction is one etcd revision
    assert client.count("/calico/batch/") == 300


@pytest.mark.parametrize("max_ops", [0, MAX_TXN_OPS + 1])
def test_apply_refuses_batch_sizes_etcd_would_refuse(etcd_single, max_ops):
    client = etcd_single.client()
    before = client.revision()
    with pytest.raises(EtcdError, match=r"max_ops must be 1\.\.128"):
        client.apply([Op.put("/calico/x", "v")], max_ops=max_ops)
    assert client.revision() == before


def test_guarded_batches_are_all_or_nothing_and_lost_ones_are_returned(etcd_single):
    client = etcd_single.client()
    client.put("/calico/cas/005", "someone else's")
    create = [Op.put(f"/calico/cas/{i:03d}", "mine", expect_mod_revision=0) for i in range(10)]
    lost = client.apply(create, max_ops=4)  # batches 0-3, 4-7, 8-9; 005 already exists
    assert [op.key for op in lost] == [f"/calico/cas/{i:03d}" for i in range(4, 8)]
    stored = {kv.key: kv.value for kv in client.range("/calico/cas/")}
    assert stored == {**{f"/calico/cas/{i:03d}": b"mine" for i in (0, 1, 2, 3, 8, 9)},
                      "/calico/cas/005": b"someone else's"}
    kv = client.get("/calico/cas/000")
    assert client.apply([Op.put(kv.key, "v2", expect_mod_revision=kv.mod_revision)]) == []
    assert len(client.apply([Op.put(kv.key, "v3", expect_mod_revision=kv.mod_revision)])) == 1  # stale revision
    assert client.get(kv.key).value == b"v2"


def test_get_many_reads_more_keys_than_one_transaction_holds(etcd_single):
    client = etcd_single.client()
    keys = [f"/calico/many/{i:03d}" for i in range(300)]
    client.apply([Op.put(k, k) for k in keys[::2]])
    found = client.get_many(keys)
    assert sorted(found) == keys[::2] and all(found[k].value == k.encode() for k in found)


def test_count_revision_delete_prefix(etcd_single):
    client = etcd_single.client()
    client.apply([Op.put(f"/calico/a/{i}", "x") for i in range(5)] + [Op.put(f"/calico/b/{i}", "x") for i in range(3)]
                 + [Op.put("/calico/a0", "x")])
    rev = client.revision()
    assert json.loads(etcd_single.etcdctl("get", "x", "-w", "json"))["header"]["revision"] == rev
    assert (client.count("/calico/a/"), client.count("/calico/b/"), client.count("/calico/")) == (5, 3, 9)
    assert client.delete_prefix("/calico/a/") == 5
    assert client.revision() == rev + 1
    assert (client.count("/calico/a/"), client.count("/calico/"), client.get("/calico/a0").value) == (0, 4, b"x")
    assert client.delete("/calico/a0") is True and client.delete("/calico/a0") is False
    assert client.delete_prefix("/calico/nothing/") == 0


# ------------------------------------------------------------------------------------------------
# Failover and error messages
# ------------------------------------------------------------------------------------------------
def _wait_for_leader(server, indices) -> None:
    def has_leader() -> bool:
        try:
            with EtcdClient([server.members[i].client_url for i in indices], timeout=2) as probe:
                return all(probe.status(server.members[i].client_url)["leader"] for i in indices)
        except EtcdError:
            return False

    assert wait_for(has_leader, 15), "no leader among the remaining members"


def test_failover_when_the_first_member_is_down(etcd_cluster3):
    server = etcd_cluster3
    server.stop_member(0)
    _wait_for_leader(server, (1, 2))
    client = server.client(timeout=3)
    assert client.endpoints[0] == server.members[0].client_url
    client.put("/calico/failover", "written while member 0 is down")
    assert client.get("/calico/failover").value == b"written while member 0 is down"
    assert client.endpoint != server.members[0].client_url
    assert len(list(client.range("/calico/"))) == 1
    assert server.etcdctl("get", "/calico/failover", "--print-value-only").strip() == "written while member 0 is down"


def test_failover_when_the_member_in_use_stops_mid_session(etcd_cluster3):
    server = etcd_cluster3
    client = server.client(timeout=3)
    client.put("/calico/before", "1")
    in_use = server.endpoints.index(client.endpoint)
    server.stop_member(in_use)
    _wait_for_leader(server, [i for i in range(3) if i != in_use])
    client.put("/calico/after", "2")
    assert client.endpoint != server.members[in_use].client_url
    assert [kv.key for kv in client.range("/calico/")] == ["/calico/after", "/calico/before"]


def test_failover_past_an_endpoint_that_never_existed(etcd_single):
    dead = dead_endpoint()
    client = EtcdClient([dead, *etcd_single.endpoints], timeout=3)
    client.put("/calico/x", "1")
    assert client.get("/calico/x").value == b"1"
    assert client.endpoint == etcd_single.endpoints[0]


def test_an_unreachable_endpoint_is_named_in_a_one_line_error():
    dead = dead_endpoint()
    with pytest.raises(EtcdError) as info:
        EtcdClient([dead], timeout=3).get("/calico/x")
    assert "connection refused or unreachable" in one_line(info.value, dead)


def test_when_no_endpoint_answers_every_endpoint_is_named():
    first, second = dead_endpoint(), dead_endpoint()
    with pytest.raises(EtcdError) as info:
        EtcdClient([first, second], timeout=3).revision()
    text = str(info.value)
    assert "\n" not in text and text.startswith("no etcd endpoint answered: ")
    assert f"{first}: connection refused" in text and f"{second}: connection refused" in text


def test_a_frozen_first_member_is_skipped_at_connect(etcd_cluster3):
    server = etcd_cluster3
    with server.frozen(0) as frozen:
        server.wait_for_leader_without(0)
        for _unused in range(3):  # every new client (every module run) connects past it
            client = server.client(timeout=30)
            client.put("/calico/frozen", "ok")
            assert client.endpoint != frozen.client_url
            client.close()
        assert server.client(timeout=30).get("/calico/frozen").value == b"ok"


def test_a_member_frozen_mid_session_is_left_for_a_healthy_one(etcd_cluster3):
    server = etcd_cluster3
    client = server.client(timeout=2)
    client.put("/calico/before", "1")
    in_use = server.endpoints.index(client.endpoint)
    with server.frozen(in_use):
        server.wait_for_leader_without(in_use)
        client.put("/calico/after", "2")  # this call times out on the frozen one, then the others are probed
        assert client.endpoint != server.endpoints[in_use]
        client.put("/calico/later", "3")
        assert [kv.key for kv in client.range("/calico/")] == ["/calico/after", "/calico/before", "/calico/later"]


def test_when_every_endpoint_is_frozen_or_dead_each_one_is_named_once(etcd_cluster3):
    server = etcd_cluster3
    dead = dead_endpoint()
    with server.frozen(0) as frozen, pytest.raises(EtcdError) as info:
        EtcdClient([frozen.client_url, dead], timeout=1).revision()
    text = str(info.value)
    assert "\n" not in text and text.startswith("no etcd endpoint answered: ")
    assert text.count(frozen.client_url) == 1 and f"{frozen.client_url}: timed out after 1s" in text
    assert text.count(dead) == 1 and f"{dead}: connection refused or unreachable" in text


@pytest.mark.parametrize("timeout", [0, -5, float("nan"), float("inf"), "ten"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(timeout):
    with pytest.raises(EtcdError, match=r"^timeout: must be a number of seconds greater than 0, got "):
        EtcdClient(["http://127.0.0.1:2379"], timeout=timeout)


@pytest.mark.parametrize("endpoints, match", [
    (["ftp://127.0.0.1:2379"], r"^endpoints: 'ftp://127\.0\.0\.1:2379' must be http\(s\)://host:port "
                               r"\(the scheme is 'ftp'\)$"),
    (["http://127.0.0.1:2379/v3/kv"], r"^endpoints: 'http://127\.0\.0\.1:2379/v3/kv' must be http\(s\)://host:port "
                                      r"\(no path: '/v3/kv'\)$"),
    ([], r"^endpoints: at least one etcd endpoint is required$"),
])
def test_bad_endpoints_are_refused_before_connecting(endpoints, match):
    with pytest.raises(EtcdError, match=match):
        EtcdClient(endpoints)


def test_bare_host_port_means_http_and_port_defaults_to_2379():
    client = EtcdClient(["127.0.0.1:12379", "http://localhost"])
    assert client.endpoints == ["http://127.0.0.1:12379", "http://localhost"]
    assert client._targets == [("http", "127.0.0.1:12379"), ("http", "localhost:2379")]


# ------------------------------------------------------------------------------------------------
# TLS
# ------------------------------------------------------------------------------------------------
def test_tls_with_client_certificate_works(etcd_tls):
    client = etcd_tls.client()
    client.put("/calico/tls", "ok")
    assert client.get("/calico/tls").value == b"ok"
    assert etcd_tls.endpoints[0].startswith("https://")


def test_tls_without_client_certificate_is_refused(etcd_tls):
    endpoint = etcd_tls.endpoints[0]
    client = EtcdClient([endpoint], ca_cert=etcd_tls.client_tls["ca_cert"], timeout=3)
    with pytest.raises(EtcdError) as info:
        client.get("/calico/tls")
    assert "TLS: the server refused the client (give client_cert and client_key signed by its CA)" in one_line(
        info.value, endpoint)


def test_tls_with_the_wrong_ca_is_refused(etcd_tls, tmp_path):
    from pki import TestPKI

    other = TestPKI(tmp_path / "other", ca_name="some-other-ca")
    cert, key = other.issue("stranger")
    endpoint = etcd_tls.endpoints[0]
    client = EtcdClient([endpoint], ca_cert=str(other.ca_cert), client_cert=str(cert), client_key=str(key), timeout=3)
    with pytest.raises(EtcdError) as info:
        client.get("/calico/tls")
    assert "TLS handshake failed" in one_line(info.value, endpoint)


def test_http_to_a_tls_member_is_refused(etcd_tls):
    endpoint = etcd_tls.endpoints[0].replace("https://", "http://")
    with pytest.raises(EtcdError) as info:
        EtcdClient([endpoint], timeout=3).get("/calico/tls")
    assert one_line(info.value, endpoint) == f"etcd {endpoint}: the server speaks TLS (is it https://?)"


def test_https_to_a_plain_http_member_is_said_plainly(etcd_single):
    endpoint = etcd_single.endpoints[0].replace("http://", "https://")
    with pytest.raises(EtcdError) as info:
        EtcdClient([endpoint], timeout=3).get("/calico/x")
    assert one_line(info.value, endpoint) == (
        f"etcd {endpoint}: TLS handshake failed: the server does not speak TLS (is it http://?)")


def test_tls_files_that_cannot_be_read_are_named(tmp_path):
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(EtcdError, match=rf"^ca_cert {missing}: cannot read \(No such file or directory\)$"):
        EtcdClient(["https://127.0.0.1:2379"], ca_cert=missing)
    with pytest.raises(EtcdError, match=r"^client_cert and client_key must be given together$"):
        EtcdClient(["https://127.0.0.1:2379"], client_cert=missing)


# ------------------------------------------------------------------------------------------------
# Auth
# ------------------------------------------------------------------------------------------------
def test_auth_user_reads_and_writes_under_calico(etcd_auth):
    client = etcd_auth.client()
    client.put("/calico/auth-ok", "yes")
    assert client.get("/calico/auth-ok").value == b"yes"
    assert client.count("/calico/auth-ok") == 1


def test_auth_bad_password_is_refused(etcd_auth):
    endpoint = etcd_auth.endpoints[0]
    with pytest.raises(EtcdError) as info:
        etcd_auth.client(password="wrong", timeout=3).get("/calico/auth-ok")
    assert "authentication failed: invalid user or password" in one_line(info.value, endpoint)


def test_auth_permission_denied_outside_calico(etcd_auth):
    endpoint = etcd_auth.endpoints[0]
    client = etcd_auth.client(timeout=3)
    before = etcd_auth.revision()
    with pytest.raises(EtcdError) as info:
        client.put("/elsewhere", "x")
    assert "permission denied" in one_line(info.value, endpoint)
    with pytest.raises(EtcdError, match="permission denied"):
        client.get("/registry/secret")
    assert etcd_auth.revision() == before


def test_auth_without_credentials_is_told_to_give_them(etcd_auth):
    endpoint = etcd_auth.endpoints[0]
    with pytest.raises(EtcdError) as info:
        EtcdClient([endpoint], timeout=3).get("/calico/auth-ok")
    assert "authentication required: auth is enabled, give user and password" in one_line(info.value, endpoint)


def test_user_and_password_go_together():
    with pytest.raises(EtcdError, match=r"^user and password must be given together$"):
        EtcdClient(["http://127.0.0.1:2379"], user="calico")


# ------------------------------------------------------------------------------------------------
# Locks and leases
# ------------------------------------------------------------------------------------------------
def test_a_held_lock_refuses_a_second_holder(etcd_single):
    first, second = etcd_single.client(), etcd_single.client()
    name = "/calico/kubescale/locks/migration"
    with first.lock(name, ttl=10, owner="run-1"):
        with pytest.raises(EtcdError) as info, second.lock(name, ttl=10, owner="run-2"):
            pytest.fail("the second holder got the lock")
        text = one_line(info.value, etcd_single.endpoints[0])
        assert f"lock {name} is held by run-1" in text
        assert first.get(name).value == b"run-1"
    assert first.get(name) is None  # released on exit
    with second.lock(name, ttl=10, owner="run-2"):
        assert second.get(name).value == b"run-2"


def test_the_lease_keeps_a_held_lock_alive_past_its_ttl(etcd_single):
    client = etcd_single.client()
    name = "/calico/kubescale/locks/long"
    ttl = 2
    unrefreshed = client.grant_lease(ttl)  # the control: the same ttl, nobody refreshes it
    client.put("/calico/kubescale/unrefreshed", "x", lease=unrefreshed)
    with client.lock(name, ttl=ttl) as lease:
        time.sleep(ttl * 2)
        assert client.get(name) is not None and client.get(name).lease == lease
        assert client.lease_ttl(lease) > 0
        assert client.get("/calico/kubescale/unrefreshed") is None  # expired: the ttl really is that short
    assert client.get(name) is None


def test_a_killed_holder_frees_the_lock_after_its_ttl(etcd_single):
    import signal
    import subprocess
    import sys

    name = "/calico/kubescale/locks/killed"
    script = (
        "import sys, time\n"
        "from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient\n"
        f"with EtcdClient({etcd_single.endpoints!r}).lock({name!r}, ttl=2, owner='doomed'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        client = etcd_single.client()
        assert client.get(name).value == b"doomed"
        os.kill(holder.pid, signal.SIGKILL)  # no chance to revoke the lease
        holder.wait(10)
        assert wait_for(lambda: client.get(name) is None, 10)
        with client.lock(name, ttl=2, owner="next-run"):
            assert client.get(name).value == b"next-run"
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(10)


# ------------------------------------------------------------------------------------------------
# Snapshots and the cluster
# ------------------------------------------------------------------------------------------------
def test_snapshot_is_private_and_its_sha256_matches(etcd_single, tmp_path):
    client = etcd_single.client()
    client.apply([Op.put(f"/calico/snap/{i}", "v" * 100) for i in range(50)])
    path = tmp_path / "calico.db"
    path.write_text("old backup")
    os.chmod(path, 0o644)
    old_umask = os.umask(0)  # the 0600 must not depend on the caller's umask
    try:
        result = client.snapshot(str(path))
    finally:
        os.umask(old_umask)
    data = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["size"] == len(data) and result["path"] == str(path)
    assert not (tmp_path / "calico.db.part").exists()
    status = json.loads(etcd_single.etcdctl("snapshot", "status", str(path), "-w", "json"))
    assert status["totalKey"] >= 50  # etcdctl reads it as a valid snapshot holding our keys


def test_members_status_and_alarms_of_the_three_member_cluster(etcd_cluster3):
    server = etcd_cluster3
    client = server.client(timeout=5)
    members = client.members()
    assert sorted(m["name"] for m in members) == ["c3m0", "c3m1", "c3m2"]
    assert sorted(url for m in members for url in m["client_urls"]) == sorted(server.endpoints)
    statuses = [client.status(endpoint) for endpoint in server.endpoints]
    assert [s["endpoint"] for s in statuses] == server.endpoints
    assert len({s["cluster_id"] for s in statuses}) == 1
    assert len({s["leader"] for s in statuses}) == 1
    assert sum(s["is_leader"] for s in statuses) == 1
    assert {s["member_id"] for s in statuses} == {m["id"] for m in members}
    assert all(s["version"].startswith("3.") for s in statuses)
    assert client.alarms() == []


def test_a_member_without_a_leader_says_so_instead_of_waiting_for_the_deadline(etcd_cluster3):
    server = etcd_cluster3
    server.stop_member(1)
    server.stop_member(2)
    alone = server.members[0].client_url
    probe = EtcdClient([alone], timeout=2)
    assert wait_for(lambda: probe.status(alone)["leader"] == 0, 15)  # status works without a leader
    with pytest.raises(EtcdError) as info:
        EtcdClient([alone], timeout=30).put("/calico/x", "1")
    assert "no leader (the cluster has lost quorum or is electing)" in one_line(info.value, alone)
    with pytest.raises(EtcdError) as info:
        server.client(timeout=30).get("/calico/x")  # every member is tried; each one's cause is named
    text = str(info.value)
    assert text.startswith("no etcd endpoint answered: ") and "\n" not in text
    assert f"{alone}: no leader" in text
    assert all(f"{m.client_url}: connection refused or unreachable" in text for m in server.members[1:])


def test_a_member_that_never_answers_times_out_with_the_endpoint_named():
    import socket

    with socket.socket() as silent:  # accepts TCP connections (backlog) but never speaks HTTP/2
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(EtcdError) as info:
            EtcdClient([endpoint], timeout=1).get("/calico/x")
    assert one_line(info.value, endpoint) == f"etcd {endpoint}: timed out after 1s"


def test_status_of_a_stopped_member_names_it(etcd_cluster3):
    server = etcd_cluster3
    server.stop_member(2)
    stopped = server.members[2].client_url
    with pytest.raises(EtcdError) as info:
        server.client(timeout=3).status(stopped)
    assert "connection refused or unreachable" in one_line(info.value, stopped)


def test_auth_status_is_not_fooled_by_a_root_client_certificate(tmp_path):
    """With --client-cert-auth a CN=root certificate *is* root: auth must still read as on/off truly."""
    from etcd_fixtures import make_tls_server

    server = make_tls_server(tmp_path, "cnroot", client_name="root")
    server.start()
    try:
        client = server.client()
        assert client.auth_status() is False
        server.etcdctl("user", "add", "root:rootpw")
        server.etcdctl("auth", "enable")
        assert server.client().auth_status() is True
    finally:
        server.stop()
