"""The input limits of ingest: how deep and wide ``properties`` may be, what an ``ip_address`` must be,
and events nested past what the JSON encoder writes. Expected answers come from the small reference
functions below (a recursive walk, the standard library's ``ipaddress``), not from the code under test."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from core.enrichment.ip import is_ip_address
from core.errors import InvalidRequest, ValidationFailed
from core.settings import Settings
from core.validation import EventValidator, properties_problem
from semantic.ingest_metrics import IngestMetrics
from semantic.ingestion import IngestService
from serve_app.http import parse_json
from tests.graphql.fakes import MemoryEventStore

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEPTH = 4
KEYS = 10
TOO_DEEP = f"nests more than {DEPTH} levels deep; objects and arrays count a level each"
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list | tuple):
        return list(value)
    return []


def depth_of(value: Any) -> int:
    """Levels of objects and arrays: a scalar is 0, ``{}`` is 1, ``{"a": []}`` is 2 (depth first, with a
    stack of its own: test values nest past Python's recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, above = stack.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, above + 1)
            stack.extend((child, above + 1) for child in children(item))
    return deepest


def keys_of(value: Any) -> int:
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
        stack.extend(children(item))
    return count


def nested(levels: int, inner: Any = 1, key: str = "a") -> Any:
    """``levels`` objects, one inside the other, around ``inner``."""
    value = inner
    for _ in range(levels):
        value = {key: value}
    return value


def validator(**limits: int) -> EventValidator:
    return EventValidator(
        max_event_bytes=1 << 20,
        max_future_skew_seconds=300,
        retention_days=30,
        max_properties_depth=limits.get("depth", DEPTH),
        max_properties_keys=limits.get("keys", KEYS),
    )


def problems(batch: Any) -> list[tuple[int | None, str, str]]:
    return [(e.index, e.field, e.code) for e in batch.errors]


# --- the reference functions agree with the examples the docs give ---------------------------------


def test_the_reference_counts_as_the_docs_say() -> None:
    assert depth_of({"a": {"b": [1]}}) == 3
    assert keys_of({"a": 1, "b": {"c": 1, "d": [{"e": 1}]}}) == 5
    assert depth_of(nested(5)) == 5


# --- properties_problem ------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [1, 2, DEPTH - 1, DEPTH])
def test_properties_up_to_the_depth_limit_pass(levels: int) -> None:
    properties = nested(levels)
    assert depth_of(properties) == levels
    assert properties_problem(properties, DEPTH, KEYS) is None


@pytest.mark.parametrize("levels", [DEPTH + 1, DEPTH + 2, 50, 500])
def test_properties_past_the_depth_limit_are_too_deep(levels: int) -> None:
    assert properties_problem(nested(levels), DEPTH, 1000) == ("too_deep", TOO_DEEP)


def test_arrays_count_as_levels_too() -> None:
    within = {"a": [[[1]]]}  # properties, three arrays: 4 levels
    past = {"a": [[[[1]]]]}
    assert (depth_of(within), depth_of(past)) == (DEPTH, DEPTH + 1)
    assert properties_problem(within, DEPTH, KEYS) is None
    assert properties_problem(past, DEPTH, KEYS) == ("too_deep", TOO_DEEP)


@pytest.mark.parametrize(
    "properties",
    [
        {f"k{i}": i for i in range(KEYS)},  # flat, exactly at the limit
        {"a": {f"k{i}": i for i in range(KEYS - 1)}},  # nested: a plus the inner keys
        {"list": [{"x": 1}, {"y": 2}, {"z": 3}], "n": None},  # keys of objects inside arrays count
    ],
)
def test_keys_up_to_the_limit_pass(properties: dict[str, Any]) -> None:
    assert keys_of(properties) <= KEYS
    assert properties_problem(properties, DEPTH, KEYS) is None


@pytest.mark.parametrize(
    "properties",
    [
        {f"k{i}": i for i in range(KEYS + 1)},
        {"a": {f"k{i}": i for i in range(KEYS)}},
        {"list": [{f"k{i}": i} for i in range(KEYS)]},
    ],
)
def test_keys_past_the_limit_are_too_many(properties: dict[str, Any]) -> None:
    assert keys_of(properties) == KEYS + 1
    assert properties_problem(properties, DEPTH, KEYS) == (
        "too_many_keys",
        f"holds more than {KEYS} keys, counting those of nested objects",
    )


JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


@FUZZ
@given(
    properties=st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=6),
    max_depth=st.integers(1, 6),
    max_keys=st.integers(1, 25),
)
def test_properties_problem_agrees_with_a_recursive_count(
    properties: dict[str, Any], max_depth: int, max_keys: int
) -> None:
    too_deep = depth_of(properties) > max_depth
    too_many = keys_of(properties) > max_keys
    problem = properties_problem(properties, max_depth, max_keys)
    if not (too_deep or too_many):
        assert problem is None
    else:
        assert problem is not None
        # Whichever limit is met first may be named when both are passed.
        assert problem[0] in ({"too_deep"} if too_deep else set()) | ({"too_many_keys"} if too_many else set())


