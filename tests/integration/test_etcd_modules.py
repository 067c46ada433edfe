"""etcd_info, etcd_member, etcd_snapshot and etcd_auth run through ansible-playbook against real etcd.

Every module call goes through ``playbook_run.run_module`` (a one-task playbook on localhost),
so argument specs, no_log, check mode and diff mode are Ansible's own. Clusters that a test
reconfigures (members added or removed, auth switched on) are started for that test only and
stopped by PID, also when the test fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import time
import urllib.request

import pytest
from etcd_fixtures import ETCD, ETCDCTL, free_port, make_server
from playbook_run import run_module, run_modules


def _ok(result: dict) -> dict:
    assert not result["failed"], result.get("msg") or result["_stdout"][-2000:]
    return result


def _member_names(server) -> list[str]:
    out = json.loads(server.etcdctl("member", "list", "-w", "json"))
    return sorted(m.get("name", "") for m in out["members"])


@pytest.fixture
def cluster(tmp_path):
    """A 3-member cluster of this test's own (it may be reconfigured)."""
    server = make_server(tmp_path / "etcd", "m", size=3)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Joiner:
    """An extra etcd process that joins a cluster with a given --initial-cluster; stopped by PID."""

    def __init__(self, base, name: str) -> None:
        self.name, self.base = name, base
        self.client_url = f"http://127.0.0.1:{free_port()}"
        self.peer_url = f"http://127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen | None = None
        self.log = base / f"{name}.log"

    def start(self, initial_cluster: str, state: str) -> None:
        args = [ETCD, "--name", self.name, "--data-dir", str(self.base / f"{self.name}.data"),
                "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
                "--heartbeat-interval", "50", "--election-timeout", "500"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(self.client_url + "/health", timeout=2) as resp:
                    if json.loads(resp.read()).get("health") in ("true", True):
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not healthy: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def joiner(tmp_path):
    started: list[Joiner] = []

    def make(name: str) -> Joiner:
        started.append(Joiner(tmp_path, name))
        return started[-1]

    yield make
    for j in started:
        j.stop()


# -- etcd_info -------------------------------------------------------------------------------------
def test_info_reports_every_endpoint_of_a_healthy_cluster(etcd_cluster3):
    r = _ok(run_module("etcd_info", {"endpoints": etcd_cluster3.endpoints}))
    assert r["changed"] is False
    assert r["healthy"] is True and r["problems"] == []
    assert r["member_count"] == 3 and r["quorum"] == 2 and r["failures_tolerated"] == 1
    assert [e["endpoint"] for e in r["endpoints"]] == etcd_cluster3.endpoints
    assert all(e["reachable"] and e["healthy"] and e["error"] is None for e in r["endpoints"])
    assert sum(e["is_leader"] for e in r["endpoints"]) == 1
    leader = r["leader"]
    assert leader["name"] in {m.name for m in etcd_cluster3.members}
    assert {e["leader"] for e in r["endpoints"]} == {leader["id"]}
    assert all(e["db_size"] > 0 and e["raft_index"] > 0 and e["raft_term"] >= 1 for e in r["endpoints"])
    assert r["version"].startswith("3.")
    assert sorted(m["name"] for m in r["members"]) == sorted(m.name for m in etcd_cluster3.members)
    # member ids are hex as etcdctl prints them
    listed = json.loads(etcd_cluster3.etcdctl("member", "list", "-w", "json"))["members"]
    assert {format(m["ID"], "x") for m in listed} == {m["id"] for m in r["members"]}


def test_modules_run_on_the_compiled_protobuf(etcd_single):
    """The stubs shipped in module_utils travel in Ansible's module payload and load with upb
    (etcd3 0.12's own stubs fail there with "Descriptors cannot be created directly")."""
    peer = {"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3", "metadata": {"name": "upb-peer"},
            "spec": {"peerIP": "10.0.0.9", "asNumber": 64512}}
    upb = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "upb"}
    info, put, got = run_modules([("etcd_info", {"endpoints": etcd_single.endpoints}),
                                  ("calico_resource", {"endpoints": etcd_single.endpoints, "definition": [peer]}),
                                  ("calico_resource_info", {"endpoints": etcd_single.endpoints, "kind": "BGPPeer"})],
                                 module_env=upb)
    assert _ok(info)["healthy"] is True
    assert _ok(put)["changed"] is True
    assert [r["metadata"]["name"] for r in _ok(got)["resources"]] == ["upb-peer"]


