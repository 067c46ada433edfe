"""calico_resources: key paths, stored JSON, and every validation rule of the Calico v3 kinds.

Expected values come from shared/reference/calico-datastore.md §1–2 (libcalico-go), not from the
code under test; property tests compare against small reference implementations written here.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import (
    ValidationError,
    parse_as_number,
    validate_annotations,
    validate_cidr,
    validate_cluster_id,
    validate_ip,
    validate_ip_port,
    validate_labels,
    validate_name,
    workload_endpoint_name,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import (
    API_VERSION,
    KINDS,
    deserialize,
    key_for,
    key_of,
    serialize,
    storage_name,
    validate,
)
from ansible_collections.kubescale.calico.plugins.module_utils.calico.selector import parse_selector, selector_matches

ROOT = "/calico/resources/v3/projectcalico.org/"


def refused(resource_or_fn, *args, match: str):
    """Assert a ValidationError whose message matches ``match`` (field + rule)."""
    with pytest.raises(ValidationError, match=match):
        if callable(resource_or_fn):
            resource_or_fn(*args)
        else:
            validate(resource_or_fn)


def res(kind: str, name: str, spec: dict | None = None, **meta) -> dict:
    return {"kind": kind, "metadata": {"name": name, **meta}, "spec": spec or {}}


# ------------------------------------------------------------------------------------------------
# Key paths
# ------------------------------------------------------------------------------------------------
PLURALS = {
    "BGPConfiguration": "bgpconfigurations", "BGPPeer": "bgppeers", "Node": "nodes", "IPPool": "ippools",
    "FelixConfiguration": "felixconfigurations", "ClusterInformation": "clusterinformations",
    "Profile": "profiles", "HostEndpoint": "hostendpoints", "WorkloadEndpoint": "workloadendpoints",
    "GlobalNetworkPolicy": "globalnetworkpolicies", "NetworkPolicy": "networkpolicies",
}
NAMESPACED = {"WorkloadEndpoint", "NetworkPolicy"}


def test_every_kind_is_known_with_the_reference_plural_and_scope():
    assert {k: v.plural for k, v in KINDS.items()} == PLURALS
    assert {k for k, v in KINDS.items() if v.namespaced} == NAMESPACED


@pytest.mark.parametrize("kind", sorted(set(PLURALS) - NAMESPACED - {"GlobalNetworkPolicy"}))
def test_cluster_scoped_key(kind):
    assert key_for(kind, "default") == f"{ROOT}{PLURALS[kind]}/default"


def test_namespaced_keys_carry_the_namespace():
    assert key_for("WorkloadEndpoint", "node1-k8s-nginx--abc-eth0", "default") == (
        f"{ROOT}workloadendpoints/default/node1-k8s-nginx--abc-eth0")
    assert key_for("NetworkPolicy", "allow", "kube-system") == f"{ROOT}networkpolicies/kube-system/default.allow"


def test_namespaced_key_without_namespace_is_refused():
    refused(key_for, "NetworkPolicy", "allow", None, match=r"NetworkPolicy\.metadata\.namespace: is required")
    refused(key_for, "WorkloadEndpoint", "x", "", match=r"namespace: is required for a namespaced kind")


def test_policy_names_get_the_default_tier_prefix_once():
    assert key_for("GlobalNetworkPolicy", "allow-dns") == f"{ROOT}globalnetworkpolicies/default.allow-dns"
    assert key_for("GlobalNetworkPolicy", "default.allow-dns") == f"{ROOT}globalnetworkpolicies/default.allow-dns"
    assert storage_name("NetworkPolicy", "np") == "default.np"


def test_knp_policies_are_exempt_from_the_prefix():
    assert storage_name("NetworkPolicy", "knp.default.deny-all") == "knp.default.deny-all"
    assert key_for("NetworkPolicy", "knp.default.deny-all", "ns1") == f"{ROOT}networkpolicies/ns1/knp.default.deny-all"


def test_non_policy_names_are_never_prefixed():
    assert storage_name("BGPPeer", "peer") == "peer"
    assert key_for("BGPPeer", "rr-peer-1") == f"{ROOT}bgppeers/rr-peer-1"


def test_key_of_a_validated_policy_and_its_stored_name_agree():
    clean = validate(res("GlobalNetworkPolicy", "allow-dns", {"selector": "all()"}))
    assert clean["metadata"]["name"] == "default.allow-dns"
    assert key_of(clean) == f"{ROOT}globalnetworkpolicies/default.allow-dns"


def test_unknown_kind_is_refused():
    refused(res("Pod", "x"), match=r"kind: 'Pod' is not a supported Calico kind")
    refused(key_for, "bgppeer", "x", None, match=r"kind: 'bgppeer' is not a supported")


# ------------------------------------------------------------------------------------------------
# Stored JSON
# ------------------------------------------------------------------------------------------------
def test_stored_json_shape_and_order():
    clean = validate(res("BGPPeer", "rr-peer-1", {"peerIP": "10.0.0.1", "asNumber": 64512},
                         labels={"a": "b"}, annotations={"note": "x"}, resourceVersion="42"))
    clean["metadata"].update(uid="8f0c", creationTimestamp="2018-02-01T10:00:00Z", resourceVersion="42",
                             selfLink="/x")
    # metadata given in a scrambled order must still be written in ObjectMeta order
    clean["metadata"] = dict(reversed(list(clean["metadata"].items())))
    raw = serialize(clean)
    body = json.loads(raw)
    assert list(body) == ["kind", "apiVersion", "metadata", "spec"]
    assert body["kind"] == "BGPPeer" and body["apiVersion"] == API_VERSION == "projectcalico.org/v3"
    assert list(body["metadata"]) == ["name", "uid", "creationTimestamp", "labels", "annotations"]
    assert "resourceVersion" not in raw.decode() and "selfLink" not in raw.decode()
    assert body["spec"] == {"peerIP": "10.0.0.1", "asNumber": 64512}
    assert b" " not in raw  # compact, like Go's json.Marshal


def test_the_reference_bgppeer_example_round_trips():
    stored = (b'{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"rr-peer-1",'
              b'"uid":"8f0c","creationTimestamp":"2018-02-01T10:00:00Z"},"spec":{"peerIP":"10.0.0.1","asNumber":64512}}')
    assert serialize(json.loads(stored)) == stored


def test_namespace_is_written_after_name():
    clean = validate(res("NetworkPolicy", "np1", {}, namespace="ns1"))
    assert list(json.loads(serialize(clean))["metadata"]) == ["name", "namespace"]


def test_read_reports_mod_revision_as_resource_version():
    obj = deserialize(b'{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"n"},"spec":{}}', 1234)
    assert obj["metadata"]["resourceVersion"] == "1234"
    assert "resourceVersion" not in deserialize(serialize(obj))["metadata"]


def test_validate_sets_kind_and_api_version_and_drops_read_only_bookkeeping():
    """resourceVersion/selfLink are reported on read and accepted back, but never part of what is stored."""
    clean = validate({"kind": "Profile", "metadata": {"name": "p", "resourceVersion": "7", "selfLink": "/x"}})
    assert clean == {"kind": "Profile", "apiVersion": API_VERSION, "metadata": {"name": "p"}, "spec": {}}


def test_validate_does_not_modify_its_input():
    given_ = res("IPPool", "p", {"cidr": "10.0.0.0/16"})
    validate(given_)
    assert given_["spec"] == {"cidr": "10.0.0.0/16"}


@pytest.mark.parametrize("bad, match", [
    ({"kind": "Profile", "apiVersion": "projectcalico.org/v2", "metadata": {"name": "p"}},
     r"Profile\.apiVersion: 'projectcalico.org/v2' must be projectcalico.org/v3"),
    ({"kind": "Profile"}, r"Profile\.metadata: is required"),
    ({"kind": "Profile", "metadata": {"name": "p"}, "extra": 1}, r"Profile: unknown top-level field\(s\) extra"),
    ({"kind": "Profile", "metadata": {"name": "p"}, "spec": [1]}, r"Profile\.spec: must be a mapping"),
    ([1], r"resource: must be a mapping"),
    (res("BGPPeer", "p", {"peerIP": "10.0.0.1"}, namespace="ns"), r"BGPPeer\.metadata\.namespace: .*cluster-scoped"),
    (res("NetworkPolicy", "np", {}), r"NetworkPolicy\.metadata\.namespace: None is not a DNS-1123 label"),
    (res("NetworkPolicy", "np", {}, namespace="a.b"), r"NetworkPolicy\.metadata\.namespace: 'a.b' .*no dots"),
])
def test_structural_errors(bad, match):
    refused(bad, match=match)


# ------------------------------------------------------------------------------------------------
# Names, labels, annotations
# ------------------------------------------------------------------------------------------------
def reference_is_subdomain(name: str) -> bool:
    """DNS-1123 subdomain, written out without a regex."""
    if not 1 <= len(name) <= 253:
        return False
    for part in name.split("."):
        if not part or part[0] == "-" or part[-1] == "-":
            return False
        if any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in part):
            return False
    return True


@given(st.text(alphabet="ab9-._A", max_size=12))
def test_name_rule_agrees_with_reference(name):
    try:
        validate_name(name)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == reference_is_subdomain(name)


@given(st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?){0,3}\Z"))
def test_generated_subdomains_are_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name, match", [
    ("", "a non-empty name is required"),
    (None, "a non-empty name is required"),
    ("A", "not a DNS-1123 subdomain"),
    ("a_b", "not a DNS-1123 subdomain"),
    ("-a", "not a DNS-1123 subdomain"),
    ("a..b", "not a DNS-1123 subdomain"),
    ("a" * 254, "254 characters; at most 253"),
])
def test_bad_names(name, match):
    refused(validate_name, name, match=r"metadata\.name: .*" + match)


def test_name_of_253_characters_is_accepted():
    name = ".".join(["a" * 63] * 4)[:253]
    assert len(name) == 253 and validate_name(name.rstrip(".")) == name.rstrip(".")


def test_labels_and_annotations_accepted():
    labels = {"a": "b", "example.com/rack": "r-1_x.y", "empty": "", "k": "v" * 63}
    assert validate_labels(labels) == labels
    assert validate_annotations({"example.com/note": "any text, even spaces & symbols"})


@pytest.mark.parametrize("labels, match", [
    ({"a": "v" * 64}, r"metadata\.labels\.a: value .* is not a valid label value"),
    ({"a": 1}, r"metadata\.labels\.a: value 1 is not a valid label value"),
    ({"a": "-x"}, r"metadata\.labels\.a: value '-x'"),
    ({"a b": "x"}, r"metadata\.labels: key 'a b' is not a qualified name"),
    ({"k" * 64: "x"}, r"metadata\.labels: key 'k+' is not a qualified name"),
    ({"Example.com/a": "x"}, r"metadata\.labels prefix of 'Example.com/a'"),
    ({"a/": "x"}, r"metadata\.labels: key 'a/' is not a qualified name"),
    ({"/a": "x"}, r"metadata\.labels prefix of '/a': a non-empty name is required"),
    (["a"], r"metadata\.labels: must be a mapping"),
])
def test_bad_labels(labels, match):
    refused(validate_labels, labels, match=match)


def test_bad_annotations():
    refused(validate_annotations, {"a": 5}, match=r"metadata\.annotations\.a: annotation values must be strings")
    refused(validate_annotations, {"a": "x" * (256 * 1024)},
            match=r"metadata\.annotations: total size 262145 bytes exceeds 262144")
    refused(validate_annotations, "x", match=r"metadata\.annotations: must be a mapping")


def test_labels_are_checked_inside_validate_with_the_kind_in_the_field():
    refused(res("Node", "n", {}, labels={"bad key": "x"}), match=r"Node\.metadata\.labels: key 'bad key'")


def test_empty_labels_are_not_stored():
    assert "labels" not in validate(res("Node", "n", {}, labels={}))["metadata"]


# ------------------------------------------------------------------------------------------------
# AS numbers, IPs, cluster IDs, CIDRs
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, number", [
    (1, 1), (64512, 64512), ("64512", 64512), (" 65000 ", 65000), (4294967295, 4294967295),
    ("4294967295", 4294967295), ("1.10", 65546), ("0.1", 1), ("65535.65535", 4294967295), ("1.0", 65536),
])
def test_as_numbers(value, number):
    assert parse_as_number(value) == number


@pytest.mark.parametrize("value, match", [
    (4294967296, r"asNumber: 4294967296 is outside the AS number range 1–4294967295"),
    (0, r"asNumber: AS number 0 is reserved \(RFC 7607\)"),
    ("0", r"asNumber: AS number 0 is reserved"),
    ("0.0", r"asNumber: AS number 0 is reserved"),
    ("٦٤٥١٢", r"asNumber: '٦٤٥١٢' is not an AS number .*ASCII digits"),  # Arabic-Indic digits
    ("６４５１２", r"asNumber: '６４５１２' is not an AS number"),  # full-width digits
    ("1.١٠", r"asNumber: '1.١٠' is not an AS number"),
    ("4294967296", r"asNumber: 4294967296 is outside"),
    (-1, r"asNumber: -1 is outside"),
    ("65536.0", r"asNumber: asdot '65536.0' needs both parts in 0–65535"),
    ("1.65536", r"asNumber: asdot '1.65536' needs both parts"),
    ("1.2.3", r"asNumber: '1.2.3' is not an AS number"),
    ("AS64512", r"asNumber: 'AS64512' is not an AS number"),
    (True, r"asNumber: True is not an AS number"),
    (64512.0, r"asNumber: 64512.0 is not an AS number"),
    (None, r"asNumber: None is not an AS number"),
])
def test_bad_as_numbers(value, match):
    refused(parse_as_number, value, match=match)


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_asdot_round_trip(high, low):
    assume((high, low) != (0, 0))
    number = parse_as_number(f"{high}.{low}")
    assert number == high * 65536 + low
    assert parse_as_number(str(number)) == number == parse_as_number(number)
    assert (number >> 16, number & 0xFFFF) == (high, low)


@given(st.integers(1, 2**32 - 1))
def test_every_uint32_but_0_is_an_as_number_in_both_notations(number):
    assert parse_as_number(number) == number
    assert parse_as_number(f"{number >> 16}.{number & 0xFFFF}") == number


def test_ips():
    assert validate_ip("10.0.0.1", "f") == "10.0.0.1"
    assert validate_ip("2001:DB8::1", "f") == "2001:db8::1"
    assert validate_ip("fd00::1", "f", 6) == "fd00::1"
    assert validate_ip_port("10.0.0.1:179", "f") == "10.0.0.1:179"
    assert validate_ip_port("[2001:db8::1]:1790", "f") == "[2001:db8::1]:1790"
    assert validate_ip_port("2001:db8::1", "f") == "2001:db8::1"


@pytest.mark.parametrize("fn, args, match", [
    (validate_ip, ("10.0.0.1/32", "peerIP"), r"peerIP: '10.0.0.1/32' is not an IPv4 or IPv6 address"),
    (validate_ip, ("10.0.0.256", "peerIP"), r"peerIP: '10.0.0.256' is not"),
    (validate_ip, ("010.0.0.1", "peerIP"), r"peerIP: '010.0.0.1' is not"),
    (validate_ip, ("fe80::1%eth0", "peerIP"), r"peerIP: 'fe80::1%eth0' is not"),
    (validate_ip, ("fd00::1", "ipv4IPIPTunnelAddr", 4), r"ipv4IPIPTunnelAddr: 'fd00::1' is not an IPv4 address"),
    (validate_ip, (17, "peerIP"), r"peerIP: 17 is not"),
    (validate_ip_port, ("10.0.0.1:0", "peerIP"), r"peerIP: port 0 is outside 1–65535"),
    (validate_ip_port, ("10.0.0.1:65536", "peerIP"), r"peerIP: port 65536 is outside"),
    (validate_ip_port, ("[fd00::1]:0", "peerIP"), r"peerIP: port 0 is outside"),
    (validate_ip_port, ("host.example:179", "peerIP"), r"peerIP: 'host.example:179' is not"),
])
def test_bad_ips(fn, args, match):
    refused(fn, *args, match=match)


def test_cluster_ids():
    assert validate_cluster_id("224.0.0.1") == "224.0.0.1"
    assert validate_cluster_id(" 10.0.0.0 ") == "10.0.0.0"


@pytest.mark.parametrize("value, match", [
    ("1.2.3", r"'1.2.3' is not a cluster ID \(a dotted IPv4 value"),
    ("256.0.0.1", r"'256.0.0.1' is not an IPv4 address"),
    ("fd00::1", r"'fd00::1' is not a cluster ID"),
    (3758096385, r"3758096385 is not a cluster ID"),
    ("rr-1", r"'rr-1' is not a cluster ID"),
])
def test_bad_cluster_ids(value, match):
    refused(validate_cluster_id, value, match=r"routeReflectorClusterID: " + match)


def test_cidrs():
    assert validate_cidr("10.0.0.0/8", "cidr") == "10.0.0.0/8"
    assert validate_cidr("FD00::/48", "cidr") == "fd00::/48"
    assert validate_cidr("10.0.0.5/24", "ipNetworks[0]", strict=False) == "10.0.0.0/24"
    refused(validate_cidr, "10.0.0.1/8", "cidr", match=r"cidr: '10.0.0.1/8': host bits are set")
    refused(validate_cidr, "10.0.0.0/33", "cidr", match=r"cidr: '10.0.0.0/33': not a CIDR")
    refused(validate_cidr, "fd00::/48", "cidr", 4, match=r"cidr: 'fd00::/48' is not an IPv4 CIDR")


def test_cidr_needs_a_prefix_length():
    """Calico's 'net' rule parses with ParseCIDR, which needs '/<bits>'; a bare address is no network."""
    refused(validate_cidr, "10.96.0.0", "serviceClusterIPs[0].cidr", match=r"serviceClusterIPs\[0\]\.cidr: '10.96.0.0'")
    refused(validate_cidr, "10.0.0.0/255.0.0.0", "cidr", match=r"cidr: '10.0.0.0/255.0.0.0'")