# --- the validator ------------------------------------------------------------------------------------


def test_a_500_deep_event_in_a_batch_is_refused_alone() -> None:
    good = {"event_type": "content_view", "content_id": "c1", "properties": {"n": 1}}
    deep = {"event_type": "content_view", "properties": nested(500)}
    batch = validator(depth=32, keys=1000).validate_batch([good, deep, dict(good)], NOW)
    assert [index for index, _ in batch.events] == [0, 2]
    assert problems(batch) == [(1, "properties", "too_deep")]
    assert batch.errors[0].message == "nests more than 32 levels deep; objects and arrays count a level each"


def test_nesting_past_the_json_encoder_names_the_field() -> None:
    # 300 levels: past what orjson writes (254), so the size check itself cannot measure the event.
    raws = [
        {"event_type": "content_view", "properties": nested(300)},
        {"event_type": "content_view", "user_id": nested(300)},
        {"event_type": "content_view"},
        [nested(300)],
    ]
    batch = validator().validate_batch(raws, NOW)
    assert [index for index, _ in batch.events] == [2]
    assert problems(batch) == [(0, "properties", "too_deep"), (1, "user_id", "too_deep"), (3, "(event)", "too_deep")]


def test_a_value_json_cannot_carry_is_refused_by_field() -> None:
    batch = validator().validate_batch([{"event_type": "content_view", "properties": {"s": {1, 2}}}], NOW)
    assert batch.events == []
    assert problems(batch) == [(0, "properties", "invalid_value")]
    assert batch.errors[0].message.startswith("cannot be written as JSON")


def test_too_many_keys_in_a_batch() -> None:
    raws = [
        {"event_type": "content_view", "properties": {"a": [{"k": i} for i in range(KEYS)]}},  # 11 keys
        {"event_type": "content_view", "properties": {"a": [{"k": i} for i in range(KEYS - 1)]}},  # 10 keys
    ]
    batch = validator().validate_batch(raws, NOW)
    assert [index for index, _ in batch.events] == [1]
    assert problems(batch) == [(0, "properties", "too_many_keys")]


def test_validate_one_refuses_deep_properties_by_name() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validator().validate_one({"event_type": "content_view", "properties": nested(DEPTH + 1)}, NOW)
    assert exc.value.status == 422
    assert exc.value.details == [{"field": "properties", "code": "too_deep", "message": TOO_DEEP}]
    with pytest.raises(ValidationFailed) as past_encoder:
        validator().validate_one({"event_type": "content_view", "properties": nested(400)}, NOW)
    assert [(e.field, e.code) for e in past_encoder.value.errors] == [("properties", "too_deep")]


# --- ip_address ---------------------------------------------------------------------------------------

IP_TEXTS = [
    "203.0.113.7",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "::1",
    "::ffff:1.2.3.4",
    "fe80::1%eth0",
    "2001:0DB8:0001:ffff::1",
    "999.1.1.1::zz",
    "999.1.1.1",
    "1.2.3",
    "1.2.3.4:80",
    "1.2.3.04",
    "2001:db8::g",
    "bogus",
    "1.2.3.4/24",
    "::ffff:999.1.1.1",
]