def test_info_reports_a_stopped_member_without_failing(etcd_cluster3):
    etcd_cluster3.stop_member(2)  # the etcd_cluster3 fixture restarts it for the next test
    down = etcd_cluster3.members[2].client_url
    r = _ok(run_module("etcd_info", {"endpoints": etcd_cluster3.endpoints}))
    assert r["healthy"] is False
    by_url = {e["endpoint"]: e for e in r["endpoints"]}
    assert by_url[down]["reachable"] is False and by_url[down]["healthy"] is False
    assert by_url[down]["error"] == f"etcd {down}: connection refused or unreachable"
    assert all(e["reachable"] and e["healthy"] for url, e in by_url.items() if url != down)
    assert r["member_count"] == 3  # read from the live members
    assert r["leader"] is not None and r["leader"]["name"] != etcd_cluster3.members[2].name
    assert any(down in p for p in r["problems"])
    stopped = next(m for m in r["members"] if m["name"] == etcd_cluster3.members[2].name)
    assert stopped["healthy"] is False

    failed = run_module("etcd_info", {"endpoints": etcd_cluster3.endpoints, "fail_on_unhealthy": True})
    assert failed["failed"] is True
    assert failed["msg"].startswith("etcd cluster is not healthy: ") and down in failed["msg"]
    assert failed["member_count"] == 3  # the report is still returned


def test_info_all_members_probes_the_member_list(etcd_cluster3):
    r = _ok(run_module("etcd_info", {"endpoints": etcd_cluster3.endpoints[:1], "all_members": True}))
    assert sorted(e["endpoint"] for e in r["endpoints"]) == sorted(etcd_cluster3.endpoints)
    assert r["healthy_endpoints"] == 3


def test_info_with_nothing_reachable_reports_and_fail_gives_one_line(etcd_single):
    dead = f"http://127.0.0.1:{free_port()}"
    r = _ok(run_module("etcd_info", {"endpoints": [dead]}))
    assert r["healthy"] is False and r["members"] == [] and r["endpoints"][0]["reachable"] is False
    assert r["problems"] == [f"member list unavailable: etcd {dead}: connection refused or unreachable"]


def test_info_over_tls_and_a_clear_error_without_client_certificate(etcd_tls):
    r = _ok(run_module("etcd_info", etcd_tls.conn_params))
    assert r["healthy"] is True and r["endpoints"][0]["endpoint"].startswith("https://")
    bare = {"endpoints": etcd_tls.endpoints, "ca_cert": etcd_tls.client_tls["ca_cert"]}
    r = _ok(run_module("etcd_info", bare))
    assert r["healthy"] is False
    assert "TLS" in r["endpoints"][0]["error"] and "client_cert" in r["endpoints"][0]["error"]


def test_info_bad_input_is_named(etcd_single):
    r = run_module("etcd_info", {"endpoints": ["ftp://127.0.0.1:2379"]})
    assert r["failed"] and r["msg"] == ("endpoints: 'ftp://127.0.0.1:2379' must be http(s)://host:port "
                                        "(the scheme is 'ftp')")
    r = run_module("etcd_info", {"endpoints": etcd_single.endpoints, "client_cert": "/nonexistent.crt"})
    assert r["failed"] and "client_cert, client_key" in r["msg"]  # Ansible's required_together