# ------------------------------------------------------------------------------------------------
# Selectors
# ------------------------------------------------------------------------------------------------
GOOD_SELECTORS = [
    "", "all()", "global()", "has(rr)", "!has(rr)", "rack == 'a'", 'rack == "a"', "rack != 'a'",
    "rack in {'a', 'b'}", "rack in {}", "rack not in {'a'}", "a == 'x' && b == 'y'", "a == 'x' || b == 'y'",
    "(a == 'x' || b == 'y') && !has(c)", "example.com/rack-id_1 == 'r1'", "a=='x'&&b!='y'", "!!has(a)",
    "a contains 'x'", "a starts with 'x'", "a ends with 'x'", "all() && has(a)", "has( a )",
    "kubescale.io/route-reflector == 'true'",
]


@pytest.mark.parametrize("text", GOOD_SELECTORS)
def test_valid_selectors_parse(text):
    parse_selector(text)


@pytest.mark.parametrize("text, match", [
    ("a = 'x'", r"unexpected character '=' at position 2"),
    ("a == x", r"expected str at token 3"),
    ("a == 'x' &&", r"ends too early"),
    ("(a == 'x'", r"expected \) at token 5"),
    ("has()", r"expected label at token 2"),
    ("all(x)", r"expected \) at token 2"),
    ("a in {'x',}", r"expected str"),
    ("a in 'x'", r"expected \{"),
    ("a", r"label 'a' must be followed by =="),
    ("a notin {'x'}", r"label 'a' must be followed by"),
    ("has(a) has(b)", r"unexpected 'has' at token 4"),
    ("'x' == a", r"unexpected 'x' at token 1"),
    ("a == 'x' b == 'y'", r"unexpected 'b'"),
    ("a == 'x')", r"unexpected '\)'"),
    ("a == 'unterminated", r"unexpected character"),
    ("a == 'x' & b == 'y'", r"unexpected character"),
])
def test_invalid_selectors(text, match):
    refused(parse_selector, text, "spec.nodeSelector", match=r"spec\.nodeSelector: selector .*" + match)


