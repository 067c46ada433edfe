"""Bad input is refused with a message naming the field and the rule, before any write.

Each bad resource travels in a batch with good ones (an update of a stored object and new objects);
the whole call is refused, the etcd revision is unchanged and the keyspace is byte-for-byte the same.
"""

from __future__ import annotations

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import MANAGED_BY_LABEL
from ansible_collections.kubescale.calico.plugins.module_utils.calico.store import CalicoStore
from ansible_collections.kubescale.calico.plugins.module_utils.etcd.client import EtcdClient, EtcdError, Op


def res(kind: str, name: str, spec=None, **meta) -> dict:
    return {"kind": kind, "apiVersion": "projectcalico.org/v3", "metadata": {"name": name, **meta},
            "spec": {} if spec is None else spec}


def peer(name: str, **spec) -> dict:
    return res("BGPPeer", name, {"peerIP": "10.0.0.1", "asNumber": 64512, **spec})


def pool(**spec) -> dict:
    return res("IPPool", "pool-bad", {"cidr": "10.244.0.0/16", **spec})


def bgp_node(**bgp) -> dict:
    return res("Node", "node-bad", {"bgp": bgp})


WEP_SPEC = {"node": "node1", "orchestrator": "k8s", "pod": "nginx-abc", "endpoint": "eth0"}

