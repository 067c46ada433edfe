"""Unit tests for the Calico v1 → v3 converters (calico-upgrade semantics, reference §4)."""

from __future__ import annotations

import hashlib
import json

import pytest
from datagen import calico_v1_dataset as gen
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.kubescale.calico.plugins.module_utils.calico import resources as cr
from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import NAME_RE
from ansible_collections.kubescale.calico.plugins.module_utils.migration import v1_convert as v1c
from ansible_collections.kubescale.calico.plugins.module_utils.migration import v1_model

# (input, normalised, qualifier expected) — libcalico-go names_test.go's table
NAMES = [
    ("abcdef", "abcdef", False), ("Abcdef", "abcdef", True), ("abc-def", "abc-def", False),
    ("abc---def", "abc---def", False), ("abc/def", "abc.def", True), ("abc$$def", "abc-def", True),
    ("abc$!$def", "abc-def", True), ("abc..def", "abc.def", True), ("abc...def", "abc.def", True),
    ("abc.-def", "abc.def", True), ("abc.-.def", "abc.def", True), ("abc-.def", "abc.def", True),
    ("abc-.-def", "abc.def", True), ("aBcDe019", "abcde019", True), ("-abc.def", "abc.def", True),
    ("abc.def-", "abc.def", True), (".abc.def", "abc.def", True), ("abc.def.-", "abc.def", True),
    ("$ABC/DeF-123.-456!", "abc.def-123.456", True),
]


@pytest.mark.parametrize(("v1", "v3", "qualified"), NAMES)
def test_convert_name_normalises_and_qualifies_changed_names(v1, v3, qualified):
    out = v1_model.convert_name(v1)
    if not qualified:
        assert out == v3
        return
    assert out == f"{v3}-{hashlib.sha1(v1.encode()).hexdigest()[:8]}"
    other = v1_model.convert_name(v1.upper())
    assert other[:-9] == v3 and other != out


@pytest.mark.parametrize(("v1", "v3", "qualified"), NAMES)
def test_convert_name_no_dots_turns_dots_into_dashes(v1, v3, qualified):
    out = v1_model.convert_name_no_dots(v1)
    base = v3.replace(".", "-")
    assert out == (f"{base}-{hashlib.sha1(v1.encode()).hexdigest()[:8]}" if qualified else base)


@pytest.mark.parametrize(("v1", "v3", "_q"), NAMES)
def test_convert_node_name_has_no_qualifier(v1, v3, _q):
    assert v1_model.convert_node_name(v1) == v3


@given(st.text(max_size=40))
def test_normalised_names_are_valid_or_empty(text):
    name = v1_model.normalize_name(text)
    assert name == "" or NAME_RE.match(name)
    assert v1_model.normalize_name(name) == name  # idempotent


@pytest.mark.parametrize(("ip", "name"), [
    ("10.0.0.1", "10-0-0-1"), ("192.168.0.1", "192-168-0-1"),
    ("Aa:bb::", "00aa-00bb-0000-0000-0000-0000-0000-0000"),
    ("0Aa:bb::50", "00aa-00bb-0000-0000-0000-0000-0000-0050"),
])
def test_convert_ip_to_name(ip, name):
    assert v1_model.convert_ip_to_name(ip) == name


@pytest.mark.parametrize(("cidr", "name"), [
    ("10.0.0.0/8", "10-0-0-0-8"), ("192.168.0.0/16", "192-168-0-0-16"), ("fd00:1::/64", "fd00-1---64"),
])
def test_cidr_to_name(cidr, name):
    assert v1_model.cidr_to_name(cidr) == name


def test_global_and_node_bgp_peer_names():
    peer = v1c.convert_bgp_peer('{"ip":"10.0.0.1","as_num":"64512"}', None)
    assert peer["metadata"]["name"] == "10-0-0-1"
    assert peer["spec"] == {"peerIP": "10.0.0.1", "asNumber": 64512}
    node_peer = v1c.convert_bgp_peer('{"ip":"10.0.0.1","as_num":"64512"}', "Node1")
    assert node_peer["metadata"]["name"] == "node1.10-0-0-1"
    assert node_peer["spec"]["node"] == "node1"
    v6 = v1c.convert_bgp_peer('{"ip":"2006::1","as_num":"1.10"}', None)
    assert v6["metadata"]["name"] == "2006-0000-0000-0000-0000-0000-0000-0001"
    assert v6["spec"]["asNumber"] == 65546


