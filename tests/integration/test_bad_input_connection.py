"""Bad connection input and unreachable etcd, refused THROUGH THE MODULES with one clear line and no write.

Every case is a ``calico_resource`` call (a writing module) that would create a BGPPeer named after
the case; it must fail with a one-line message matching the case's pattern, and the etcd revision
must be the same after the whole table as before it (so no case wrote anything). The cases of one
etcd run as the tasks of one playbook (one ansible-playbook start per etcd, not per case).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from etcd_fixtures import free_port
from playbook_run import run_modules


@dataclass
class Case:
    id: str
    args: dict  # connection options; "{ep}" in a string is replaced by the etcd's first endpoint
    pattern: str  # the whole message (re.fullmatch); "{ep}" as above, "{dir}" for the case files' directory


def _peer(name: str) -> dict:
    return {"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3", "metadata": {"name": name},
            "spec": {"peerIP": "10.0.0.1", "asNumber": 64512}}


URL = r"must be http\(s\)://host:port"
DEAD = f"http://127.0.0.1:{free_port()}"
DEAD2 = f"http://127.0.0.1:{free_port()}"

PLAIN_CASES = [
    # URLs, schemes, ports
    Case("scheme-ftp", {"endpoints": ["ftp://127.0.0.1:2379"]},
         rf"endpoints: 'ftp://127\.0\.0\.1:2379' {URL} \(the scheme is 'ftp'\)"),
    Case("scheme-unix", {"endpoints": ["unix:///run/etcd.sock"]},
         rf"endpoints: 'unix:///run/etcd\.sock' {URL} \(the scheme is 'unix'\)"),
    Case("url-with-path", {"endpoints": ["{ep}/v3/kv/range"]},
         rf"endpoints: '{{ep}}/v3/kv/range' {URL} \(no path: '/v3/kv/range'\)"),
    Case("url-with-query", {"endpoints": ["{ep}?timeout=5"]},
         rf"endpoints: '{{ep}}\?timeout=5' {URL} \(no query or fragment\)"),
    Case("url-without-host", {"endpoints": ["http://:2379"]},
         rf"endpoints: 'http://:2379' {URL} \(the host is missing\)"),
    Case("url-with-user", {"endpoints": ["http://root:secret@127.0.0.1:2379"]},
         rf"endpoints: 'http://root:secret@127\.0\.0\.1:2379' {URL} "
         r"\(no user in the URL: give user and password as options\)"),
    Case("url-ipv6-unclosed", {"endpoints": ["http://[::1:2379"]},
         rf"endpoints: 'http://\[::1:2379' {URL} \(Invalid IPv6 URL\)"),
    Case("port-0", {"endpoints": ["http://127.0.0.1:0"]},
         rf"endpoints: 'http://127\.0\.0\.1:0' {URL} \(the port must be a number 1-65535\)"),
    Case("port-65536", {"endpoints": ["http://127.0.0.1:65536"]},
         rf"endpoints: 'http://127\.0\.0\.1:65536' {URL} \(the port must be a number 1-65535\)"),
    Case("port-text", {"endpoints": ["http://127.0.0.1:etcd"]},
         rf"endpoints: 'http://127\.0\.0\.1:etcd' {URL} \(the port must be a number 1-65535\)"),
    Case("no-endpoints", {"endpoints": []}, r"endpoints: at least one etcd endpoint is required"),
    Case("one-bad-among-good", {"endpoints": ["{ep}", "gopher://127.0.0.1:70"]},
         rf"endpoints: 'gopher://127\.0\.0\.1:70' {URL} \(the scheme is 'gopher'\)"),
    Case("https-to-plain-etcd", {"endpoints": ["{eps}"]},
         r"etcd {eps}: TLS handshake failed: the server does not speak TLS \(is it http://\?\)"),
    # timeouts
    Case("timeout-0", {"timeout": 0}, r"timeout: must be a number of seconds greater than 0, got 0\.0"),
    Case("timeout-negative", {"timeout": -5}, r"timeout: must be a number of seconds greater than 0, got -5\.0"),
    Case("timeout-nan", {"timeout": "nan"}, r"timeout: must be a number of seconds greater than 0, got nan"),
    Case("timeout-inf", {"timeout": "inf"}, r"timeout: must be a number of seconds greater than 0, got inf"),
    Case("timeout-text", {"timeout": "ten"},
         r"argument 'timeout' is of type (?:<class 'str'>|str) and we were unable to convert to float: "
         r".*cannot be converted to a float"),
    # auth half-given
    Case("user-without-password", {"user": "calico"}, r"parameters are required together: user, password"),
    Case("password-without-user", {"password": "calicopw"}, r"parameters are required together: user, password"),
    Case("cert-without-key", {"client_cert": "/etc/ssl/certs/ca-certificates.crt"},
         r"parameters are required together: client_cert, client_key"),
    Case("key-without-cert", {"client_key": "/nonexistent/key.pem"},
         r"parameters are required together: client_cert, client_key"),
    # unreachable endpoints
    Case("dead-endpoint", {"endpoints": [DEAD]}, rf"etcd {DEAD}: connection refused or unreachable"),
    Case("dead-endpoints", {"endpoints": [DEAD, DEAD2], "timeout": 3},
         rf"no etcd endpoint answered: {DEAD}: connection refused or unreachable; "
         rf"{DEAD2}: connection refused or unreachable"),
    Case("unknown-host", {"endpoints": ["http://no-such-host.invalid:2379"]},
         r"etcd http://no-such-host\.invalid:2379: cannot resolve the host name \(no such host, or DNS unreachable\)"),
]

TLS_CASES = [
    Case("ca-missing", {"ca_cert": "{dir}/nope.pem"},
         r"ca_cert {dir}/nope\.pem: cannot read \(No such file or directory\)"),
    Case("ca-directory", {"ca_cert": "{dir}"}, r"ca_cert {dir}: cannot read \(Is a directory\)"),
    Case("ca-empty", {"ca_cert": "{dir}/empty.pem"}, r"ca_cert {dir}/empty\.pem: the file is empty"),
    Case("ca-not-pem", {"ca_cert": "{dir}/text.pem"},
         r"ca_cert {dir}/text\.pem: not PEM, no '-----BEGIN CERTIFICATE-----' block found"),
    Case("ca-der", {"ca_cert": "{dir}/ca.der"},
         r"ca_cert {dir}/ca\.der: not PEM, no '-----BEGIN CERTIFICATE-----' block found "
         r"\(it looks like DER: convert it with openssl\)"),
    Case("ca-is-a-key", {"ca_cert": "{key}"}, r"ca_cert {key}: holds [A-Z ]*PRIVATE KEY, not a certificate"),
    Case("ca-corrupt-block", {"ca_cert": "{dir}/corrupt.pem"},
         r"ca_cert {dir}/corrupt\.pem: a CERTIFICATE block that does not parse \(.+\)"),
    Case("cert-not-pem", {"client_cert": "{dir}/text.pem"},
         r"client_cert {dir}/text\.pem: not PEM, no '-----BEGIN CERTIFICATE-----' block found"),
    Case("cert-and-key-swapped", {"client_cert": "{key}", "client_key": "{cert}"},
         r"client_cert {key}: holds [A-Z ]*PRIVATE KEY, not a certificate"),
    Case("key-is-a-certificate", {"client_key": "{cert}"},
         r"client_key {cert}: holds CERTIFICATE, not a private key \(client_cert and client_key swapped\?\)"),
    Case("key-not-pem", {"client_key": "{dir}/text.pem"},
         r"client_key {dir}/text\.pem: not PEM, no '-----BEGIN PRIVATE KEY-----' block found"),
    Case("key-missing", {"client_key": "{dir}/nope-key.pem"},
         r"client_key {dir}/nope-key\.pem: cannot read \(No such file or directory\)"),
    Case("key-of-another-cert", {"client_key": "{other_key}"},
         r"client_key {other_key}: does not match client_cert {cert} \(their public keys differ\)"),
    Case("key-encrypted", {"client_key": "{dir}/encrypted-key.pem"},
         r"client_key {dir}/encrypted-key\.pem: the key is encrypted; give an unencrypted key .*"),
    Case("cert-expired", {"client_cert": "{dir}/expired.pem"},
         r"client_cert {dir}/expired\.pem: expired on [0-9-]+ [0-9:]+ UTC"),
    Case("ca-of-another-pki", {"ca_cert": "{other_ca}"},
         r"etcd {ep}: TLS handshake failed: the server certificate is not signed by ca_cert "
         r"\(or, without ca_cert, by a CA of the system trust store\) \(unable to get local issuer certificate\)"),
    Case("http-to-tls-etcd", {"endpoints": ["{eph}"]}, r"etcd {eph}: the server speaks TLS \(is it https://\?\)"),
    Case("no-client-certificate", {"client_cert": None, "client_key": None},
         r"etcd {ep}: TLS: the server refused the client \(give client_cert and client_key signed by its CA\)"),
]

AUTH_CASES = [
    Case("wrong-password", {"password": "not-the-password"},
         r"etcd {ep}: authentication failed: invalid user or password"),
    Case("unknown-user", {"user": "nobody", "password": "x"},
         r"etcd {ep}: authentication failed: invalid user or password"),
    Case("no-credentials", {"user": None, "password": None},
         r"etcd {ep}: authentication required: auth is enabled, give user and password"),
]


def _fill(text, values: dict, escape: bool):
    if isinstance(text, list):
        return [_fill(t, values, escape) for t in text]
    if not isinstance(text, str):
        return text
    for name, value in values.items():
        text = text.replace("{" + name + "}", re.escape(value) if escape else value)
    return text


def _run_table(server, cases: list[Case], values: dict) -> dict:
    """Run every case as one task of one playbook; {case id: (result, pattern)} plus the revisions."""
    values = {"ep": server.endpoints[0], "eps": server.endpoints[0].replace("http://", "https://"),
              "eph": server.endpoints[0].replace("https://", "http://"), **values}
    calls, patterns = [], {}
    for case in cases:
        args = {**server.conn_params, **{k: _fill(v, values, False) for k, v in case.args.items()}}
        args = {k: v for k, v in args.items() if v is not None}
        args.setdefault("timeout", 5)
        calls.append(("calico_resource", {**args, "definition": _peer(case.id)}))
        patterns[case.id] = _fill(case.pattern, values, True)
    before = server.revision()
    results = run_modules(calls)
    return {"results": dict(zip(patterns, results, strict=True)), "patterns": patterns,
            "before": before, "after": server.revision()}


def _check(table: dict, case_id: str) -> None:
    result, pattern = table["results"][case_id], table["patterns"][case_id]
    assert result.get("failed") is True, f"accepted: {result}"
    msg = result["msg"]
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert re.fullmatch(pattern, msg), f"{msg!r} does not match {pattern!r}"
    assert table["after"] == table["before"], "the etcd revision moved: something was written"


# -- plain etcd ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plain_table(_etcd_single_server):
    _etcd_single_server.wipe()
    return _run_table(_etcd_single_server, PLAIN_CASES, {})


@pytest.mark.parametrize("case_id", [c.id for c in PLAIN_CASES])
def test_bad_connection_input_plain_etcd(plain_table, case_id):
    _check(plain_table, case_id)


# -- TLS etcd ---------------------------------------------------------------------------------------
def _tls_files(pki, directory: Path) -> dict:
    """Wrong TLS files of every kind, next to the good ones of ``pki``."""
    from pki import TestPKI

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "empty.pem").write_text("")
    (directory / "text.pem").write_text("this is not a certificate\n")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    (directory / "ca.der").write_bytes(ca.public_bytes(serialization.Encoding.DER))
    (directory / "corrupt.pem").write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    cert_path, key_path = pki.issue("bad-input-client")
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    (directory / "encrypted-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    now = datetime.datetime.now(datetime.UTC)
    expired = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "old")]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=3)).not_valid_after(now - datetime.timedelta(days=1))
               .sign(ca_key, hashes.SHA256()))
    (directory / "expired.pem").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    _unused, other_key = pki.issue("bad-input-other")
    other = TestPKI(directory / "other-pki", ca_name="some-other-ca")
    return {"dir": str(directory), "cert": str(cert_path), "key": str(key_path), "other_key": str(other_key),
            "other_ca": str(other.ca_cert)}


@pytest.fixture(scope="module")
def tls_table(etcd_tls, tmp_path_factory):
    files = _tls_files(etcd_tls.pki, tmp_path_factory.mktemp("bad-tls"))
    server = etcd_tls
    saved = dict(server.client_tls)
    server.client_tls = {**saved, "client_cert": files["cert"], "client_key": files["key"]}
    try:
        return _run_table(server, TLS_CASES, files)
    finally:
        server.client_tls = saved


@pytest.mark.parametrize("case_id", [c.id for c in TLS_CASES])
def test_bad_connection_input_tls_etcd(tls_table, case_id):
    _check(tls_table, case_id)


# -- etcd with auth ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auth_table(etcd_auth):
    return _run_table(etcd_auth, AUTH_CASES, {})


@pytest.mark.parametrize("case_id", [c.id for c in AUTH_CASES])
def test_bad_connection_input_auth_etcd(auth_table, case_id):
    _check(auth_table, case_id)


def test_the_good_connections_of_the_tables_do_write(etcd_single, etcd_tls, etcd_auth):
    """Control: the same call with each etcd's own options writes, so the refusals above are the input's."""
    servers = (etcd_single, etcd_tls, etcd_auth)
    before = [server.revision() for server in servers]
    results = run_modules([("calico_resource", {**server.conn_params, "definition": _peer(f"control-{i}")})
                           for i, server in enumerate(servers)])
    for server, result, revision in zip(servers, results, before, strict=True):
        assert not result.get("failed") and result["changed"], result.get("msg")
        assert server.revision() == revision + 1