# (bad resource, what the message must say after "resources[2]: ")
BAD_RESOURCES = [
    pytest.param(res("Pod", "x"), r"kind: 'Pod' is not a supported Calico kind", id="unknown-kind"),
    pytest.param({**peer("p"), "apiVersion": "projectcalico.org/v2"},
                 r"BGPPeer\.apiVersion: 'projectcalico.org/v2' must be projectcalico.org/v3", id="api-version"),
    pytest.param({"kind": "BGPPeer", "spec": {"peerIP": "10.0.0.1"}}, r"BGPPeer\.metadata: is required",
                 id="no-metadata"),
    pytest.param({**peer("p"), "specs": {}}, r"BGPPeer: unknown top-level field\(s\) specs", id="unknown-field"),
    pytest.param(res("BGPPeer", "p", ["peerIP", "10.0.0.1"]), r"BGPPeer\.spec: must be a mapping", id="spec-list"),
    pytest.param(["kind", "BGPPeer"], r"resource: must be a mapping", id="not-a-mapping"),
    pytest.param(peer("Peer_1"), r"BGPPeer\.metadata\.name: 'Peer_1' is not a DNS-1123 subdomain", id="name-chars"),
    pytest.param(peer("p" * 254), r"BGPPeer\.metadata\.name: .* is 254 characters; at most 253", id="name-length"),
    pytest.param(peer("p") | {"metadata": {"name": "p", "namespace": "default"}},
                 r"BGPPeer\.metadata\.namespace: BGPPeer is cluster-scoped and takes no namespace",
                 id="namespace-on-cluster-kind"),
    pytest.param(res("NetworkPolicy", "np"), r"NetworkPolicy\.metadata\.namespace: None is not a DNS-1123 label",
                 id="namespace-missing"),
    pytest.param(res("Node", "n", labels={"bad key": "x"}), r"Node\.metadata\.labels: key 'bad key' is not a qualified",
                 id="label-key"),
    pytest.param(res("Node", "n", labels={"/rack": "x"}), r"Node\.metadata\.labels prefix of '/rack': a non-empty",
                 id="label-key-empty-prefix"),
    pytest.param(res("Node", "n", labels={"rack": "r" * 64}),
                 r"Node\.metadata\.labels\.rack: value .* not a valid label",
                 id="label-value"),
    pytest.param(res("Node", "n", annotations={"note": 5}),
                 r"Node\.metadata\.annotations\.note: annotation values must be strings", id="annotation-value"),
    pytest.param(peer("p", asNumber=4294967296), r"BGPPeer\.spec\.asNumber: 4294967296 is outside the AS number range",
                 id="as-range"),
    pytest.param(peer("p", asNumber="65536.1"), r"BGPPeer\.spec\.asNumber: asdot '65536.1' needs both parts in 0–65535",
                 id="asdot-range"),
    pytest.param(peer("p", asNumber="AS65000"), r"BGPPeer\.spec\.asNumber: 'AS65000' is not an AS number",
                 id="as-text"),
    pytest.param(peer("p", peerIP="10.0.0.300"), r"BGPPeer\.spec\.peerIP: '10.0.0.300' is not", id="peer-ip"),
    pytest.param(peer("p", peerIP="fe80::1%eth0"), r"BGPPeer\.spec\.peerIP: 'fe80::1%eth0' is not", id="peer-ip-zone"),
    pytest.param(peer("p", peerIP="10.0.0.1:0"), r"BGPPeer\.spec\.peerIP: port 0 is outside 1–65535", id="peer-port"),
    pytest.param(peer("p", node="node-1", nodeSelector="all()"),
                 r"BGPPeer\.spec: node and nodeSelector are mutually exclusive", id="node-and-selector"),
    pytest.param(peer("p", peerSelector="has(rr)"),
                 r"BGPPeer\.spec: peerIP and peerSelector are mutually exclusive", id="peerip-and-selector"),
    pytest.param(res("BGPPeer", "p", {"peerSelector": "has(rr)", "asNumber": 65000}),
                 r"BGPPeer\.spec\.asNumber: must be unset when peerSelector is set", id="selector-with-as"),
    pytest.param(res("BGPPeer", "p", {"asNumber": 65000}),
                 r"BGPPeer\.spec: one of peerIP or peerSelector is required", id="peer-without-target"),
    pytest.param(peer("p", nodeSelector="rack = 'a'"),
                 r"BGPPeer\.spec\.nodeSelector: selector \"rack = 'a'\" has an unexpected character '=' at position 5",
                 id="selector-syntax"),
    pytest.param(res("BGPPeer", "p", {"peerSelector": "has(rr"}),
                 r"BGPPeer\.spec\.peerSelector: selector 'has\(rr': expected \)", id="selector-unclosed"),
    pytest.param(res("BGPConfiguration", "node.node-1", {"asNumber": 64512}),
                 r"BGPConfiguration\.spec\.asNumber: may only be set on the BGPConfiguration named 'default'",
                 id="bgpconfig-default-only"),
    pytest.param(res("BGPConfiguration", "node.node-1", {"nodeToNodeMeshEnabled": False}),
                 r"BGPConfiguration\.spec\.nodeToNodeMeshEnabled: may only be set on the BGPConfiguration named "
                 r"'default'", id="bgpconfig-mesh-default-only"),
    pytest.param(res("BGPConfiguration", "global", {}),
                 r"BGPConfiguration\.metadata\.name: 'global' must be 'default' or 'node.<nodename>'",
                 id="bgpconfig-name"),
    pytest.param(res("BGPConfiguration", "default", {"logSeverityScreen": "verbose"}),
                 r"BGPConfiguration\.spec\.logSeverityScreen: 'verbose' is not one of", id="bgpconfig-loglevel"),
    pytest.param(res("BGPConfiguration", "default", {"serviceClusterIPs": [{"cidr": "10.96.0.0"}]}),
                 r"BGPConfiguration\.spec\.serviceClusterIPs\[0\]\.cidr: '10.96.0.0': not a CIDR",
                 id="bgpconfig-service-cidr"),
    pytest.param(res("BGPConfiguration", "default", {"listenPort": True}),
                 r"BGPConfiguration\.spec\.listenPort: must be an integer, got True", id="bgpconfig-listen-port"),
    pytest.param(bgp_node(), r"Node\.spec\.bgp: must be a non-empty mapping", id="node-bgp-empty"),
    pytest.param(bgp_node(asNumber=64512),
                 r"Node\.spec\.bgp: one of ipv4Address, ipv6Address or ipv4IPIPTunnelAddr is required",
                 id="node-bgp-no-address"),
    pytest.param(bgp_node(ipv4Address="fd00::5/64"),
                 r"Node\.spec\.bgp\.ipv4Address: 'fd00::5/64' is not an IPv4 address", id="node-ipv4-family"),
    pytest.param(bgp_node(ipv4Address="10.0.0.5/24", routeReflectorClusterID="rr-1"),
                 r"Node\.spec\.bgp\.routeReflectorClusterID: 'rr-1' is not a cluster ID", id="cluster-id"),
    pytest.param(bgp_node(ipv4Address="10.0.0.5/24", routeReflectorClusterID="300.0.0.1"),
                 r"Node\.spec\.bgp\.routeReflectorClusterID: '300.0.0.1' is not an IPv4 address",
                 id="cluster-id-range"),
    pytest.param(pool(cidr="10.244.1.0/16"), r"IPPool\.spec\.cidr: '10.244.1.0/16': host bits are set",
                 id="pool-host-bits"),
    pytest.param(res("IPPool", "pool-bad", {}), r"IPPool\.spec\.cidr: is required", id="pool-no-cidr"),
    pytest.param(pool(blockSize=33), r"IPPool\.spec\.blockSize: 33 must be 20–32 for an IPv4 pool", id="pool-block-v4"),
    pytest.param(pool(cidr="fd00::/48", blockSize=26), r"IPPool\.spec\.blockSize: 26 must be 116–128 for an IPv6 pool",
                 id="pool-block-v6"),
    pytest.param(pool(cidr="10.244.0.0/28"), r"IPPool\.spec\.cidr: prefix /28 is smaller than blockSize 26",
                 id="pool-smaller-than-block"),
    pytest.param(pool(cidr="fd00::/48", ipipMode="Always"),
                 r"IPPool\.spec\.ipipMode: IPIP is not supported on an IPv6 pool", id="pool-ipip-v6"),
    pytest.param(pool(ipipMode="Always", vxlanMode="CrossSubnet"),
                 r"IPPool\.spec: ipipMode and vxlanMode may not both be enabled", id="pool-ipip-vxlan"),
    pytest.param(pool(cidr="169.254.0.0/16"), r"IPPool\.spec\.cidr: 169.254.0.0/16 overlaps the link-local range",
                 id="pool-link-local"),
    pytest.param(pool(ipipMode="always"), r"IPPool\.spec\.ipipMode: 'always' is not one of Never, Always, CrossSubnet",
                 id="pool-mode-case"),
    pytest.param(pool(nodeSelector="global()"), r"IPPool\.spec\.nodeSelector: global\(\) is not allowed",
                 id="pool-global"),
    pytest.param(pool(natOutgoing="yes"), r"IPPool\.spec\.natOutgoing: must be a boolean", id="pool-bool"),
    pytest.param(res("WorkloadEndpoint", "node1-k8s-nginx-abc-eth0", WEP_SPEC, namespace="default"),
                 r"WorkloadEndpoint\.metadata\.name: 'node1-k8s-nginx-abc-eth0' must be the computed name "
                 r"'node1-k8s-nginx--abc-eth0'", id="wep-name"),
    pytest.param(res("GlobalNetworkPolicy", "allow.dns", {}),
                 r"GlobalNetworkPolicy\.metadata\.name: 'allow.dns' is not a DNS-1123 label", id="gnp-name"),
    pytest.param(res("GlobalNetworkPolicy", "p", {"ingress": [{"action": "accept"}]}),
                 r"GlobalNetworkPolicy\.spec\.ingress\[0\]\.action: 'accept' is not one of Allow, Deny, Log, Pass",
                 id="rule-action"),
    pytest.param(res("ClusterInformation", "cluster", {}),
                 r"ClusterInformation\.metadata\.name: the only allowed name is 'default'", id="clusterinfo-name"),
]


