"""Session-wide real etcd servers; each test gets a wiped keyspace."""

from __future__ import annotations

import pytest
from etcd_fixtures import EtcdServer, make_server, make_tls_server


def _server(tmp_path_factory, name: str, **kwargs) -> EtcdServer:
    server = make_server(tmp_path_factory.mktemp(name), name, **kwargs)
    return server


@pytest.fixture(scope="session")
def _etcd_single_server(tmp_path_factory):
    server = _server(tmp_path_factory, "single", enable_v2=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def etcd_single(_etcd_single_server):
    _etcd_single_server.wipe()
    return _etcd_single_server


@pytest.fixture(scope="session")
def _etcd_cluster3_server(tmp_path_factory):
    server = _server(tmp_path_factory, "c3m", size=3)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def etcd_cluster3(_etcd_cluster3_server):
    server = _etcd_cluster3_server
    for index, member in enumerate(server.members):
        if member.proc is None:
            server.restart_member(index)
    server.wipe()
    return server


@pytest.fixture(scope="session")
def etcd_tls(tmp_path_factory):
    server = make_tls_server(tmp_path_factory.mktemp("tls"), "tls")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def etcd_auth(tmp_path_factory):
    server = _server(tmp_path_factory, "auth")
    server.start()
    server.etcdctl("user", "add", "root:rootpw")
    server.etcdctl("role", "add", "calico")
    server.etcdctl("role", "grant-permission", "calico", "readwrite", "/calico/", "/calico0")
    server.etcdctl("user", "add", "calico:calicopw")
    server.etcdctl("user", "grant-role", "calico", "calico")
    server.etcdctl("auth", "enable")
    server.auth = {"user": "calico", "password": "calicopw"}
    yield server
    server.stop()