# -- etcd_member -----------------------------------------------------------------------------------
def test_member_add_start_and_remove_a_fourth_member(cluster, joiner):
    new = joiner("m3")
    args = {"endpoints": cluster.endpoints, "name": "m3", "peer_urls": [new.peer_url]}

    preview = _ok(run_module("etcd_member", args, check=True, diff=True))
    assert preview["changed"] is True and preview["member"]["id"] is None
    assert _member_names(cluster) == ["m0", "m1", "m2"]  # check mode wrote nothing
    assert "+m3=" + new.peer_url in preview["_stdout"]  # the diff a user sees

    added = _ok(run_module("etcd_member", args))
    assert added["changed"] is True and added["initial_cluster_state"] == "existing"
    expected = {f"{m.name}={m.peer_url}" for m in cluster.members} | {f"m3={new.peer_url}"}
    assert set(added["initial_cluster"].split(",")) == expected
    assert added["initial_cluster"] == preview["initial_cluster"]
    assert added["member_count"] == 4
    assert any("even count" in w for w in added["warnings"])
    listed = json.loads(cluster.etcdctl("member", "list", "-w", "json"))["members"]
    assert format(next(m["ID"] for m in listed if new.peer_url in m["peerURLs"]), "x") == added["member"]["id"]

    again = _ok(run_module("etcd_member", args))  # added but not started yet: unchanged, same answer
    assert again["changed"] is False and again["initial_cluster"] == added["initial_cluster"]
    assert again["member"]["id"] == added["member"]["id"] and again["member"]["started"] is False

    new.start(added["initial_cluster"], added["initial_cluster_state"])
    new.wait_healthy()
    info = _ok(run_module("etcd_info", {"endpoints": [*cluster.endpoints, new.client_url]}))
    assert info["healthy"] is True and info["member_count"] == 4
    assert sorted(m["name"] for m in info["members"]) == ["m0", "m1", "m2", "m3"]

    removed = _ok(run_module("etcd_member", {"endpoints": cluster.endpoints, "name": "m3", "state": "absent"},
                             diff=True))
    assert removed["changed"] is True and removed["member"]["id"] == added["member"]["id"]
    assert _member_names(cluster) == ["m0", "m1", "m2"]
    assert removed["warnings"] == []  # back to 3
    gone = _ok(run_module("etcd_member", {"endpoints": cluster.endpoints, "peer_urls": [new.peer_url],
                                          "state": "absent"}))
    assert gone["changed"] is False and gone["member"] is None


def test_member_replace_a_dead_host(cluster, joiner):
    cluster.stop_member(2)  # m2's host died
    live = cluster.endpoints[:2]
    replacement = joiner("m2b")
    refused = run_module("etcd_member", {"endpoints": live, "name": "m2b", "peer_urls": [replacement.peer_url]})
    assert refused["failed"]
    assert "not every current member is healthy" in refused["msg"] and "m2 (id" in refused["msg"]
    assert "remove it first (state=absent)" in refused["msg"]
    assert _member_names(cluster) == ["m0", "m1", "m2"]

    _ok(run_module("etcd_member", {"endpoints": live, "name": "m2", "state": "absent"}))
    added = _ok(run_module("etcd_member", {"endpoints": live, "name": "m2b", "peer_urls": [replacement.peer_url]}))
    replacement.start(added["initial_cluster"], "existing")
    replacement.wait_healthy()
    info = _ok(run_module("etcd_info", {"endpoints": live, "all_members": True}))
    assert info["healthy"] is True
    assert sorted(m["name"] for m in info["members"]) == ["m0", "m1", "m2b"]


def test_member_refusals_change_nothing(cluster, etcd_single):
    m0, m2 = cluster.members[0], cluster.members[2]
    clash = run_module("etcd_member", {"endpoints": cluster.endpoints, "name": "m0",
                                       "peer_urls": ["http://127.0.0.1:1"]})
    assert clash["failed"] and clash["msg"].startswith("name: member m0 (id ")
    assert "already exists with other peer URLs" in clash["msg"]

    taken = run_module("etcd_member", {"endpoints": cluster.endpoints, "name": "other", "peer_urls": [m0.peer_url]})
    assert taken["failed"] and f"peer_urls: {m0.peer_url} already belong to member m0" in taken["msg"]

    last = run_module("etcd_member", {"endpoints": etcd_single.endpoints, "name": etcd_single.members[0].name,
                                      "state": "absent"})
    assert last["failed"] and "it is the last member" in last["msg"]

    cluster.stop_member(2)
    quorum = run_module("etcd_member", {"endpoints": cluster.endpoints[:2], "name": "m0", "state": "absent"})
    assert quorum["failed"]
    assert "the 2 remaining members need 2 healthy for quorum but only 1 are" in quorum["msg"]
    assert "m2 (id" in quorum["msg"]
    assert _member_names(cluster) == ["m0", "m1", "m2"]
    # removing the dead member instead keeps quorum, so it is allowed (checked in check mode only)
    allowed = _ok(run_module("etcd_member", {"endpoints": cluster.endpoints[:2], "peer_urls": [m2.peer_url],
                                             "state": "absent"}, check=True))
    assert allowed["changed"] is True and allowed["member"]["name"] == "m2"
    assert _member_names(cluster) == ["m0", "m1", "m2"]