def test_ip_pool_name_and_modes():
    pool = v1c.convert_ip_pool('{"cidr":"10.0.0.0/8","ipip":"tunl0","ipip_mode":"cross-subnet","masquerade":true}')
    assert pool["metadata"]["name"] == "10-0-0-0-8"
    assert pool["spec"]["ipipMode"] == "CrossSubnet" and pool["spec"]["natOutgoing"] is True
    assert pool["spec"]["blockSize"] == 26 and pool["spec"]["nodeSelector"] == "all()"
    assert v1c.convert_ip_pool('{"cidr":"10.0.0.0/8","ipip":"tunl0"}')["spec"]["ipipMode"] == "Always"
    assert v1c.convert_ip_pool('{"cidr":"10.0.0.0/8","ipip":"","ipip_mode":"always"}')["spec"]["ipipMode"] == "Never"
    assert v1c.convert_ip_pool('{"cidr":"fd00::/64"}')["spec"]["blockSize"] == 122


def test_k8s_workload_endpoint_name_namespace_and_profiles():
    raw = json.dumps({"name": "cali1", "active_instance_id": "abc123", "profile_ids": ["k8s_ns.default"],
                      "ipv4_nets": ["10.1.2.3/32"], "labels": {"calico/k8s_ns": "default", "app": "web"}})
    wep = v1c.convert_workload_endpoint("node1", "k8s", "default.nginx-abc", "eth0", raw)
    assert wep["metadata"]["name"] == "node1-k8s-nginx--abc-eth0"
    assert wep["metadata"]["namespace"] == "default"
    assert wep["metadata"]["labels"] == {"projectcalico.org/namespace": "default", "app": "web"}
    assert wep["spec"]["profiles"] == ["kns.default"]
    assert wep["spec"]["pod"] == "nginx-abc" and wep["spec"]["containerID"] == "abc123"
    assert cr.validate(wep)["metadata"]["name"] == "node1-k8s-nginx--abc-eth0"


def test_k8s_workload_id_without_namespace_is_a_conversion_error():
    with pytest.raises(ValueError, match="malformed k8s workload ID 'nginx'"):
        v1c.convert_workload_endpoint("node1", "k8s", "nginx", "eth0", "{}")


def test_other_orchestrators_use_default_namespace():
    cni = v1c.convert_workload_endpoint("n", "cni", "c0ffee", "eth0", '{"name":"x"}')
    assert cni["metadata"] == {"name": "n-cni-c0ffee-eth0", "namespace": "default"}
    lib = v1c.convert_workload_endpoint("n", "libnetwork", "w", "ep", '{"name":"x"}')
    assert lib["metadata"]["name"] == "n-libnetwork-libnetwork-ep"
    other = v1c.convert_workload_endpoint("n", "mesos", "Task_1", "ep", '{"name":"x"}')
    assert other["spec"]["workload"] == v1_model.convert_name("Task_1")


def test_profile_kns_name_and_tags_become_labels():
    parts = {"labels": ("k", '{"a":"1"}'), "tags": ("k", '["t1"]'), "rules": ("k", '{"inbound_rules":[]}')}
    prof = v1c.convert_profile("k8s_ns.kube-system", parts)
    assert prof["metadata"]["name"] == "kns.kube-system"
    assert prof["spec"]["labelsToApply"] == {"a": "1", "t1": ""}
    with pytest.raises(ValueError, match="tag 'a'"):
        v1c.convert_profile("p", {"labels": ("k", '{"a":"1"}'), "tags": ("k", '["a"]')})