def test_selector_must_be_a_string():
    refused(parse_selector, ["has(a)"], "peerSelector", match=r"peerSelector: a selector must be a string")


@pytest.mark.parametrize("text, labels, expected", [
    ("all()", {}, True),
    ("", {"a": "x"}, True),
    ("has(a)", {"a": ""}, True),
    ("has(a)", {}, False),
    ("!has(a)", {}, True),
    ("!has(a)", {"a": "x"}, False),
    ("a == 'x'", {"a": "x"}, True),
    ("a == 'x'", {}, False),
    ("a == ''", {}, False),
    ("a != 'x'", {}, True),  # absent label: != holds
    ("a != 'x'", {"a": "x"}, False),
    ("a in {}", {"a": "x"}, False),
    ("a in {}", {}, False),
    ("a not in {}", {}, True),
    ("a not in {}", {"a": "x"}, True),
    ("a in {'x', 'y'}", {"a": "y"}, True),
    ("a in {'x', 'y'}", {}, False),
    ("a not in {'x'}", {}, True),
    ("a not in {'x'}", {"a": "x"}, False),
    # && binds tighter than ||: true || (false && false)
    ("a == '1' || b == '1' && c == '1'", {"a": "1"}, True),
    # ... and (true || false) && false would be False
    ("a == '1' || b == '1' && c == '1'", {"a": "1", "b": "0", "c": "0"}, True),
    ("(a == '1' || b == '1') && c == '1'", {"a": "1", "c": "0"}, False),
    ("b == '1' && c == '1' || a == '1'", {"a": "1"}, True),
    ("!a == '1' && b == '1'", {"b": "1"}, True),
    ("!(a == '1' && b == '1')", {"a": "1", "b": "1"}, False),
    ("a contains 'bc'", {"a": "abcd"}, True),
    ("a starts with 'ab'", {"a": "abcd"}, True),
    ("a ends with 'ab'", {"a": "abcd"}, False),
    ("a contains 'x'", {}, False),
])
def test_selector_evaluation(text, labels, expected):
    assert selector_matches(parse_selector(text), labels) is expected


