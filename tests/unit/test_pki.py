"""pki.ensure_certificate: issues once, keeps what fits, reissues exactly when a property changes."""

from __future__ import annotations

import os
import ssl
import stat

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.pki import (
    PkiError,
    ensure_certificate,
)


@pytest.fixture
def ca(tmp_path):
    ca_crt, ca_key = str(tmp_path / "ca.crt"), str(tmp_path / "ca.key")
    ensure_certificate(ca_crt, ca_key, "ca", "test-ca", days=30, renew_before_days=1)
    return ca_crt, ca_key


def _leaf(tmp_path, ca, **kw):
    args = {"kind": "server", "common_name": "etcd-1", "sans": ["IP:10.0.0.1", "DNS:etcd-1"],
            "ca_path": ca[0], "ca_key_path": ca[1], "days": 30, "renew_before_days": 1}
    args.update(kw)
    return ensure_certificate(str(tmp_path / "s.crt"), str(tmp_path / "s.key"), **args)


def test_second_run_changes_nothing_and_key_is_private(tmp_path, ca):
    assert _leaf(tmp_path, ca)["changed"] is True
    assert _leaf(tmp_path, ca)["changed"] is False
    assert stat.S_IMODE(os.stat(tmp_path / "s.key").st_mode) == 0o600


def test_new_san_reissues_and_keeps_key(tmp_path, ca):
    _leaf(tmp_path, ca)
    key_before = (tmp_path / "s.key").read_bytes()
    res = _leaf(tmp_path, ca, sans=["IP:10.0.0.2", "DNS:etcd-1"])
    assert res["changed"] and "subject alternative names differ" in res["actions"][0]
    assert (tmp_path / "s.key").read_bytes() == key_before


def test_new_ca_reissues_leaf(tmp_path, ca):
    _leaf(tmp_path, ca)
    other = (str(tmp_path / "o.crt"), str(tmp_path / "o.key"))
    ensure_certificate(other[0], other[1], "ca", "test-ca", days=30, renew_before_days=1)
    res = _leaf(tmp_path, other)
    assert res["changed"]
    assert "signature does not verify" in res["actions"][0]  # same CA name, other key


def test_check_mode_writes_nothing(tmp_path, ca):
    res = _leaf(tmp_path, ca, check_mode=True)
    assert res["changed"] and not (tmp_path / "s.crt").exists() and not (tmp_path / "s.key").exists()


def test_leaf_verifies_with_ssl_against_ca(tmp_path, ca):
    _leaf(tmp_path, ca, kind="peer")
    ctx = ssl.create_default_context(cafile=ca[0])
    ctx.load_cert_chain(str(tmp_path / "s.crt"), str(tmp_path / "s.key"))  # key matches cert


def test_bad_san_names_the_field(tmp_path, ca):
    with pytest.raises(PkiError, match="subject_alt_names"):
        _leaf(tmp_path, ca, sans=["IP:not-an-ip"])


def test_leaf_without_ca_is_refused(tmp_path):
    with pytest.raises(PkiError, match="ca_path"):
        ensure_certificate(str(tmp_path / "c.crt"), str(tmp_path / "c.key"), "client", "root")


def test_return_content_gives_matching_pems(tmp_path, ca):
    res = _leaf(tmp_path, ca, return_content=True)
    assert res["certificate"] == (tmp_path / "s.crt").read_text()
    assert res["private_key"] == (tmp_path / "s.key").read_text()


def test_ca_key_of_another_ca_is_refused_before_any_write(tmp_path, ca):
    other = (str(tmp_path / "o.crt"), str(tmp_path / "o.key"))
    ensure_certificate(other[0], other[1], "ca", "test-ca", days=30, renew_before_days=1)
    with pytest.raises(PkiError, match=r"ca_key_path: .*o\.key is not the private key of the CA certificate .*ca\.crt"):
        _leaf(tmp_path, (ca[0], other[1]))
    assert not (tmp_path / "s.crt").exists() and not (tmp_path / "s.key").exists()


@pytest.mark.parametrize("san", ["foo:bar", "-bad.example", "a..b", "exa mple"])
def test_malformed_dns_names_are_refused(tmp_path, ca, san):
    with pytest.raises(PkiError, match="is not a DNS name"):
        _leaf(tmp_path, ca, sans=[san])
