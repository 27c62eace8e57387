"""Event validation: every refused event gets its index, the field at fault and why.

A batch is validated in one call (fast path); only when it holds bad events are the
events checked one by one, so good events beside bad ones are kept.

Besides the fields' own rules: an event's JSON size, how deep its ``properties`` nest and how many
keys they hold (limits from settings, docs/ingest.md#limits), its timestamp against the clock and
the retention, and that an ``ip_address`` is an address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from core.enrichment.ip import is_ip_address
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
_NOT_AN_IP = "must be an IPv4 or IPv6 address such as '203.0.113.7' or '2001:db8::1'"
# What nests in JSON. Exact types, looked up in a set: decoded JSON holds no subclasses (tuples come
# only from Python callers, which may pass them as arrays).
_NESTING = frozenset((dict, list, tuple))


def too_deep_message(max_depth: int) -> str:
    return f"nests more than {max_depth} levels deep; objects and arrays count a level each"


def properties_problem(properties: dict[str, Any], max_depth: int, max_keys: int) -> tuple[str, str] | None:
    """Why ``properties`` is refused, as (code, message), or None when it is within the limits.

    ``properties`` itself is level 1 and every object or array inside it adds one; keys count at
    every level, objects inside arrays included. Walked level by level, without recursion, and it
    stops at the first limit passed: the event's byte limit already bounds the work.
    """
    keys = len(properties)
    if keys > max_keys:
        return "too_many_keys", _too_many_keys(max_keys)
    values: Iterable[Any] = properties.values()
    if _NESTING.isdisjoint(map(type, values)):
        return None  # the usual event: flat
    inner = [value for value in values if type(value) in _NESTING]
    depth = 2  # of the containers in ``inner``
    while True:
        if depth > max_depth:
            return "too_deep", too_deep_message(max_depth)
        level, inner = inner, []
        for container in level:
            if type(container) is dict:
                keys += len(container)
                values = container.values()
            else:
                values = container
            if not _NESTING.isdisjoint(map(type, values)):
                inner += [value for value in values if type(value) in _NESTING]
        if keys > max_keys:
            return "too_many_keys", _too_many_keys(max_keys)
        if not inner:
            return None
        depth += 1


def _too_many_keys(max_keys: int) -> str:
    return f"holds more than {max_keys} keys, counting those of nested objects"


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
    def __init__(
        self,
        *,
        max_event_bytes: int,
        max_future_skew_seconds: int,
        retention_days: int,
        max_properties_depth: int = 32,
        max_properties_keys: int = 1000,
    ) -> None:
        self.max_event_bytes = max_event_bytes
        self.max_future_skew = timedelta(seconds=max_future_skew_seconds)
        self.retention = timedelta(days=retention_days)
        self.max_properties_depth = max_properties_depth
        self.max_properties_keys = max_properties_keys

    def validate_batch(self, raw_events: list[Any], now: datetime) -> ValidatedBatch:
        result = ValidatedBatch()
        refused = self._refused_whole(raw_events)
        # Usually none is: then the request's own list is validated, with no copy.
        indexes: Sequence[int] = range(len(raw_events))
        kept = raw_events
        if refused:
            result.errors.extend(refused.values())
            indexes = [index for index in indexes if index not in refused]
            kept = [raw_events[index] for index in indexes]
        candidates: Iterable[tuple[int, EventIn]]
        try:
            candidates = zip(indexes, _EVENT_LIST.validate_python(kept), strict=True)
        except ValidationError:
            one_by_one: list[tuple[int, EventIn]] = []
            for index, raw in zip(indexes, kept, strict=True):
                try:
                    one_by_one.append((index, EVENT_IN.validate_python(raw)))
                except ValidationError as exc:
                    result.errors.extend(
                        FieldError(field=e.field, message=e.message, index=index, code=e.code)
                        for e in _field_errors(exc)
                    )
            candidates = one_by_one
        latest, earliest = now + self.max_future_skew, now - self.retention
        max_depth, max_keys = self.max_properties_depth, self.max_properties_keys
        flat = _NESTING.isdisjoint
        errors = result.errors
        for index, event in candidates:
            accepted = True
            ts = event.get("timestamp")
            if ts is not None:
                # Here rather than in a pydantic validator, which costs a Python call per event. Also
                # for "Z": pydantic's own UTC zone makes every comparison ask it for its offset.
                tz = ts.tzinfo
                if tz is not UTC:
                    ts = event["timestamp"] = ts.replace(tzinfo=UTC) if tz is None else ts.astimezone(UTC)
                if not earliest <= ts <= latest:
                    errors.append(
                        FieldError(
                            index=index,
                            field="timestamp",
                            message=self._timestamp_problem(ts, now),
                            code="timestamp_out_of_range",
                        )
                    )
                    accepted = False
            properties = event.get("properties")
            # The usual flat properties are passed here, without the call.
            if (
                properties
                and (len(properties) > max_keys or not flat(map(type, properties.values())))
                and (problem := properties_problem(properties, max_depth, max_keys)) is not None
            ):
                code, message = problem
                errors.append(FieldError(index=index, field="properties", message=message, code=code))
                accepted = False
            ip = event.get("ip_address")
            if ip is not None and not is_ip_address(ip):
                errors.append(FieldError(index=index, field="ip_address", message=_NOT_AN_IP))
                accepted = False
            if accepted:
                result.events.append((index, event))
        errors.sort(key=lambda e: e.index or 0)
        return result

    def validate_one(self, raw: Any, now: datetime) -> EventIn:
        """A single event: raises PayloadTooLarge or ValidationFailed instead of collecting errors."""
        try:
            size = len(orjson.dumps(raw))
        except orjson.JSONEncodeError:
            size = 0  # validate_batch names the field at fault
        if size > self.max_event_bytes:
            raise PayloadTooLarge(
                f"event is {size} bytes; the limit is {self.max_event_bytes} bytes", details={"field": "(event)"}
            )
        batch = self.validate_batch([raw], now)
        if batch.errors:
            raise ValidationFailed([FieldError(field=e.field, message=e.message, code=e.code) for e in batch.errors])
        return batch.events[0][1]

    def _refused_whole(self, raw_events: list[Any]) -> dict[int, FieldError]:
        """The events refused before their fields are read, by index: those over the byte limit, and
        those that cannot be written as JSON at all."""
        dumps = orjson.dumps
        try:
            # Only the lengths are kept: holding on to every text would cost more than writing it.
            sizes = [len(dumps(raw)) for raw in raw_events]
            refused: dict[int, FieldError] = {}
        except orjson.JSONEncodeError:
            sizes, refused = self._sizes_one_by_one(raw_events)
        limit = self.max_event_bytes
        if sizes and max(sizes) > limit:
            for index, size in enumerate(sizes):
                if size > limit:
                    refused[index] = FieldError(
                        index=index,
                        field="(event)",
                        message=f"event is {size} bytes; the limit is {limit} bytes",
                        code="too_large",
                    )
        return refused

    def _sizes_one_by_one(self, raw_events: list[Any]) -> tuple[list[int], dict[int, FieldError]]:
        """Each event's size as JSON, and an error for each that cannot be written (its size is then 0)."""
        sizes: list[int] = []
        unwritable: dict[int, FieldError] = {}
        for index, raw in enumerate(raw_events):
            try:
                sizes.append(len(orjson.dumps(raw)))
            except orjson.JSONEncodeError as exc:
                sizes.append(0)
                unwritable[index] = self._unwritable(index, raw, exc)
        return sizes, unwritable

    def _unwritable(self, index: int, raw: Any, exc: orjson.JSONEncodeError) -> FieldError:
        """The error of an event the JSON encoder refused, naming the top-level field at fault: nesting
        past the encoder's own limit, or (from a Python caller) a value JSON has no form for."""
        field = "(event)"
        if isinstance(raw, dict):
            for name, value in raw.items():
                try:
                    orjson.dumps(value)
                except orjson.JSONEncodeError as field_exc:
                    field, exc = str(name), field_exc
                    break
        if "recursion" in str(exc).lower():
            return FieldError(
                index=index, field=field, message=too_deep_message(self.max_properties_depth), code="too_deep"
            )
        return FieldError(index=index, field=field, message=f"cannot be written as JSON: {exc}")

    def _timestamp_problem(self, ts: datetime, now: datetime) -> str:
        if ts > now:
            ahead = int((ts - now).total_seconds())
            return (
                f"is {ahead} s in the future; at most {int(self.max_future_skew.total_seconds())} s "
                "of clock skew is allowed"
            )
        return f"is older than the retention period of {self.retention.days} days"