# A reference evaluator over generated expressions, with Calico's semantics written out plainly.
KEYS = ["a", "b", "c"]
VALUES = ["1", "2"]
atoms = st.one_of(
    st.tuples(st.just("has"), st.sampled_from(KEYS)),
    st.tuples(st.sampled_from(["==", "!="]), st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.tuples(st.sampled_from(["in", "not in"]), st.sampled_from(KEYS),
              st.lists(st.sampled_from(VALUES), max_size=2, unique=True).map(tuple)),
    st.just(("all",)),
)
exprs = st.recursive(atoms, lambda inner: st.one_of(
    st.tuples(st.just("!"), inner),
    st.tuples(st.sampled_from(["&&", "||"]), inner, inner),
), max_leaves=8)
label_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES))


def render(expr) -> str:
    op = expr[0]
    if op == "has":
        return f"has({expr[1]})"
    if op == "all":
        return "all()"
    if op in ("==", "!="):
        return f"{expr[1]} {op} '{expr[2]}'"
    if op in ("in", "not in"):
        return f"{expr[1]} {op} {{{', '.join(repr(v) for v in expr[2])}}}"
    if op == "!":
        return f"!({render(expr[1])})"
    return f"({render(expr[1])}) {op} ({render(expr[2])})"


def reference(expr, labels) -> bool:
    op = expr[0]
    if op == "all":
        return True
    if op == "has":
        return expr[1] in labels
    if op == "!":
        return not reference(expr[1], labels)
    if op == "&&":
        return reference(expr[1], labels) and reference(expr[2], labels)
    if op == "||":
        return reference(expr[1], labels) or reference(expr[2], labels)
    present = expr[1] in labels
    value = labels.get(expr[1])
    return {"==": present and value == expr[2], "!=": not present or value != expr[2],
            "in": present and value in expr[2], "not in": not present or value not in expr[2]}[op]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(exprs, label_sets)
def test_selector_matches_reference_evaluation(expr, labels):
    assert selector_matches(parse_selector(render(expr)), labels) == reference(expr, labels)


