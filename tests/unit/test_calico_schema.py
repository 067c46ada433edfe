"""The typed v3 schema (calico/schema.py), the pool-overlap rule and the plan shape check, in isolation."""

from __future__ import annotations

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils.calico import schema
from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError
from ansible_collections.kubescale.calico.plugins.module_utils.calico.resources import KINDS, validate
from ansible_collections.kubescale.calico.plugins.module_utils.calico.validate import check_pool_overlaps
from ansible_collections.kubescale.calico.plugins.module_utils.migration.v1_convert import FELIX_FIELDS


def test_every_kind_the_collection_writes_has_a_shape():
    assert set(schema.SPECS) == set(KINDS)


@pytest.mark.parametrize("value", ["0", "90s", "1m30s", "1h2m3.5s", "250ms", "-5s", "+1.5h", "10us", "3µs", ".5s"])
def test_go_durations_are_accepted(value):
    schema.check(value, schema.DURATION, "d")


@pytest.mark.parametrize("value", ["5", "5 s", "s", "", "1d", "1.2.3s", 5, None])
def test_what_go_cannot_parse_as_a_duration_is_refused(value):
    with pytest.raises(ValidationError, match=r"^d: must be a duration"):
        schema.check(value, schema.DURATION, "d")


@pytest.mark.parametrize(("value", "shape", "message"), [
    ({"a": 1}, {"b": schema.INT}, r"^x\.a: unknown field$"),
    ({"b": [1, "2"]}, {"b": schema.ListOf(schema.INT)}, r"^x\.b\[1\]: must be an integer, got '2'$"),
    ({"b": {"k": 1}}, {"b": schema.MapOf(schema.STR)}, r"^x\.b\.k: must be a string, got 1$"),
    ({"b": "yes"}, {"b": schema.BOOL}, r"^x\.b: must be a boolean, got 'yes'$"),
    ({"b": True}, {"b": schema.INT}, r"^x\.b: must be an integer, got True$"),
    ({"b": False}, {"b": schema.NUM}, r"^x\.b: must be a number, got False$"),
    ({"b": 1.5}, {"b": schema.INT_OR_STR}, r"^x\.b: must be an integer or a string, got 1\.5$"),
    ({"b": ""}, {"b": schema.Enum("A", "B")}, r"^x\.b: '' is not one of A, B$"),
    ({"b": [{"c": {"d": 1}}]}, {"b": schema.ListOf({"c": {"e": schema.INT}})}, r"^x\.b\[0\]\.c\.d: unknown field$"),
    ("text", {"b": schema.INT}, r"^x: must be a mapping, got 'text'$"),
])
def test_the_walker_names_the_path_and_the_rule(value, shape, message):
    with pytest.raises(ValidationError, match=message):
        schema.check(value, shape, "x")


def test_null_means_unset_and_empty_is_allowed_where_go_omits_it():
    schema.check({"b": None, "c": ""}, {"b": schema.INT, "c": schema.Enum("A", empty_ok=True)}, "x")


def test_long_values_are_shortened_in_messages():
    with pytest.raises(ValidationError) as caught:
        schema.check("x" * 500, schema.INT, "x")
    assert len(str(caught.value)) < 120


_V1_KIND_SHAPES = {"bool": schema.BOOL, "int": schema.INT, "uint32": schema.INT, "secs": schema.DURATION,
                   "ms": schema.DURATION, "loglevel": schema.LOG_LEVEL_OR_EMPTY}


@pytest.mark.parametrize(("v1_name", "field", "kind"), [(k, *v) for k, v in FELIX_FIELDS.items()])
def test_every_field_the_migration_writes_is_in_the_felix_shape_with_its_type(v1_name, field, kind):
    shape = schema.FELIX_CONFIGURATION[field]
    if kind == "str":
        assert shape == schema.STR or isinstance(shape, schema.Enum)
    elif kind == "protoports":
        assert isinstance(shape, schema.ListOf)
    else:
        assert shape == _V1_KIND_SHAPES[kind]


def test_status_only_where_the_kind_has_one():
    node = {"kind": "Node", "metadata": {"name": "n1"}, "spec": {}, "status": {"podCIDRs": ["10.0.0.0/24"]}}
    assert validate(node)
    with pytest.raises(ValidationError, match=r"^IPPool\.status: unknown field"):
        validate({"kind": "IPPool", "metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/16"}, "status": {}})


def pool(name: str, cidr: str) -> dict:
    return {"kind": "IPPool", "metadata": {"name": name}, "spec": {"cidr": cidr}}


def test_pools_that_do_not_overlap_pass():
    stored = [pool("a", "10.0.0.0/16"), pool("v6", "fd00::/48")]
    check_pool_overlaps([(0, pool("b", "10.1.0.0/16")), (1, pool("c", "fd00:1::/48"))], stored)
    check_pool_overlaps([(0, pool("a", "10.0.0.0/16"))], stored)  # an update of itself


@pytest.mark.parametrize(("written", "message"), [
    ([(0, pool("b", "10.0.128.0/17"))], r"^resources\[0\]: IPPool\(b\) CIDR 10\.0\.128\.0/17 overlaps with IPPool\(a\) "
                                        r"CIDR 10\.0\.0\.0/16 \(stored\)$"),
    ([(0, pool("c", "10.9.0.0/16")), (1, pool("d", "10.9.0.0/24"))],
     r"^resources\[1\]: IPPool\(d\) CIDR 10\.9\.0\.0/24 overlaps with IPPool\(c\) CIDR 10\.9\.0\.0/16 "
     r"\(resources\[0\]\)$"),
])
def test_overlapping_pools_are_refused(written, message):
    with pytest.raises(ValidationError, match=message):
        check_pool_overlaps(written, [pool("a", "10.0.0.0/16")])