@pytest.fixture
def store(etcd_single):
    store = CalicoStore(etcd_single.client())
    store.apply([peer("existing"), res("Node", "node-1", {"bgp": {"ipv4Address": "10.0.0.1/24"}})])
    return store


def snapshot_keyspace(server) -> str:
    return server.etcdctl("get", "", "--from-key", "-w", "json").split('"kvs":', 1)[-1]


def assert_refused_without_write(server, call, match: str) -> ValidationError:
    revision, keyspace = server.revision(), snapshot_keyspace(server)
    with pytest.raises(ValidationError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    assert server.revision() == revision
    assert snapshot_keyspace(server) == keyspace
    return info.value


@pytest.mark.parametrize("merge", [True, False], ids=["merge", "replace"])
@pytest.mark.parametrize("bad, match", BAD_RESOURCES)
def test_bad_resource_in_a_batch_is_refused_before_any_write(etcd_single, store, bad, match, merge):
    batch = [peer("existing", asNumber=65001), peer("new-1"), bad, res("Node", "node-2")]
    assert_refused_without_write(etcd_single, lambda: store.apply(batch, merge=merge),
                                 r"^resources\[2\]: " + match)


def test_there_are_at_least_25_distinct_bad_resources():
    assert len({p.id for p in BAD_RESOURCES}) == len(BAD_RESOURCES) >= 25


def test_a_bad_resource_after_several_transactions_worth_of_good_ones_writes_nothing(etcd_single, store):
    batch = [peer(f"good-{i:03d}") for i in range(300)] + [pool(blockSize=19)]
    assert_refused_without_write(etcd_single, lambda: store.apply(batch),
                                 r"^resources\[300\]: IPPool\.spec\.blockSize: 19 must be 20–32")


def test_a_resource_given_twice_is_refused(etcd_single, store):
    batch = [peer("twice"), peer("other"), peer("twice", asNumber=65000)]
    assert_refused_without_write(etcd_single, lambda: store.apply(batch),
                                 r"^resources\[2\]: BGPPeer twice appears twice \(also resources\[0\]\)$")


def test_a_merge_that_would_store_an_invalid_object_is_refused(etcd_single, store):
    store.apply([peer("node-peer", node="node-1")])
    batch = [peer("new-1"), peer("node-peer", nodeSelector="has(rr)")]  # merged: node + nodeSelector
    assert_refused_without_write(etcd_single, lambda: store.apply(batch, merge=True),
                                 r"^resources\[1\]: BGPPeer\.spec: node and nodeSelector are mutually exclusive$")


def test_changing_an_immutable_field_is_refused(etcd_single, store):
    store.apply([pool()])
    batch = [peer("new-1"), pool(cidr="10.245.0.0/16")]
    assert_refused_without_write(etcd_single, lambda: store.apply(batch),
                                 r"^resources\[1\]: IPPool\.spec\.cidr: is immutable")


# ------------------------------------------------------------------------------------------------
# Bad options: store calls and client options
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("refs, match", [
    ([("BGPPeer", "existing", None), ("Peer", "x", None)], r"^resources\[1\]: kind: 'Peer' is not a supported"),
    ([("BGPPeer", "existing", None), ("BGPPeer", "Bad_Name", None)],
     r"^resources\[1\]: BGPPeer\.metadata\.name: 'Bad_Name' is not a DNS-1123 subdomain"),
    ([("BGPPeer", "existing", None), ("NetworkPolicy", "np", None)],
     r"^resources\[1\]: NetworkPolicy\.metadata\.namespace: is required for a namespaced kind"),
], ids=["delete-kind", "delete-name", "delete-namespace"])
def test_bad_delete_refs_delete_nothing(etcd_single, store, refs, match):
    assert_refused_without_write(etcd_single, lambda: store.delete(refs), match)


def test_list_with_a_bad_selector_or_kind_is_refused(etcd_single, store):
    assert_refused_without_write(etcd_single, lambda: store.list("Node", selector="rack ="),
                                 r"^label_selector: selector 'rack =' has an unexpected character")
    assert_refused_without_write(etcd_single, lambda: store.list("Nodes"), r"^kind: 'Nodes' is not a supported")


def test_prune_of_another_tools_objects_is_refused(etcd_single, store):
    assert_refused_without_write(etcd_single,
                                 lambda: store.prune("BGPPeer", {MANAGED_BY_LABEL: "other"}, keep=set()),
                                 rf"^labels\.{MANAGED_BY_LABEL}: prune only deletes objects labelled")


@pytest.mark.parametrize("options, match", [
    ({"endpoints": ["ftp://127.0.0.1:2379"]}, r"^endpoints: 'ftp://127\.0\.0\.1:2379' must be http\(s\)://host:port"),
    ({"endpoints": []}, r"^endpoints: at least one etcd endpoint is required$"),
    ({"endpoints": ["https://127.0.0.1:2379/path"]}, r"host:port \(no path: '/path'\)$"),
    ({"client_cert": "/nonexistent/cert.pem"}, r"^client_cert and client_key must be given together$"),
    ({"user": "calico"}, r"^user and password must be given together$"),
    ({"ca_cert": "/nonexistent/ca.pem"}, r"^ca_cert /nonexistent/ca\.pem: cannot read \(No such file or directory\)$"),
    ({"timeout": 0}, r"^timeout: must be a number of seconds greater than 0, got 0$"),
], ids=["scheme", "no-endpoints", "path", "cert-without-key", "user-without-password", "ca-unreadable", "timeout-0"])
def test_bad_client_options_are_refused_before_connecting(etcd_single, options, match):
    revision = etcd_single.revision()
    params = {"endpoints": etcd_single.endpoints, **options}
    with pytest.raises(EtcdError, match=match):
        EtcdClient(**params).put("/calico/should-not-exist", "x")
    assert etcd_single.revision() == revision


@pytest.mark.parametrize("count, max_ops, match", [
    (129, 128, r"^a transaction may hold at most 128 operations, got 129$"),
    (10, 129, r"^max_ops must be 1\.\.128$"),
    (10, 0, r"^max_ops must be 1\.\.128$"),
], ids=["txn-129", "max-ops-129", "max-ops-0"])
def test_oversized_transactions_are_refused(etcd_single, count, max_ops, match):
    client = etcd_single.client()
    ops = [Op.put(f"/calico/x/{i}", "v") for i in range(count)]
    revision = etcd_single.revision()
    with pytest.raises(EtcdError, match=match):
        client.txn(ops) if count > 128 else client.apply(ops, max_ops=max_ops)
    assert etcd_single.revision() == revision