@given(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), min_size=1, max_size=6),
       st.lists(st.sampled_from(["&&", "||"]), min_size=5, max_size=5), label_sets)
def test_unparenthesised_and_binds_tighter_than_or(comparisons, operators, labels):
    """a && b || c && d == (a && b) || (c && d): split on || first, then &&."""
    text = f"{comparisons[0][0]} == '{comparisons[0][1]}'"
    groups, current = [], [comparisons[0]]
    for (key, value), op in zip(comparisons[1:], operators):
        text += f" {op} {key} == '{value}'"
        if op == "||":
            groups.append(current)
            current = []
        current.append((key, value))
    groups.append(current)
    expected = any(all(labels.get(k) == v for k, v in group) for group in groups)
    assert selector_matches(parse_selector(text), labels) == expected


# ------------------------------------------------------------------------------------------------
# IPPool
# ------------------------------------------------------------------------------------------------
def pool(spec: dict) -> dict:
    return res("IPPool", "pool-1", spec)


def test_ippool_defaults_v4_and_v6():
    assert validate(pool({"cidr": "10.0.0.0/16"}))["spec"] == {
        "cidr": "10.0.0.0/16", "blockSize": 26, "ipipMode": "Never", "vxlanMode": "Never", "nodeSelector": "all()"}
    assert validate(pool({"cidr": "fd00:10::/48"}))["spec"]["blockSize"] == 122


def test_ippool_cidr_is_normalised():
    assert validate(pool({"cidr": "FD00:0010:0000::/48"}))["spec"]["cidr"] == "fd00:10::/48"


def test_ippool_keeps_what_was_given():
    spec = {"cidr": "10.0.0.0/16", "blockSize": 24, "ipipMode": "CrossSubnet", "natOutgoing": True,
            "nodeSelector": "rack == 'a'"}
    out = validate(pool(spec))["spec"]
    assert {k: out[k] for k in spec} == spec and out["vxlanMode"] == "Never"


@pytest.mark.parametrize("block, ok", [(20, True), (32, True), (19, False), (33, False)])
def test_ippool_v4_block_size_range(block, ok):
    spec = {"cidr": "10.0.0.0/16", "blockSize": block}
    if ok:
        assert validate(pool(spec))["spec"]["blockSize"] == block
    else:
        refused(pool(spec), match=rf"IPPool\.spec\.blockSize: {block} must be 20–32 for an IPv4 pool")


@pytest.mark.parametrize("block, ok", [(116, True), (128, True), (115, False), (129, False), (26, False)])
def test_ippool_v6_block_size_range(block, ok):
    spec = {"cidr": "fd00::/64", "blockSize": block}
    if ok:
        assert validate(pool(spec))["spec"]["blockSize"] == block
    else:
        refused(pool(spec), match=rf"IPPool\.spec\.blockSize: {block} must be 116–128 for an IPv6 pool")


@pytest.mark.parametrize("spec, match", [
    ({}, r"IPPool\.spec\.cidr: is required"),
    ({"cidr": "10.0.0.1/16"}, r"IPPool\.spec\.cidr: '10.0.0.1/16': host bits are set"),
    ({"cidr": "10.0.0.0/28"}, r"IPPool\.spec\.cidr: prefix /28 is smaller than blockSize 26"),
    ({"cidr": "10.0.0.0/24", "blockSize": 23}, r"prefix /24 is smaller than blockSize 23"),
    ({"cidr": "169.254.0.0/16"}, r"IPPool\.spec\.cidr: 169.254.0.0/16 overlaps the link-local range"),
    ({"cidr": "169.0.0.0/8", "blockSize": 20}, r"169.0.0.0/8 overlaps the link-local range"),
    ({"cidr": "fe80::/64"}, r"fe80::/64 overlaps the link-local range"),
    ({"cidr": "fd00::/64", "ipipMode": "Always"}, r"IPPool\.spec\.ipipMode: IPIP is not supported on an IPv6 pool"),
    ({"cidr": "10.0.0.0/16", "ipipMode": "Always", "vxlanMode": "Always"},
     r"IPPool\.spec: ipipMode and vxlanMode may not both be enabled"),
    ({"cidr": "10.0.0.0/16", "ipipMode": "CrossSubnet", "vxlanMode": "CrossSubnet"}, r"may not both be enabled"),
    ({"cidr": "10.0.0.0/16", "ipipMode": "always"}, r"IPPool\.spec\.ipipMode: 'always' is not one of Never"),
    ({"cidr": "10.0.0.0/16", "vxlanMode": True}, r"IPPool\.spec\.vxlanMode: True is not one of"),
    ({"cidr": "10.0.0.0/16", "blockSize": "26"}, r"IPPool\.spec\.blockSize: must be an integer, got '26'"),
    ({"cidr": "10.0.0.0/16", "blockSize": True}, r"IPPool\.spec\.blockSize: must be an integer, got True"),
    ({"cidr": "10.0.0.0/16", "natOutgoing": "yes"}, r"IPPool\.spec\.natOutgoing: must be a boolean"),
    ({"cidr": "10.0.0.0/16", "disabled": 1}, r"IPPool\.spec\.disabled: must be a boolean"),
    ({"cidr": "10.0.0.0/16", "nodeSelector": "global()"}, r"IPPool\.spec\.nodeSelector: global\(\) is not allowed"),
    ({"cidr": "10.0.0.0/16", "nodeSelector": "rack = 'a'"}, r"IPPool\.spec\.nodeSelector: selector"),
    ({"cidr": "10.0.0.0/16", "ipip": {"enabled": True}}, r"IPPool\.spec\.ipip: is a deprecated v1 field"),
    ({"cidr": "10.0.0.0/16", "nat-outgoing": True}, r"IPPool\.spec\.nat-outgoing: is a deprecated v1 field"),
    ({"cidr": 10}, r"IPPool\.spec\.cidr: must be a string, got 10"),
])
def test_bad_ippools(spec, match):
    refused(pool(spec), match=match)


def test_disabled_pool_may_be_smaller_than_a_block():
    assert validate(pool({"cidr": "10.0.0.0/28", "disabled": True}))["spec"]["cidr"] == "10.0.0.0/28"


