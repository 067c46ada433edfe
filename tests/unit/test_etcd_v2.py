"""Unit tests for the etcd v2 client's pure parts (tree flattening, error causes, input checks)."""

from __future__ import annotations

import socket
import ssl

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.etcd import v2 as etcd_v2


def test_leaves_drop_directories_and_keep_key_order_and_ttl():
    tree = {"key": "/a", "dir": True, "nodes": [
        {"key": "/a/z", "value": "1"},
        {"key": "/a/d", "dir": True, "nodes": [{"key": "/a/d/x", "value": "2", "ttl": 30,
                                                "expiration": "2030-01-01T00:00:00Z"}]},
        {"key": "/a/empty", "dir": True},
    ]}
    leaves = list(etcd_v2._leaves(tree))
    assert [(n.key, n.value, n.ttl) for n in leaves] == [("/a/d/x", "2", 30), ("/a/z", "1", None)]


@pytest.mark.parametrize(("prefix", "key", "depth"), [
    ("/calico", "/calico", 0), ("/calico", "/calico/v1", 1), ("/calico/", "/calico/v1/host/h1", 3),
])
def test_depth(prefix, key, depth):
    assert etcd_v2._depth(prefix, key) == depth


@pytest.mark.parametrize(("exc", "text"), [
    (ConnectionRefusedError(), "connection refused"),
    (TimeoutError(), "timed out"),
    (ssl.SSLError(1, "certificate verify failed"), "TLS error"),
    (socket.gaierror(-2, "Name or service not known"), "name resolution failed"),
])
def test_cause_is_short_and_human(exc, text):
    assert text in etcd_v2._cause(exc)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"endpoints": []}, "at least one"),
    ({"endpoints": ["127.0.0.1:2379"]}, "must be http"),
    ({"endpoints": ["http://127.0.0.1:2379"], "client_cert": "/c.pem"}, "client_cert and client_key"),
    ({"endpoints": ["http://127.0.0.1:2379"], "password": "x"}, "password: given without user"),
    ({"endpoints": ["http://127.0.0.1:2379"], "ca_cert": "/does/not/exist.pem"}, "TLS files"),
])
def test_bad_connection_options_are_refused_before_any_request(kwargs, message):
    with pytest.raises(etcd_v2.EtcdV2Error, match=message):
        etcd_v2.EtcdV2Client(**kwargs)


def test_comma_separated_endpoints_and_keys_path_quoting():
    client = etcd_v2.EtcdV2Client("http://127.0.0.1:1,http://127.0.0.1:2")
    assert client.endpoints == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert client._keys_path("/calico/v1/host/h 1") == "/v2/keys/calico/v1/host/h%201"


def test_leaves_under_a_ttl_directory_take_the_ttl_that_ends_first():
    tree = {"key": "/a", "dir": True, "nodes": [
        {"key": "/a/free", "value": "0"},
        {"key": "/a/t", "dir": True, "ttl": 300, "nodes": [
            {"key": "/a/t/k", "value": "1"},
            {"key": "/a/t/own", "value": "2", "ttl": 100},
            {"key": "/a/t/long", "value": "3", "ttl": 900},
            {"key": "/a/t/sooner", "dir": True, "ttl": 50, "nodes": [{"key": "/a/t/sooner/x", "value": "4"}]},
        ]},
    ]}
    got = {n.key: (n.ttl, n.expires_with) for n in etcd_v2._leaves(tree)}
    assert got == {"/a/free": (None, None), "/a/t/k": (300, "/a/t"), "/a/t/own": (100, None),
                   "/a/t/long": (300, "/a/t"), "/a/t/sooner/x": (50, "/a/t/sooner")}
    assert etcd_v2._to_leaf({"key": "/b", "value": "v"}, ("/above", 20)).expires_with == "/above"
