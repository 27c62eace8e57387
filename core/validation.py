"""Event validation: every refused event gets its index, the field at fault and why.

A batch is validated in one call (fast path); only when it holds bad events are the
events checked one by one, so good events beside bad ones are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from core.errors import FieldError, PayloadTooLarge, ValidationFailed
from core.models import EVENT_IN, EventIn

_EVENT_LIST = TypeAdapter(list[EventIn])

# Friendlier words for pydantic's generic messages.
_MESSAGES = {
    "extra_forbidden": "unknown field; custom data belongs in 'properties'",
    "missing": "is required",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "is_instance_of": "must be a JSON object",
}
_CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
    "model_type": "not_an_object",
    "dict_type": "not_an_object",
    "is_instance_of": "not_an_object",
}
_PATTERN_MESSAGES = {
    "event_type": "must be lower snake case matching [a-z][a-z0-9_]{1,63}: a built-in type or a custom one",
    "event_category": "must be lower snake case matching [a-z][a-z0-9_]{1,31}",
    "country": "must be an ISO 3166-1 alpha-2 code such as 'US'",
}


@dataclass(slots=True)
class ValidatedBatch:
    """Valid events with their position in the request, and one error per problem found."""

    events: list[tuple[int, EventIn]] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    @property
    def rejected_indexes(self) -> set[int]:
        return {e.index for e in self.errors if e.index is not None}


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = list(err["loc"])
        path = ".".join(str(p) for p in loc) or "(event)"
        if err["type"] == "string_pattern_mismatch" and path in _PATTERN_MESSAGES:
            message = _PATTERN_MESSAGES[path]
        else:
            message = _MESSAGES.get(err["type"], err["msg"])
        out.append(FieldError(field=path, message=message, code=_CODES.get(err["type"], "invalid_value")))
    return out


class EventValidator:
    def __init__(self, *, max_event_bytes: int, max_future_skew_seconds: int, retention_days: int) -> None:
        self.max_event_bytes = max_event_bytes
        self.max_future_skew = timedelta(seconds=max_future_skew_seconds)
        self.retention = timedelta(days=retention_days)

    def validate_batch(self, raw_events: list[Any], now: datetime) -> ValidatedBatch:
        result = ValidatedBatch()
        dumps, limit = orjson.dumps, self.max_event_bytes
        sizes = [len(dumps(raw)) for raw in raw_events]
        # Usually none is too large: then the request's own list is validated, with no copy.
        indexes: Sequence[int] = range(len(raw_events))
        sized = raw_events
        if sizes and max(sizes) > limit:
            for index, size in enumerate(sizes):
                if size > limit:
                    result.errors.append(
                        FieldError(
                            index=index,
                            field="(event)",
                            message=f"event is {size} bytes; the limit is {limit} bytes",
                            code="too_large",
                        )
                    )
            indexes = [index for index, size in enumerate(sizes) if size <= limit]
            sized = [raw_events[index] for index in indexes]
        candidates: Iterable[tuple[int, EventIn]]
        try:
            candidates = zip(indexes, _EVENT_LIST.validate_python(sized), strict=True)
        except ValidationError:
            one_by_one: list[tuple[int, EventIn]] = []
            for index, raw in zip(indexes, sized, strict=True):
                try:
                    one_by_one.append((index, EVENT_IN.validate_python(raw)))
                except ValidationError as exc:
                    result.errors.extend(
                        FieldError(field=e.field, message=e.message, index=index, code=e.code)
                        for e in _field_errors(exc)
                    )
            candidates = one_by_one
        latest, earliest = now + self.max_future_skew, now - self.retention
        for index, event in candidates:
            ts = event.get("timestamp")
            if ts is not None:
                # Here rather than in a pydantic validator, which costs a Python call per event. Also
                # for "Z": pydantic's own UTC zone makes every comparison ask it for its offset.
                tz = ts.tzinfo
                if tz is not UTC:
                    ts = event["timestamp"] = ts.replace(tzinfo=UTC) if tz is None else ts.astimezone(UTC)
                if not earliest <= ts <= latest:
                    result.errors.append(
                        FieldError(
                            index=index,
                            field="timestamp",
                            message=self._timestamp_problem(ts, now),
                            code="timestamp_out_of_range",
                        )
                    )
                    continue
            result.events.append((index, event))
        result.errors.sort(key=lambda e: (e.index or 0))
        return result

    def validate_one(self, raw: Any, now: datetime) -> EventIn:
        """A single event: raises PayloadTooLarge or ValidationFailed instead of collecting errors."""
        size = len(orjson.dumps(raw))
        if size > self.max_event_bytes:
            raise PayloadTooLarge(f"event is {size} bytes; the limit is {self.max_event_bytes} bytes")
        batch = self.validate_batch([raw], now)
        if batch.errors:
            raise ValidationFailed([FieldError(field=e.field, message=e.message, code=e.code) for e in batch.errors])
        return batch.events[0][1]

    def _timestamp_problem(self, ts: datetime, now: datetime) -> str:
        if ts > now:
            ahead = int((ts - now).total_seconds())
            return (
                f"is {ahead} s in the future; at most {int(self.max_future_skew.total_seconds())} s "
                "of clock skew is allowed"
            )
        return f"is older than the retention period of {self.retention.days} days"