def test_policy_name_selector_types_and_rules():
    raw = json.dumps({"order": 10.0, "selector": "calico/k8s_ns == 'x'",
                      "inbound_rules": [{"action": "next-tier", "src_tag": "t", "src_selector": "a == 'b'",
                                         "protocol": "tcp", "src_net": "10.0.0.5/8"}],
                      "outbound_rules": [{}]})
    pol = v1c.convert_policy("allow.dns", raw)
    assert pol["metadata"]["name"] == v1_model.convert_name_no_dots("allow.dns")
    assert pol["spec"]["selector"] == "projectcalico.org/namespace == 'x'"
    assert pol["spec"]["types"] == ["Ingress", "Egress"] and pol["spec"]["order"] == 10
    rule = pol["spec"]["ingress"][0]
    assert rule["action"] == "Pass" and rule["protocol"] == "TCP"
    assert rule["source"] == {"nets": ["10.0.0.0/8"], "selector": "(a == 'b') && t == ''"}
    assert pol["spec"]["egress"][0]["action"] == "Allow"
    stored = cr.validate(v1c.convert_policy("allow-dns", '{"selector":"all()"}'))
    assert stored["metadata"]["name"] == "default.allow-dns"
    pre = v1c.convert_policy("p", '{"pre_dnat":true}')["spec"]
    assert pre["types"] == ["Ingress"] and pre["applyOnForward"] is True


def test_node_addresses_tunnel_and_as():
    comp = {"metadata": "{}", "bgp_ip_addr_v4": "10.0.0.5", "bgp_network_v4": "10.0.0.0/24",
            "bgp_ip_addr_v6": "", "bgp_as_num": "64513",
            "orchestrator_refs": '[{"orchestrator":"k8s","nodeName":"Node_1"}]'}
    node = v1c.convert_node("Node_1", comp, "192.168.0.1")
    assert node["metadata"]["name"] == "node-1"
    assert node["spec"]["bgp"] == {"ipv4Address": "10.0.0.5/24", "asNumber": 64513,
                                   "ipv4IPIPTunnelAddr": "192.168.0.1"}
    assert v1c.convert_node("h", {"metadata": "{}", "bgp_ip_addr_v4": "10.0.0.5"}, None)["spec"]["bgp"] == {
        "ipv4Address": "10.0.0.5/32"}
    assert "bgp" not in v1c.convert_node("h", {"metadata": "{}"}, None)["spec"]


def test_felix_config_types_and_durations():
    errors: list = []
    spec = v1c.convert_felix_config({"LogSeverityScreen": "WARNING", "IpInIpEnabled": "true",
                                     "RouteRefreshInterval": "90", "IptablesLockProbeIntervalMillis": "50",
                                     "FailsafeOutboundHostPorts": "none", "IpInIpMtu": "x", "Unknown": "1"},
                                    "/calico/v1/config/", errors)
    assert spec == {"logSeverityScreen": "Warning", "ipipEnabled": True, "routeRefreshInterval": "1m30s",
                    "iptablesLockProbeInterval": "50ms", "failsafeOutboundHostPorts": []}
    assert errors and errors[0]["v1_key"] == "/calico/v1/config/IpInIpMtu"


@pytest.mark.parametrize(("secs", "text"), [(0, "0s"), (1, "1s"), (90, "1m30s"), (3600, "1h0m0s"),
                                            (0.05, "50ms"), (1.5, "1.5s"), (86400, "24h0m0s")])
def test_go_duration(secs, text):
    assert v1c.go_duration(secs) == text


@pytest.mark.parametrize(("version", "ok"), [("v2.6.5", True), ("v2.6.12", True), ("2.6.5-rc1", True),
                                             ("v2.6.4", False), ("v3.0.1", False), ("junk", False), (None, False)])
def test_version_gate(version, ok):
    if ok:
        assert v1c.check_version(version) == version
    else:
        with pytest.raises(v1_model.V1Error):
            v1c.check_version(version)


def _data(pairs) -> v1_model.V1Data:
    data = v1_model.V1Data()
    for k, v in pairs:
        data.add(k, v)
    return data


