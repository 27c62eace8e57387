from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.errors import FieldError, PayloadTooLarge, ValidationFailed
from core.validation import EventValidator

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MAX_BYTES = 300
SKEW_SECONDS = 300
RETENTION_DAYS = 30


@pytest.fixture
def validator() -> EventValidator:
    return EventValidator(
        max_event_bytes=MAX_BYTES, max_future_skew_seconds=SKEW_SECONDS, retention_days=RETENTION_DAYS
    )


def test_mixed_batch_keeps_valid_events_with_their_indexes(validator):
    raws = [
        {"event_type": "content_view", "user_id": "u1"},  # 0 valid
        {"event_type": "Bad-Type"},  # 1 pattern
        {"event_type": "content_view", "colour": "red"},  # 2 unknown field
        "not an object",  # 3
        {"event_type": "content_view", "properties": {"blob": "x" * 400}},  # 4 too large
        {"event_type": "content_view", "timestamp": (NOW + timedelta(seconds=600)).isoformat()},  # 5 future
        # 6 valid: exactly at the skew limit
        {"event_type": "search_query", "timestamp": (NOW + timedelta(seconds=SKEW_SECONDS)).isoformat()},
        {"event_type": "content_view", "timestamp": (NOW - timedelta(days=31)).isoformat()},  # 7 too old
        {"user_id": "u2"},  # 8 missing event_type
        # 9 valid: exactly at the retention limit
        {"event_type": "my_custom_event", "timestamp": (NOW - timedelta(days=RETENTION_DAYS)).isoformat()},
    ]
    batch = validator.validate_batch(raws, NOW)

    kept = [(i, e["event_type"]) for i, e in batch.events]
    assert kept == [(0, "content_view"), (6, "search_query"), (9, "my_custom_event")]
    assert batch.events[0][1]["user_id"] == "u1"
    assert [(e.index, e.field, e.code) for e in batch.errors] == [
        (1, "event_type", "invalid_value"),
        (2, "colour", "unknown_field"),
        (3, "(event)", "not_an_object"),
        (4, "(event)", "too_large"),
        (5, "timestamp", "timestamp_out_of_range"),
        (7, "timestamp", "timestamp_out_of_range"),
        (8, "event_type", "missing_field"),
    ]
    messages = {e.index: e.message for e in batch.errors}
    assert messages[1].startswith("must be lower snake case matching [a-z][a-z0-9_]{1,63}")
    assert messages[2] == "unknown field; custom data belongs in 'properties'"
    assert messages[3] == "must be a JSON object"
    assert messages[4] == f"event is 454 bytes; the limit is {MAX_BYTES} bytes"
    assert messages[5] == f"is 600 s in the future; at most {SKEW_SECONDS} s of clock skew is allowed"
    assert messages[7] == f"is older than the retention period of {RETENTION_DAYS} days"
    assert messages[8] == "is required"
    assert batch.rejected_indexes == {1, 2, 3, 4, 5, 7, 8}


def test_every_problem_of_one_event_is_reported(validator):
    batch = validator.validate_batch([{"event_type": "ok_type"}, {"event_type": "X", "a": 1, "country": "U1"}], NOW)
    assert [i for i, _ in batch.events] == [0]
    assert sorted((e.index, e.field, e.code) for e in batch.errors) == [
        (1, "a", "unknown_field"),
        (1, "country", "invalid_value"),
        (1, "event_type", "invalid_value"),
    ]
    country = next(e for e in batch.errors if e.field == "country")
    assert country.message == "must be an ISO 3166-1 alpha-2 code such as 'US'"


def test_errors_are_sorted_by_index(validator):
    # Size errors are found before field errors; they must still be returned in index order.
    raws = [
        {"event_type": "bad-1"},
        {"event_type": "ok_type", "properties": {"p": "y" * 400}},
        {"nope": 1, "event_type": "ok_type"},
        {"event_type": "ok_type", "properties": {"p": "z" * 400}},
        {"event_type": "ok_type", "timestamp": (NOW + timedelta(days=1)).isoformat()},
    ]
    batch = validator.validate_batch(raws, NOW)
    assert [(e.index, e.code) for e in batch.errors] == [
        (0, "invalid_value"),
        (1, "too_large"),
        (2, "unknown_field"),
        (3, "too_large"),
        (4, "timestamp_out_of_range"),
    ]
    assert batch.events == []


def test_all_valid_fast_path_keeps_order(validator):
    types = [f"custom_{n}" for n in (5, 3, 9, 1, 7, 2)]
    batch = validator.validate_batch([{"event_type": t, "properties": {"n": i}} for i, t in enumerate(types)], NOW)
    assert batch.errors == []
    assert batch.rejected_indexes == set()
    assert [(i, e["event_type"], e["properties"]["n"]) for i, e in batch.events] == [
        (i, t, i) for i, t in enumerate(types)
    ]


def test_timestamp_checks_apply_on_the_fast_path_too(validator):
    raws = [
        {"event_type": "a_one"},
        {"event_type": "a_two", "timestamp": (NOW + timedelta(seconds=SKEW_SECONDS + 1)).isoformat()},
        {"event_type": "a_three"},
    ]
    batch = validator.validate_batch(raws, NOW)
    assert [i for i, _ in batch.events] == [0, 2]
    assert [(e.index, e.field, e.message) for e in batch.errors] == [
        (1, "timestamp", f"is {SKEW_SECONDS + 1} s in the future; at most {SKEW_SECONDS} s of clock skew is allowed")
    ]