def reference_is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("text", IP_TEXTS)
def test_is_ip_address_agrees_with_ipaddress(text: str) -> None:
    assert is_ip_address(text) is reference_is_ip(text)


@FUZZ
@given(text=st.text(alphabet="0123456789abcdefABCDEF.:%z", min_size=2, max_size=40) | st.ip_addresses().map(str))
def test_is_ip_address_agrees_with_ipaddress_on_any_text(text: str) -> None:
    assert is_ip_address(text) is reference_is_ip(text)


def test_an_invalid_ip_refuses_the_event_by_name() -> None:
    raws = [
        {"event_type": "content_view", "ip_address": "999.1.1.1::zz"},
        {"event_type": "content_view", "ip_address": " 203.0.113.7 "},  # surrounding spaces are stripped
        {"event_type": "content_view", "ip_address": "2001:db8::1"},
        {"event_type": "content_view", "ip_address": None},
        {"event_type": "content_view"},
        # Every problem of the event is named, not only the first.
        {"event_type": "content_view", "ip_address": "1.2.3", "properties": nested(DEPTH + 1)},
    ]
    batch = validator().validate_batch(raws, NOW)
    assert [index for index, _ in batch.events] == [1, 2, 3, 4]
    assert problems(batch) == [
        (0, "ip_address", "invalid_value"),
        (5, "properties", "too_deep"),
        (5, "ip_address", "invalid_value"),
    ]
    assert batch.errors[0].message == "must be an IPv4 or IPv6 address such as '203.0.113.7' or '2001:db8::1'"


def test_validate_one_refuses_an_invalid_ip() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validator().validate_one({"event_type": "content_view", "ip_address": "999.1.1.1::zz"}, NOW)
    assert [(e.field, e.code, e.index) for e in exc.value.errors] == [("ip_address", "invalid_value", None)]


# --- wiring: settings reach the ingest path; the JSON parser's own limit ---------------------------------


async def test_ingest_uses_the_limits_from_settings() -> None:
    settings = Settings(environment="test", max_properties_depth=2, max_properties_keys=3)
    store = MemoryEventStore()
    service = IngestService(store, settings, IngestMetrics(CollectorRegistry()))
    raws = [
        {"event_type": "content_view", "properties": {"a": {"b": 1}}},  # 2 levels, 2 keys
        {"event_type": "content_view", "properties": {"a": {"b": [1]}}},  # 3 levels
        {"event_type": "content_view", "properties": {"a": 1, "b": 2, "c": {"d": 1}}},  # 4 keys
        {"event_type": "content_view", "ip_address": "203.0.113.300"},
    ]
    result = await service.ingest_batch(raws)
    assert (result.accepted, result.rejected) == (1, 3)
    assert [(e.index, e.field, e.code) for e in result.errors] == [
        (1, "properties", "too_deep"),
        (2, "properties", "too_many_keys"),
        (3, "ip_address", "invalid_value"),
    ]
    assert len(store.rows) == 1
    (stored,) = store.rows.values()
    assert stored["properties"] == {"a": {"b": 1}}
    rejected = service.metrics.registry.get_sample_value
    assert rejected("analytics_events_rejected_total", {"reason": "too_deep"}) == 1
    assert rejected("analytics_events_rejected_total", {"reason": "too_many_keys"}) == 1


def test_a_body_past_the_parser_depth_is_a_400_naming_the_body() -> None:
    body = b'{"events": [' + b"[" * 2000 + b"]" * 2000 + b"]}"
    with pytest.raises(InvalidRequest) as exc:
        parse_json(body)
    assert exc.value.status == 400
    assert exc.value.details["field"] == "(body)"
    assert exc.value.details["line"] == 1
    assert "nests more than 1024 levels" in exc.value.message


@pytest.mark.parametrize("raw", [b"{", b'{"a": }', b"\xff", b'"\\ud800"', b"1e400", b"[1,]"])
def test_malformed_json_is_a_400_naming_the_body(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_json(raw)
    assert exc.value.details["field"] == "(body)"
    assert exc.value.message.startswith("request body is not valid JSON: ")