def test_generated_dataset_converts_cleanly_in_upgrade_order():
    data = _data(gen.generate(hosts=12, workloads=60, namespaces=3, policies=6))
    conv = v1c.convert(data, validate=cr.validate)
    assert conv.report.ok, conv.report.as_dict(limit=5)
    kinds = [k for k, _unused in conv.resources]
    first = sorted(set(kinds), key=kinds.index)
    assert first == [k for k in v1_model.KIND_ORDER if k in first]
    assert kinds[:3] == ["FelixConfiguration", "ClusterInformation", "FelixConfiguration"]  # default, CI, node.*
    assert conv.report.counts["WorkloadEndpoint"] == 60 and conv.report.counts["Node"] == 12
    assert {f["kind"] for f in conv.report.filtered} == {"GlobalNetworkPolicy", "Profile"}
    ci = dict(conv.resources)["ClusterInformation"]
    assert ci["spec"]["datastoreReady"] is False and ci["spec"]["calicoVersion"] == gen.CALICO_VERSION
    names = {o["metadata"]["name"] for k, o in conv.resources if k == "BGPPeer"}
    assert {"10-0-0-1", "10-0-0-2", "worker-0007.10-240-0-1"} <= names


def test_ipam_affinity_host_converted_and_legacy_empty_value():
    data = _data([
        ("/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26",
         '{"cidr":"10.0.0.0/26","affinity":"host:Node_A","allocations":[],"unallocated":[],"attributes":[]}'),
        ("/calico/ipam/v2/host/Node_A/ipv4/block/10.0.0.0-26", ""),
        ("/calico/ipam/v2/handle/h1", '{"block":{"10.0.0.0/26":1}}'),
    ])
    conv = v1c.convert(data, check_version_flag=False)
    ipam = dict(conv.ipam)
    assert json.loads(ipam["/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26"])["affinity"] == "host:node-a"
    assert json.loads(ipam["/calico/ipam/v2/host/node-a/ipv4/block/10.0.0.0-26"]) == {"state": "", "deleted": False}
    assert ipam["/calico/ipam/v2/handle/h1"] == b'{"block":{"10.0.0.0/26":1}}'


def test_malformed_data_is_reported_not_raised():
    data = _data([
        *gen.generate(hosts=2, workloads=2, namespaces=1, policies=0),
        ("/calico/v1/ipam/v4/pool/10.0.0.0-8", "{not json"),
        ("/calico/v1/host/h1/workload/k8s/nonamespace/endpoint/eth0", "{}"),
        ("/calico/v1/host/Node-X/metadata", "{}"),
        ("/calico/v1/host/node-x/metadata", "{}"),
        ("/calico/bgp/v1/global/peer_v4/10.9.9.9", '{"ip":"10.9.9.9","as_num":"not-a-number"}'),
        ("/calico/v1/host/h2/workload/k8s/ns.-bad-/endpoint/eth0", "{}"),
    ])
    rep = v1c.convert(data, validate=cr.validate).report
    assert not rep.ok
    errs = {e["v1_key"]: e["cause"] for e in rep.conversion_errors}
    assert "invalid JSON" in errs["/calico/v1/ipam/v4/pool/10.0.0.0-8"]
    assert "malformed k8s workload ID" in errs["/calico/v1/host/h1/workload/k8s/nonamespace/endpoint/eth0"]
    assert "not an AS number" in errs["/calico/bgp/v1/global/peer_v4/10.9.9.9"]
    assert "may not start or end" in errs["/calico/v1/host/h2/workload/k8s/ns.-bad-/endpoint/eth0"]
    # ConvertNodeName adds no qualifier, so two hosts differing only in case clash.
    assert [(x["kind"], x["name"]) for x in rep.name_clashes] == [("Node", "node-x")]


def test_validation_errors_are_reported():
    data = _data([(v1_model.VERSION_KEY, "v2.6.12"),
                  ("/calico/v1/ipam/v4/pool/10.0.0.0-30", '{"cidr":"10.0.0.0/30","ipip":""}')])
    rep = v1c.convert(data, validate=cr.validate).report
    assert [e["kind"] for e in rep.validation_errors] == ["IPPool"]
    assert "blockSize" in rep.validation_errors[0]["cause"]