def test_empty_batch(validator):
    batch = validator.validate_batch([], NOW)
    assert batch.events == [] and batch.errors == []


def test_size_limit_is_inclusive():
    raw = {"event_type": "ab", "properties": {"p": "x" * 9}}  # 50 bytes of compact JSON
    exact = EventValidator(max_event_bytes=50, max_future_skew_seconds=1, retention_days=1)
    assert [i for i, _ in exact.validate_batch([raw], NOW).events] == [0]
    smaller = EventValidator(max_event_bytes=49, max_future_skew_seconds=1, retention_days=1)
    assert [e.code for e in smaller.validate_batch([raw], NOW).errors] == ["too_large"]


def test_validate_one_returns_the_event(validator):
    event = validator.validate_one({"event_type": " content_view ", "timestamp": "2026-06-01T13:00:00+02:00"}, NOW)
    assert event["event_type"] == "content_view"
    assert event["timestamp"] == datetime(2026, 6, 1, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-06-01T11:06:07", datetime(2026, 6, 1, 11, 6, 7, tzinfo=UTC)),  # no offset: read as UTC
        ("2026-06-01T13:06:07+02:00", datetime(2026, 6, 1, 11, 6, 7, tzinfo=UTC)),
        ("2026-06-01T11:06:07Z", datetime(2026, 6, 1, 11, 6, 7, tzinfo=UTC)),
        (
            datetime(2026, 6, 1, 3, 6, 7, tzinfo=timezone(timedelta(hours=-8))),
            datetime(2026, 6, 1, 11, 6, 7, tzinfo=UTC),
        ),
    ],
)
def test_timestamps_come_out_in_utc(validator, sent, stored):
    ((_, event),) = validator.validate_batch([{"event_type": "content_view", "timestamp": sent}], NOW).events
    assert event["timestamp"] == stored
    assert event["timestamp"].utcoffset() == timedelta(0)
    assert event["timestamp"].hour == 11


def test_a_timestamp_without_offset_is_judged_as_utc(validator):
    # One second past the allowed skew when read as UTC, the only reading that refuses it.
    ahead = (NOW + timedelta(seconds=SKEW_SECONDS + 1)).replace(tzinfo=None).isoformat()
    batch = validator.validate_batch([{"event_type": "content_view", "timestamp": ahead}], NOW)
    assert [(e.index, e.field, e.code) for e in batch.errors] == [(0, "timestamp", "timestamp_out_of_range")]
    assert (
        batch.errors[0].message
        == f"is {SKEW_SECONDS + 1} s in the future; at most {SKEW_SECONDS} s of clock skew is allowed"
    )


@pytest.mark.parametrize("properties", ["x", [1, 2], 3, None])
def test_properties_that_are_not_an_object_are_refused_by_name(validator, properties):
    batch = validator.validate_batch([{"event_type": "content_view", "properties": properties}], NOW)
    assert batch.events == []
    assert [(e.index, e.field, e.code, e.message) for e in batch.errors] == [
        (0, "properties", "not_an_object", "must be a JSON object")
    ]


def test_properties_are_kept_as_sent(validator):
    properties = {"n": 1, "nested": {"list": [1, "two", None]}, "flag": True}
    ((_, event),) = validator.validate_batch([{"event_type": "content_view", "properties": properties}], NOW).events
    assert event["properties"] == {"n": 1, "nested": {"list": [1, "two", None]}, "flag": True}


def test_validate_one_raises_payload_too_large(validator):
    with pytest.raises(PayloadTooLarge) as exc:
        validator.validate_one({"event_type": "content_view", "properties": {"blob": "x" * 400}}, NOW)
    assert exc.value.message == f"event is 454 bytes; the limit is {MAX_BYTES} bytes"
    assert exc.value.status == 413


def test_validate_one_raises_validation_failed_with_field_names(validator):
    with pytest.raises(ValidationFailed) as exc:
        validator.validate_one({"event_type": "content_view", "colour": "red", "country": "U1"}, NOW)
    assert sorted(e.field for e in exc.value.errors) == ["colour", "country"]
    # A single event: no index in the errors.
    assert [e.index for e in exc.value.errors] == [None, None]
    assert sorted(d["field"] for d in exc.value.details) == ["colour", "country"]
    assert all("index" not in d for d in exc.value.details)


def test_validate_one_refuses_out_of_range_timestamp(validator):
    with pytest.raises(ValidationFailed) as exc:
        validator.validate_one({"event_type": "content_view", "timestamp": (NOW - timedelta(days=40)).isoformat()}, NOW)
    assert exc.value.errors == [
        FieldError(
            field="timestamp", message="is older than the retention period of 30 days", code="timestamp_out_of_range"
        )
    ]
    assert exc.value.message == "timestamp: is older than the retention period of 30 days"


def test_validate_one_refuses_non_object(validator):
    with pytest.raises(ValidationFailed) as exc:
        validator.validate_one(["event_type", "content_view"], NOW)
    assert [(e.field, e.code) for e in exc.value.errors] == [("(event)", "not_an_object")]