def test_ipip_on_v4_and_vxlan_on_v6_are_fine():
    assert validate(pool({"cidr": "10.0.0.0/16", "ipipMode": "Always"}))["spec"]["ipipMode"] == "Always"
    assert validate(pool({"cidr": "fd00::/64", "vxlanMode": "Always"}))["spec"]["vxlanMode"] == "Always"


def test_pool_next_to_link_local_is_fine():
    assert validate(pool({"cidr": "169.253.0.0/16"}))


def test_global_is_only_refused_as_the_function_not_inside_a_value():
    """The global() rule is about the selector function, not the text 'global()' in a quoted value."""
    out = validate(pool({"cidr": "10.0.0.0/16", "nodeSelector": "note == 'global()'"}))
    assert out["spec"]["nodeSelector"] == "note == 'global()'"
    refused(pool({"cidr": "10.0.0.0/16", "nodeSelector": "has(a) && global()"}), match=r"global\(\) is not allowed")


# ------------------------------------------------------------------------------------------------
# BGPPeer
# ------------------------------------------------------------------------------------------------
def peer(spec: dict) -> dict:
    return res("BGPPeer", "peer-1", spec)


@pytest.mark.parametrize("spec, stored", [
    ({"peerIP": "10.0.0.1", "asNumber": 64512}, {"peerIP": "10.0.0.1", "asNumber": 64512}),
    ({"peerIP": "10.0.0.1", "asNumber": "1.10"}, {"peerIP": "10.0.0.1", "asNumber": 65546}),
    ({"peerIP": "2001:DB8::1", "asNumber": "64512", "node": "node-1"},
     {"peerIP": "2001:db8::1", "asNumber": 64512, "node": "node-1"}),
    ({"peerIP": "10.0.0.1:1790", "nodeSelector": "has(rr)"}, {"peerIP": "10.0.0.1:1790", "nodeSelector": "has(rr)"}),
    ({"peerSelector": "has(rr)"}, {"peerSelector": "has(rr)"}),
    ({"peerSelector": "has(rr)", "nodeSelector": "!has(rr)"}, {"peerSelector": "has(rr)", "nodeSelector": "!has(rr)"}),
])
def test_good_peers(spec, stored):
    assert validate(peer(spec))["spec"] == stored


@pytest.mark.parametrize("spec, match", [
    ({"node": "n1", "nodeSelector": "all()", "peerIP": "10.0.0.1"},
     r"BGPPeer\.spec: node and nodeSelector are mutually exclusive"),
    ({"peerIP": "10.0.0.1", "peerSelector": "has(rr)"},
     r"BGPPeer\.spec: peerIP and peerSelector are mutually exclusive"),
    ({"peerSelector": "has(rr)", "asNumber": 65000}, r"BGPPeer\.spec\.asNumber: must be unset when peerSelector"),
    ({"peerSelector": "has(rr)", "asNumber": "0.1"}, r"BGPPeer\.spec\.asNumber: must be unset"),
    ({"peerSelector": "has(rr)", "asNumber": 0}, r"BGPPeer\.spec\.asNumber: AS number 0 is reserved"),
    ({}, r"BGPPeer\.spec: one of peerIP or peerSelector is required"),
    ({"asNumber": 64512, "node": "n1"}, r"one of peerIP or peerSelector is required"),
    ({"peerIP": "10.0.0.1", "node": "N1"}, r"BGPPeer\.spec\.node: 'N1' is not a DNS-1123 subdomain"),
    ({"peerIP": "10.0.0.1", "asNumber": "big"}, r"BGPPeer\.spec\.asNumber: 'big' is not an AS number"),
    ({"peerIP": "10.0.0.999"}, r"BGPPeer\.spec\.peerIP: '10.0.0.999' is not"),
    ({"peerIP": "10.0.0.1", "nodeSelector": "rack =="}, r"BGPPeer\.spec\.nodeSelector: selector"),
    ({"peerSelector": "has(rr"}, r"BGPPeer\.spec\.peerSelector: selector"),
])
def test_bad_peers(spec, match):
    refused(peer(spec), match=match)


# ------------------------------------------------------------------------------------------------
# BGPConfiguration
# ------------------------------------------------------------------------------------------------
def test_default_bgp_configuration():
    out = validate(res("BGPConfiguration", "default", {"asNumber": "64512", "nodeToNodeMeshEnabled": False,
                                                       "logSeverityScreen": "Info",
                                                       "serviceClusterIPs": [{"cidr": "10.96.0.0/12"}]}))
    assert out["spec"] == {"asNumber": 64512, "nodeToNodeMeshEnabled": False, "logSeverityScreen": "Info",
                           "serviceClusterIPs": [{"cidr": "10.96.0.0/12"}]}
    assert key_of(out) == f"{ROOT}bgpconfigurations/default"


def test_per_node_bgp_configuration_takes_non_default_fields():
    out = validate(res("BGPConfiguration", "node.node-1", {"logSeverityScreen": "Debug", "listenPort": 1790}))
    assert key_of(out) == f"{ROOT}bgpconfigurations/node.node-1"


@pytest.mark.parametrize("field_, value", [
    ("nodeToNodeMeshEnabled", False), ("asNumber", 64512), ("serviceClusterIPs", [{"cidr": "10.96.0.0/12"}]),
    ("serviceExternalIPs", []), ("serviceLoadBalancerIPs", []), ("nodeMeshPassword", {}),
    ("nodeMeshMaxRestartTime", "120s"),
])
def test_default_only_fields_are_refused_on_node_configs(field_, value):
    refused(res("BGPConfiguration", "node.n1", {field_: value}),
            match=rf"BGPConfiguration\.spec\.{field_}: may only be set on the BGPConfiguration named 'default' "
                  r"\(this one is 'node.n1'\)")


