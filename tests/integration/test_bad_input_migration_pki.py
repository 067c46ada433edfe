"""Bad input to calico_datastore_migrate, etcd_v2_to_v3 and pki_certificate, through Ansible.

Each module's cases run as the tasks of one playbook (tests/integration/playbook_run.py), so
Ansible's argument handling is part of what is tested. Every case must fail with a clear one-line
message, and leave the etcd revision (v3), the v2 source and the files as they were.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from datagen import calico_v1_dataset as gen
from playbook_run import run_modules

from ansible_collections.kubescale.calico.plugins.module_utils.etcd.v2 import EtcdV2Client

SMALL = {"hosts": 4, "workloads": 8, "namespaces": 2, "policies": 2, "host_endpoints": 1}
FOREIGN_KEY = "/calico/resources/v3/projectcalico.org/bgppeers/not-migrated"
DEAD = "http://127.0.0.1:9"


def _one_line_failure(result: dict, pattern: str) -> None:
    msg = result.get("msg", "")
    assert result.get("failed") is True, f"accepted: {result}"
    assert "\n" not in msg.strip() and "Traceback" not in msg, f"not one clear line: {msg!r}"
    assert re.search(pattern, msg), f"{pattern!r} not in {msg!r}"


# -- calico_datastore_migrate -------------------------------------------------------------------
# (overrides of the base arguments, keys dropped from them, what the message must say)
MIGRATE_CASES = [
    pytest.param({}, ["phase"], r"missing required arguments: phase", id="no-phase"),
    pytest.param({"phase": "begin"}, [], r"value of phase must be one of: validate, start, complete, abort, got: begin",
                 id="unknown-phase"),
    pytest.param({"phase": "start"}, ["source"], r"phase is start but all of the following are missing: source",
                 id="start-without-source"),
    pytest.param({"phase": "abort"}, ["source"], r"phase is abort but all of the following are missing: source",
                 id="abort-without-source"),
    pytest.param({"batch_size": 0}, [], r"^batch_size: must be at least 1, got 0$", id="batch-size-0"),
    pytest.param({"lock_ttl": -5}, [], r"^lock_ttl: must be at least 1, got -5$", id="lock-ttl-negative"),
    pytest.param({"settle_time": -1}, [], r"^settle_time: must not be negative, got -1.0$", id="settle-negative"),
    pytest.param({"settle_time": "soon"}, [], r"settle_time.*unable to convert to float", id="settle-not-a-number"),
    pytest.param({"report_limit": -1}, [], r"^report_limit: must not be negative, got -1$", id="report-limit"),
    pytest.param({"progress_file": "/nonexistent-dir/p.jsonl"}, [],
                 r"^progress_file: directory /nonexistent-dir of /nonexistent-dir/p.jsonl does not exist$",
                 id="progress-file-dir"),
    pytest.param({"report_file": "/"}, [], r"^report_file: / is a directory, not a file$", id="report-file-is-dir"),
    pytest.param({"snapshot_dir": "/etc/hostname"}, [], r"^snapshot_dir: /etc/hostname exists and is not a directory$",
                 id="snapshot-dir-is-file"),
    pytest.param({"batchsize": 10}, [], r"Unsupported parameters for .*calico_datastore_migrate.* module: batchsize",
                 id="misspelt-option"),
    pytest.param({"source": {"endpoint": "http://127.0.0.1:2379"}}, [], r"Unsupported parameters .*endpoint",
                 id="misspelt-source-option"),
    pytest.param({"source": {"endpoints": ["ftp://x"]}}, [], r"^endpoints: 'ftp://x' must be http\(s\)://",
                 id="source-url-scheme"),
    pytest.param({"source": {"endpoints": []}}, [], r"^endpoints: at least one etcd v2 endpoint URL is required$",
                 id="source-no-endpoints"),
    pytest.param({"source": {"endpoints": ["http://127.0.0.1:2379"], "client_cert": "/etc/hostname"}}, [],
                 r"^client_cert and client_key must be given together$", id="source-cert-without-key"),
    pytest.param({"source": {"endpoints": ["http://127.0.0.1:2379"], "password": "x"}}, [],
                 r"^password: given without user$", id="source-password-without-user"),
    pytest.param({"source": {"endpoints": [DEAD], "timeout": 2}}, [],
                 rf"^etcd v2 unreachable: {DEAD}: connection refused$", id="source-unreachable"),
    pytest.param({}, [], r"^the target etcd already holds 1 keys under /calico/; refusing to mix them",
                 id="start-on-foreign-target"),
    pytest.param({"phase": "validate"}, [], r"^validate found 1 problem\(s\) that would refuse start: the target "
                 r"holds 1 keys under /calico/ \(allow_existing_v3_data not set\)", id="validate-with-problems"),
    pytest.param({"phase": "complete"}, ["source"],
                 r"^no ClusterInformation 'default' in the target: run phase=start first$", id="complete-before-start"),
    pytest.param({"fail_on_problems": "sometimes"}, [], r"fail_on_problems.*(not a valid boolean|unable to convert)",
                 id="fail-on-problems-not-bool"),
]


@pytest.fixture(scope="module")
def migrate_world(_etcd_single_server, tmp_path_factory):
    """One v2 source with Calico 2.x data and a target holding one key the migration did not write."""
    server = _etcd_single_server
    server.wipe()
    source = EtcdV2Client(server.endpoints)
    source.delete("/calico", recursive=True)
    gen.write(source, gen.generate(**SMALL))
    server.client().put(FOREIGN_KEY, b'{"kind":"BGPPeer"}')
    base = {"phase": "start", "source": {"endpoints": server.endpoints}, "endpoints": server.endpoints,
            "snapshot_dir": str(tmp_path_factory.mktemp("snaps") / "s"), "settle_time": 0, "lock_ttl": 2}
    calls = []
    for case in MIGRATE_CASES:
        overrides, dropped, _pattern = case.values
        args = {k: v for k, v in {**base, **overrides}.items() if k not in dropped}
        calls.append(("calico_datastore_migrate", args))
    before = (server.revision(), source.read_prefix("/calico"))
    results = run_modules(calls)
    after = (server.revision(), source.read_prefix("/calico"))
    yield {"results": results, "before": before, "after": after, "snapshots": base["snapshot_dir"]}
    source.delete("/calico", recursive=True)


@pytest.mark.parametrize("index", range(len(MIGRATE_CASES)), ids=[c.id for c in MIGRATE_CASES])
def test_calico_datastore_migrate_refuses(migrate_world, index):
    _one_line_failure(migrate_world["results"][index], MIGRATE_CASES[index].values[2])
    assert migrate_world["after"][0] == migrate_world["before"][0], "the target's revision moved"
    assert migrate_world["after"][1] == migrate_world["before"][1], "the v2 source changed"
    assert not os.path.exists(migrate_world["snapshots"])


# -- etcd_v2_to_v3 ---------------------------------------------------------------------------------
COPY_CASES = [
    pytest.param({}, ["prefix"], r"missing required arguments: prefix", id="no-prefix"),
    pytest.param({}, ["source"], r"missing required arguments: source", id="no-source"),
    pytest.param({"prefix": "app"}, [], r"^prefix: 'app' must start with '/'$", id="relative-prefix"),
    pytest.param({"destination_prefix": "copied"}, [], r"^destination_prefix: 'copied' must start with '/'$",
                 id="relative-destination"),
    pytest.param({"prefix": "/app/../etc"}, [], r"^prefix: '/app/../etc' has an empty, '.' or '..' path segment$",
                 id="dotdot-prefix"),
    pytest.param({"destination_prefix": "/a//b"}, [], r"^destination_prefix: '/a//b' has an empty",
                 id="empty-segment-destination"),
    pytest.param({"split_depth": -1}, [], r"^split_depth: must not be negative, got -1$", id="split-depth-negative"),
    pytest.param({"split_depth": "deep"}, [], r"split_depth.*unable to convert to int", id="split-depth-not-int"),
    pytest.param({"hidden_keys": [""]}, [], r"^hidden_keys: an entry is empty", id="hidden-empty"),
    pytest.param({"hidden_keys": ["visible"]}, [],
                 r"^hidden_keys: 'visible' is not hidden \(no path segment below /app starts with '_'\)",
                 id="hidden-not-hidden"),
    pytest.param({"hidden_keys": ["/elsewhere/_x"]}, [], r"^hidden_keys: '/elsewhere/_x' is not under prefix /app$",
                 id="hidden-outside-prefix"),
    pytest.param({"hidden_keys": ["../_x"]}, [], r"^hidden_keys: '../_x' has an empty, '.' or '..' path segment$",
                 id="hidden-dotdot"),
    pytest.param({"hidden_keys": ["_missing"]}, [], r"^hidden_keys: /app/_missing does not exist in the source",
                 id="hidden-missing"),
    pytest.param({"source": {"endpoints": [DEAD], "timeout": 2}}, [],
                 rf"^etcd v2 unreachable: {DEAD}: connection refused$", id="source-unreachable"),
    pytest.param({"source": {"endpoints": []}}, [], r"^endpoints: at least one etcd v2 endpoint URL is required$",
                 id="source-no-endpoints"),
    pytest.param({"source": {"endpoints": ["http://127.0.0.1:2379/v2"]}}, [], r"^endpoints: 'http://127.0.0.1:2379/v2'",
                 id="source-url-path"),
    pytest.param({"prefixes": ["/app"]}, [], r"Unsupported parameters for .*etcd_v2_to_v3.* module: prefixes",
                 id="misspelt-option"),
]


@pytest.fixture(scope="module")
def copy_world(_etcd_single_server):
    server = _etcd_single_server
    server.wipe()
    source = EtcdV2Client(server.endpoints)
    source.delete("/app", recursive=True)
    source.set("/app/a", "1")
    source.set("/app/_h", "hidden")
    base = {"prefix": "/app", "destination_prefix": "/copied", "source": {"endpoints": server.endpoints},
            "endpoints": server.endpoints}
    calls = []
    for case in COPY_CASES:
        overrides, dropped, _pattern = case.values
        calls.append(("etcd_v2_to_v3", {k: v for k, v in {**base, **overrides}.items() if k not in dropped}))
    before = server.revision()
    results = run_modules(calls)
    yield {"results": results, "before": before, "after": server.revision()}
    source.delete("/app", recursive=True)


@pytest.mark.parametrize("index", range(len(COPY_CASES)), ids=[c.id for c in COPY_CASES])
def test_etcd_v2_to_v3_refuses(copy_world, index):
    _one_line_failure(copy_world["results"][index], COPY_CASES[index].values[2])
    assert copy_world["after"] == copy_world["before"], "the target's revision moved"


# -- pki_certificate -------------------------------------------------------------------------------
def _pki_cases(d: Path) -> list:
    """(arguments, what the message must say); ``d`` holds ca.*, other.* and garbage files."""
    leaf = {"path": str(d / "leaf.crt"), "key_path": str(d / "leaf.key"), "kind": "server", "common_name": "etcd-1",
            "subject_alt_names": ["IP:127.0.0.1"], "ca_path": str(d / "ca.crt"), "ca_key_path": str(d / "ca.key")}
    return [
        pytest.param({**leaf, "ca_key_path": str(d / "other.key")},
                     rf"^ca_key_path: {d}/other.key is not the private key of the CA certificate {d}/ca.crt "
                     r"\(their public keys differ\); nothing was written$", id="ca-key-mismatch"),
        pytest.param({**leaf, "ca_path": str(d / "garbage.pem")}, rf"^{d}/garbage.pem: not a PEM certificate$",
                     id="ca-cert-not-pem"),
        pytest.param({**leaf, "ca_key_path": str(d / "garbage.pem")},
                     rf"^{d}/garbage.pem: not a PEM private key without passphrase$", id="ca-key-not-pem"),
        pytest.param({**leaf, "ca_path": str(d / "missing.crt")},
                     rf"^ca_path/ca_key_path: {d}/missing.crt or {d}/ca.key does not exist$", id="ca-missing"),
        pytest.param({k: v for k, v in leaf.items() if k != "ca_path"},
                     r"kind is server but all of the following are missing: ca_path", id="server-without-ca"),
        pytest.param({**leaf, "kind": "intermediate"}, r"value of kind must be one of: ca, server, peer, client",
                     id="unknown-kind"),
        pytest.param({**leaf, "common_name": ""}, r"^common_name: must not be empty$", id="empty-common-name"),
        pytest.param({**leaf, "subject_alt_names": ["IP:10.0.0.300"]},
                     r"^subject_alt_names: 'IP:10.0.0.300' is not an IP address$", id="san-bad-ip"),
        pytest.param({**leaf, "subject_alt_names": ["etcd:2379"]},
                     r"^subject_alt_names: 'etcd:2379' is not a DNS name", id="san-bad-dns"),
        pytest.param({**leaf, "days": 0}, r"^days/renew_before_days: need days >= 1", id="days-0"),
        pytest.param({**leaf, "days": 10, "renew_before_days": 10}, r"^days/renew_before_days: need days >= 1 and "
                     r"0 <= renew_before_days < days$", id="renew-not-below-days"),
        pytest.param({**leaf, "days": "ten"}, r"days.*unable to convert to int", id="days-not-int"),
        pytest.param({**leaf, "owner": "no-such-user-i12c"}, r"^owner: no such user 'no-such-user-i12c' on this host$",
                     id="unknown-owner"),
        pytest.param({**leaf, "group": "no-such-group-i12c"},
                     r"^group: no such group 'no-such-group-i12c' on this host$", id="unknown-group"),
        pytest.param({**leaf, "mode": "0999"}, r"^mode: '0999' is neither octal", id="bad-mode"),
        pytest.param({**leaf, "path": str(d / "no-dir" / "leaf.crt")},
                     rf"^path: directory {d}/no-dir of {d}/no-dir/leaf.crt does not exist$", id="missing-directory"),
        pytest.param({**leaf, "path": str(d)}, rf"^path: {d} is a directory, not a file$", id="path-is-directory"),
        pytest.param({**leaf, "key_path": str(d / "garbage.pem")},
                     rf"^{d}/garbage.pem: not a PEM private key without passphrase$", id="key-not-pem"),
        pytest.param({**leaf, "kind": "ca", "key_path": str(d / "garbage.pem")},
                     rf"^{d}/garbage.pem: not a PEM private key without passphrase$", id="ca-kind-key-not-pem"),
    ]


PKI_IDS = [c.id for c in _pki_cases(Path("/x"))]


def _files(d: Path) -> dict:
    return {str(p): (p.read_bytes(), p.stat().st_mode, p.stat().st_uid) for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pki_world(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki-bad")
    ca = {"kind": "ca", "common_name": "etcd-ca", "days": 30, "renew_before_days": 1}
    made = run_modules([("pki_certificate", {**ca, "path": str(d / "ca.crt"), "key_path": str(d / "ca.key")}),
                        ("pki_certificate", {**ca, "path": str(d / "other.crt"), "key_path": str(d / "other.key")})])
    assert all(r["changed"] for r in made), made
    (d / "garbage.pem").write_text("not PEM at all\n")
    cases = _pki_cases(d)
    before = _files(d)
    results = run_modules([("pki_certificate", c.values[0]) for c in cases])
    return {"cases": cases, "results": results, "before": before, "after": _files(d)}


@pytest.mark.parametrize("index", range(len(PKI_IDS)), ids=PKI_IDS)
def test_pki_certificate_refuses(pki_world, index):
    _one_line_failure(pki_world["results"][index], pki_world["cases"][index].values[1])
    assert pki_world["after"] == pki_world["before"], "files were written or changed"