MEMBER_BAD_INPUT = [
    ({"name": "x", "peer_urls": ["127.0.0.1:2380"]}, "peer_urls: '127.0.0.1:2380' must be http(s)://host:port"),
    ({"name": "x", "peer_urls": ["http://127.0.0.1:2380/p"]}, "must be http(s)://host:port"),
    ({"name": "x", "peer_urls": []}, "peer_urls: give at least one peer URL"),
    ({"name": "a=b", "peer_urls": ["http://127.0.0.1:2380"]}, "name: 'a=b' is not a valid member name"),
    ({"name": "x"}, "state is present but all of the following are missing: peer_urls"),
    ({"state": "absent"}, "state is absent but any of the following are missing: name, peer_urls"),
]


def test_member_bad_input_is_named(etcd_single):
    results = run_modules([("etcd_member", {"endpoints": etcd_single.endpoints, **args})
                           for args, _unused in MEMBER_BAD_INPUT])
    for (args, message), r in zip(MEMBER_BAD_INPUT, results):
        assert r["failed"] and message in r["msg"], (args, r["msg"])
    assert _member_names(etcd_single) == [etcd_single.members[0].name]


# -- etcd_snapshot ---------------------------------------------------------------------------------
def test_snapshot_file_checksum_and_etcdctl_accepts_it(etcd_single, tmp_path):
    for i in range(50):
        etcd_single.etcdctl("put", f"/calico/resources/v3/k{i}", "v" * 100)
    path = tmp_path / "snap.db"
    r = _ok(run_module("etcd_snapshot", {"endpoints": etcd_single.endpoints, "path": str(path)}))
    assert r["changed"] is True and r["path"] == str(path)
    data = path.read_bytes()
    assert r["sha256"] == hashlib.sha256(data).hexdigest() and r["size"] == len(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and r["mode"] == "0600"
    assert not (tmp_path / "snap.db.part").exists()
    status = json.loads(subprocess.run([ETCDCTL, "snapshot", "status", str(path), "-w", "json"], check=True,
                                       capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3")).stdout)
    assert status["revision"] == r["revision"] and status["totalKey"] >= 50
    restored = subprocess.run([ETCDCTL, "snapshot", "restore", str(path), "--data-dir", str(tmp_path / "restored")],
                              capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"), check=False)
    assert restored.returncode == 0, restored.stderr  # the trailing hash etcd appends is intact


def test_snapshot_retention_and_check_mode(etcd_single, tmp_path):
    base = {"endpoints": etcd_single.endpoints, "retain": 2, "retain_pattern": "calico-*.db"}
    (tmp_path / "other.db").write_text("not a snapshot of ours")
    for i in range(3):
        _ok(run_module("etcd_snapshot", {**base, "path": str(tmp_path / f"calico-{i}.db")}))
        time.sleep(0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calico-1.db", "calico-2.db", "other.db"]

    preview = _ok(run_module("etcd_snapshot", {**base, "path": str(tmp_path / "calico-3.db")}, check=True))
    assert preview["changed"] is True and preview["sha256"] is None
    assert preview["removed"] == [str(tmp_path / "calico-1.db")]
    assert preview["retained"] == [str(tmp_path / "calico-3.db"), str(tmp_path / "calico-2.db")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calico-1.db", "calico-2.db", "other.db"]


def test_info_and_snapshot_on_a_cluster_with_auth(etcd_auth, tmp_path):
    calico = etcd_auth.conn_params  # the confined calico user
    root = {**calico, "user": "root", "password": "rootpw"}
    info, denied, saved = run_modules([
        ("etcd_info", calico),
        ("etcd_snapshot", {**calico, "path": str(tmp_path / "calico.db")}),
        ("etcd_snapshot", {**root, "path": str(tmp_path / "root.db")}),
    ])
    assert _ok(info)["healthy"] is True  # status, members and alarms need no root role
    assert denied["failed"]
    assert denied["msg"].endswith("permission denied: with auth enabled etcd allows snapshots only to a user "
                                  "with the root role")
    assert _ok(saved)["sha256"] == hashlib.sha256((tmp_path / "root.db").read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root.db"]


SNAPSHOT_BAD_INPUT = [
    ({"path": "/nonexistent-dir/s.db"}, "path: the parent directory /nonexistent-dir does not exist"),
    ({"path": "{tmp}"}, "is a directory; give the snapshot's file name"),
    ({"path": "{tmp}/s.db", "retain": 2, "retain_pattern": "backup-*.db"},
     "retain_pattern: 'backup-*.db' does not match the snapshot's own name 's.db'"),
    ({"path": "{tmp}/s.db", "retain": 2, "retain_pattern": "sub/*.db"}, "must be a file-name glob without '/'"),
    ({"path": "{tmp}/s.db", "retain": 0, "retain_pattern": "*.db"}, "retain: must be at least 1"),
    ({"path": "{tmp}/s.db", "retain": 2}, "parameters are required together: retain, retain_pattern"),
]


def test_snapshot_bad_input_is_named_and_writes_nothing(etcd_single, tmp_path):
    def fill(args: dict) -> dict:
        return {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in args.items()}

    results = run_modules([("etcd_snapshot", {"endpoints": etcd_single.endpoints, **fill(args)})
                           for args, _unused in SNAPSHOT_BAD_INPUT])
    for (args, message), r in zip(SNAPSHOT_BAD_INPUT, results):
        assert r["failed"] and message in r["msg"], (args, r["msg"])
    assert list(tmp_path.iterdir()) == []


# -- etcd_auth -------------------------------------------------------------------------------------
@pytest.fixture
def plain_etcd(tmp_path):
    """One member with auth off, for tests that switch auth on."""
    server = make_server(tmp_path / "etcd", "a")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _calico_auth(server, calico_password: str = "calico-pw") -> dict:
    return {
        "endpoints": server.endpoints, "user": "root", "password": "root-pw",
        "roles": [{"name": "calico", "permissions": [{"key": "/calico/", "prefix": True,
                                                       "permission": "readwrite"}]}],
        "users": [{"name": "root", "password": "root-pw", "roles": ["root"]},
                  {"name": "calico", "password": calico_password, "roles": ["calico"]}],
        "auth_enabled": True,
    }


def _put(server, key: str, user: str | None) -> subprocess.CompletedProcess:
    cmd = [ETCDCTL, "--endpoints", ",".join(server.endpoints)] + (["--user", user] if user else [])
    return subprocess.run([*cmd, "put", key, "v"], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, ETCDCTL_API="3"), check=False)


def test_auth_check_mode_writes_nothing(plain_etcd):
    r = _ok(run_module("etcd_auth", _calico_auth(plain_etcd), check=True, diff=True))
    assert r["changed"] is True and r["auth_enabled"] is True
    assert r["actions"][-1] == "enabled auth" and "created role calico" in r["actions"]
    assert '"prefix": true' in r["_stdout"] and "root-pw" not in r["_stdout"] and "calico-pw" not in r["_stdout"]
    assert plain_etcd.etcdctl("user", "list").split() == [] and plain_etcd.etcdctl("role", "list").split() == []
    assert _put(plain_etcd, "/registry/x", None).returncode == 0  # auth still off


def test_auth_confines_calico_to_its_prefix_and_reruns_unchanged(plain_etcd):
    args = _calico_auth(plain_etcd)
    r = _ok(run_module("etcd_auth", args))
    assert r["changed"] is True
    assert r["roles"]["calico"]["permissions"] == [{"key": "/calico/", "range_end": "/calico0",
                                                    "permission": "readwrite", "prefix": True}]

    assert _put(plain_etcd, "/calico/x", "calico:calico-pw").returncode == 0
    denied = _put(plain_etcd, "/registry/x", "calico:calico-pw")
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    assert _put(plain_etcd, "/calico/x", None).returncode != 0  # anonymous refused: auth is on

    again = _ok(run_module("etcd_auth", args, diff=True))  # auth is on now: connects as root
    assert again["changed"] is False and again["actions"] == []
    assert _ok(run_module("etcd_auth", {**args, "update_password": "always"}))["changed"] is False

    changed = _ok(run_module("etcd_auth", {**_calico_auth(plain_etcd, "new-pw"), "update_password": "always"},
                             check=True))
    assert changed["actions"] == ["changed the password of user calico"]
    assert _put(plain_etcd, "/calico/x", "calico:calico-pw").returncode == 0  # check mode kept the old one
    _ok(run_module("etcd_auth", {**_calico_auth(plain_etcd, "new-pw"), "update_password": "always"}))
    assert _put(plain_etcd, "/calico/x", "calico:new-pw").returncode == 0
    assert _put(plain_etcd, "/calico/x", "calico:calico-pw").returncode != 0

    narrowed = {**args, "roles": [{"name": "calico", "permissions": [
        {"key": "/calico/", "prefix": True, "permission": "read"}]}], "users": []}
    r = _ok(run_module("etcd_auth", narrowed))
    assert r["actions"] == ["granted read on '/calico/'..'/calico0' to role calico"]
    assert _put(plain_etcd, "/calico/x", "calico:new-pw").returncode != 0

    refused = run_module("etcd_auth", {**args, "users": [{"name": "root", "state": "absent"}], "roles": []})
    assert refused["failed"] and "user root does not exist after this change" in refused["msg"]


def test_auth_enable_without_root_is_refused_before_any_write(plain_etcd):
    args = _calico_auth(plain_etcd)
    args["users"] = args["users"][1:]
    r = run_module("etcd_auth", args)
    assert r["failed"]
    assert r["msg"] == ("auth_enabled: true: etcd needs a user named root holding the role root while auth is on, "
                        "and user root does not exist after this change; add {name: root, password: ..., "
                        "roles: [root]} to users")
    assert plain_etcd.etcdctl("role", "list").split() == [] and plain_etcd.etcdctl("user", "list").split() == []

    args["users"].append({"name": "root", "password": "root-pw", "roles": []})
    r = run_module("etcd_auth", args)
    assert r["failed"] and "user root lacks the role root" in r["msg"]


AUTH_BAD_INPUT = [
    ({"roles": [{"name": "root", "permissions": []}]}, "roles: 'root' is etcd's built-in role"),
    ({"roles": [{"name": "r", "permissions": [
        {"key": "/a/", "prefix": True, "range_end": "/b", "permission": "read"}]}]},
     "parameters are mutually exclusive: range_end|prefix found in roles -> permissions"),
    ({"roles": [{"name": "r", "permissions": [{"key": "/b", "range_end": "/a", "permission": "read"}]}]},
     "roles[r].permissions[0].range_end: '/a' must sort after key '/b'"),
    ({"roles": [{"name": "r", "permissions": [{"key": "/a", "permission": "all"}]}]},
     "value of permission must be one of: read, write, readwrite, got: all"),
    ({"roles": [{"name": "r", "permissions": []}, {"name": "r"}]}, "roles: role 'r' is listed twice"),
    ({"users": [{"name": "u", "password": "secret-one", "roles": ["nope"]}]},
     "users[u].roles: role 'nope' does not exist and is not declared present in roles"),
    ({"users": [{"name": "u", "roles": []}]}, "users[u].password: required to create user 'u'"),
    ({"users": [{"name": "u", "password": "secret-one"}, {"name": "u", "password": "secret-two"}]},
     "users: user 'u' is listed twice"),
    ({"users": [{"name": "u", "password": "secret-one", "roles": ["r"]}], "roles": [{"name": "r", "state": "absent"}]},
     "users[u].roles: role 'r' does not exist"),
]


def test_auth_bad_input_is_named_and_writes_nothing(plain_etcd):
    calls = [("etcd_auth", {"endpoints": plain_etcd.endpoints, **args}) for args, _unused in AUTH_BAD_INPUT]
    results = run_modules(calls)
    for (args, message), r in zip(AUTH_BAD_INPUT, results):
        assert r["failed"] and message in r["msg"], (args, r["msg"])
    assert plain_etcd.etcdctl("role", "list").split() == [] and plain_etcd.etcdctl("user", "list").split() == []