@pytest.mark.parametrize("name, spec, match", [
    ("global", {}, r"BGPConfiguration\.metadata\.name: 'global' must be 'default' or 'node.<nodename>'"),
    ("default", {"logSeverityScreen": "info"}, r"BGPConfiguration\.spec\.logSeverityScreen: 'info' is not one of"),
    ("default", {"nodeToNodeMeshEnabled": "false"},
     r"BGPConfiguration\.spec\.nodeToNodeMeshEnabled: must be a boolean"),
    ("default", {"asNumber": 2**32}, r"BGPConfiguration\.spec\.asNumber: 4294967296 is outside"),
    ("default", {"serviceClusterIPs": [{"cidr": "10.96.0.1/12"}]},
     r"BGPConfiguration\.spec\.serviceClusterIPs\[0\]\.cidr: '10.96.0.1/12': host bits are set"),
    ("default", {"serviceExternalIPs": "10.0.0.0/8"}, r"BGPConfiguration\.spec\.serviceExternalIPs: must be a list"),
    ("default", {"serviceClusterIPs": ["10.96.0.0/12"]}, r"serviceClusterIPs\[0\]: must be a mapping, got"),
    ("default", {"listenPort": 0}, r"BGPConfiguration\.spec\.listenPort: 0 must be a port 1–65535"),
    ("default", {"listenPort": 70000}, r"BGPConfiguration\.spec\.listenPort: 70000 must be a port"),
    ("default", {"listenPort": True}, r"BGPConfiguration\.spec\.listenPort: must be an integer, got True"),
])
def test_bad_bgp_configurations(name, spec, match):
    refused(res("BGPConfiguration", name, spec), match=match)


# ------------------------------------------------------------------------------------------------
# Node
# ------------------------------------------------------------------------------------------------
def node(bgp) -> dict:
    return res("Node", "node-1", {"bgp": bgp})


def test_node_bgp_fields():
    out = validate(node({"ipv4Address": "10.0.0.5/24", "ipv6Address": "fd00::5/64", "asNumber": "64512",
                         "routeReflectorClusterID": "224.0.0.1", "ipv4IPIPTunnelAddr": "192.168.0.1"}))
    assert out["spec"]["bgp"] == {"ipv4Address": "10.0.0.5/24", "ipv6Address": "fd00::5/64", "asNumber": 64512,
                                  "routeReflectorClusterID": "224.0.0.1", "ipv4IPIPTunnelAddr": "192.168.0.1"}


def test_node_address_may_be_bare_or_unmasked():
    assert validate(node({"ipv4Address": "10.0.0.5"}))
    assert validate(node({"ipv6Address": "fd00::5/64"}))
    assert validate(node({"ipv4IPIPTunnelAddr": "192.168.0.1"}))


def test_node_without_bgp_is_fine():
    assert validate(res("Node", "node-1", {}))["spec"] == {}


@pytest.mark.parametrize("bgp, match", [
    ({}, r"Node\.spec\.bgp: must be a non-empty mapping"),
    ("10.0.0.1", r"Node\.spec\.bgp: must be a mapping, got '10\.0\.0\.1'"),
    ({"asNumber": 64512}, r"Node\.spec\.bgp: one of ipv4Address, ipv6Address or ipv4IPIPTunnelAddr is required"),
    ({"ipv4Address": "fd00::1/64"}, r"Node\.spec\.bgp\.ipv4Address: 'fd00::1/64' is not an IPv4 address"),
    ({"ipv6Address": "10.0.0.1"}, r"Node\.spec\.bgp\.ipv6Address: '10.0.0.1' is not an IPv6 address"),
    ({"ipv4Address": "10.0.0.1/33"}, r"Node\.spec\.bgp\.ipv4Address: '10.0.0.1/33'"),
    ({"ipv4Address": "10.0.0.1/255.255.255.0"}, r"Node\.spec\.bgp\.ipv4Address: '10.0.0.1/255.255.255.0' is not"),
    ({"ipv6Address": "fe80::1%eth0/64"}, r"Node\.spec\.bgp\.ipv6Address: 'fe80::1%eth0/64' is not"),
    ({"ipv4Address": "10.0.0.1", "ipv4IPIPTunnelAddr": "10.0.0.0/24"}, r"Node\.spec\.bgp\.ipv4IPIPTunnelAddr"),
    ({"ipv4Address": "10.0.0.1", "routeReflectorClusterID": "rr-1"},
     r"Node\.spec\.bgp\.routeReflectorClusterID: 'rr-1' is not a cluster ID"),
    ({"ipv4Address": "10.0.0.1", "asNumber": -5}, r"Node\.spec\.bgp\.asNumber: -5 is outside"),
])
def test_bad_node_bgp(bgp, match):
    refused(node(bgp), match=match)


# ------------------------------------------------------------------------------------------------
# WorkloadEndpoint, HostEndpoint, policies, profiles, singletons
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("node_, orch, workload, endpoint, name", [
    ("node1", "k8s", "nginx-abc", "eth0", "node1-k8s-nginx--abc-eth0"),
    ("node-1", "k8s", "web", "eth0", "node--1-k8s-web-eth0"),
    ("node1", "cni", "abc123", "eth0", "node1-cni-abc123-eth0"),
    ("node1", "libnetwork", "ignored", "ep-1", "node1-libnetwork-libnetwork-ep--1"),
    ("node1", "openstack", "vm-1", "tap0", "node1-openstack-vm--1-tap0"),
])
def test_workload_endpoint_names(node_, orch, workload, endpoint, name):
    assert workload_endpoint_name(node_, orch, workload, endpoint) == name


def wep(name: str, **spec) -> dict:
    base = {"node": "node1", "orchestrator": "k8s", "pod": "nginx-abc", "endpoint": "eth0"}
    base.update(spec)
    return res("WorkloadEndpoint", name, base, namespace="default")


def test_workload_endpoint_with_its_computed_name_gets_the_forced_labels():
    out = validate(wep("node1-k8s-nginx--abc-eth0", ipNetworks=["10.0.1.5/32"]))
    assert key_of(out) == f"{ROOT}workloadendpoints/default/node1-k8s-nginx--abc-eth0"
    assert out["metadata"]["labels"] == {"projectcalico.org/namespace": "default",
                                         "projectcalico.org/orchestrator": "k8s"}


def test_workload_endpoint_without_a_name_gets_the_computed_one():
    """Reference §1.3: the name must equal the computed name, or is filled in if empty."""
    out = validate(wep(""))
    assert out["metadata"]["name"] == "node1-k8s-nginx--abc-eth0"
    body = wep("")
    del body["metadata"]["name"]
    assert validate(body)["metadata"]["name"] == "node1-k8s-nginx--abc-eth0"


@pytest.mark.parametrize("resource, match", [
    (wep("node1-k8s-nginx-abc-eth0"),
     r"WorkloadEndpoint\.metadata\.name: 'node1-k8s-nginx-abc-eth0' must be the computed name "
     r"'node1-k8s-nginx--abc-eth0'"),
    (wep("x", pod=None), r"WorkloadEndpoint\.spec\.pod: is required for orchestrator k8s"),
    (wep("x", orchestrator="cni", pod=None), r"WorkloadEndpoint\.spec\.containerID: is required for orchestrator cni"),
    (wep("x", endpoint=""), r"WorkloadEndpoint\.spec\.endpoint: is required"),
    (wep("x", node=5), r"WorkloadEndpoint\.spec\.node: must be a string, got 5"),
    (wep("", pod=["p"]), r"WorkloadEndpoint\.metadata\.name: a non-empty name is required"),
    (wep("node1-k8s-nginx--abc-eth0", ipNetworks=["10.0.1.500/32"]), r"WorkloadEndpoint\.spec\.ipNetworks\[0\]"),
])
def test_bad_workload_endpoints(resource, match):
    refused(resource, match=match)


def test_host_endpoints():
    assert validate(res("HostEndpoint", "h1", {"node": "n1", "expectedIPs": ["10.0.0.1"]}))
    refused(res("HostEndpoint", "h1", {"node": "n1"}), match=r"HostEndpoint\.spec: one of interfaceName or expectedIPs")
    refused(res("HostEndpoint", "h1", {"interfaceName": "eth0"}), match=r"HostEndpoint\.spec\.node: a non-empty name")
    refused(res("HostEndpoint", "h1", {"node": "n1", "expectedIPs": ["x"]}),
            match=r"HostEndpoint\.spec\.expectedIPs\[0\]: 'x' is not")


def test_policies():
    gnp = validate(res("GlobalNetworkPolicy", "allow-dns", {
        "selector": "all()", "order": 10, "types": ["Ingress", "Egress"],
        "egress": [{"action": "Allow",
                    "destination": {"selector": "k8s-app == 'kube-dns'", "nets": ["10.96.0.10/32"]}}],
    }))
    assert gnp["metadata"]["name"] == "default.allow-dns"
    assert validate(res("NetworkPolicy", "knp.default.from-k8s", {}, namespace="ns1"))["metadata"]["name"] == (
        "knp.default.from-k8s")


@pytest.mark.parametrize("resource, match", [
    (res("GlobalNetworkPolicy", "a.b", {}), r"GlobalNetworkPolicy\.metadata\.name: 'a.b' is not a DNS-1123 label"),
    (res("GlobalNetworkPolicy", "default.a.b", {}), r"GlobalNetworkPolicy\.metadata\.name: 'a.b'"),
    (res("GlobalNetworkPolicy", "knp.default.x", {}), r"GlobalNetworkPolicy\.metadata\.name: 'knp.default.x'"),
    (res("GlobalNetworkPolicy", "p", {"selector": "a =="}), r"GlobalNetworkPolicy\.spec\.selector: selector"),
    (res("GlobalNetworkPolicy", "p", {"order": "1"}), r"GlobalNetworkPolicy\.spec\.order: must be a number"),
    (res("GlobalNetworkPolicy", "p", {"order": True}), r"GlobalNetworkPolicy\.spec\.order: must be a number"),
    (res("GlobalNetworkPolicy", "p", {"types": ["ingress"]}),
     r"GlobalNetworkPolicy\.spec\.types\[0\]: 'ingress' is not one of Ingress, Egress"),
    (res("NetworkPolicy", "p", {"ingress": [{"action": "allow"}]}, namespace="ns"),
     r"NetworkPolicy\.spec\.ingress\[0\]\.action: 'allow' is not one of Allow, Deny, Log, Pass"),
    (res("NetworkPolicy", "p", {"egress": [{"action": "Deny", "source": {"nets": ["10.0.0.0/40"]}}]}, namespace="ns"),
     r"NetworkPolicy\.spec\.egress\[0\]\.source\.nets\[0\]"),
    (res("NetworkPolicy", "p", {"egress": "all"}, namespace="ns"), r"NetworkPolicy\.spec\.egress: must be a list"),
    (res("Profile", "p", {"labelsToApply": {"a b": "x"}}), r"Profile\.spec\.labelsToApply: key 'a b'"),
    (res("Profile", "p", {"ingress": [{"action": "Allow", "source": {"selector": "x ="}}]}),
     r"Profile\.spec\.ingress\[0\]\.source\.selector: selector"),
    (res("ClusterInformation", "cluster", {}),
     r"ClusterInformation\.metadata\.name: the only allowed name is 'default'"),
    (res("ClusterInformation", "default", {"datastoreReady": "true"}),
     r"ClusterInformation\.spec\.datastoreReady: must be a boolean"),
    (res("FelixConfiguration", "felix", {}), r"FelixConfiguration\.metadata\.name: 'felix' must be 'default' or"),
])
def test_bad_other_kinds(resource, match):
    refused(resource, match=match)


def test_singletons():
    assert key_of(validate(res("ClusterInformation", "default", {"datastoreReady": True}))) == (
        f"{ROOT}clusterinformations/default")
    assert key_of(validate(res("FelixConfiguration", "node.n1", {}))) == f"{ROOT}felixconfigurations/node.n1"


def test_every_message_names_a_field_before_a_colon():
    """The message format the modules rely on: '<field>: <rule>'."""
    for bad in (pool({"cidr": "10.0.0.0/28"}), peer({}), node({}), wep("x")):
        with pytest.raises(ValidationError) as info:
            validate(bad)
        assert re.match(r"^[A-Za-z]+\.[\w.\[\]-]+: \S", str(info.value)), str(info.value)
