"""The public metric and dimension catalog: every name ``analyticsQuery`` accepts, what it means, its
type and unit, and which roles may use it.

The metrics and the event dimensions are those of the ``events`` family of semantic/catalog.py (the
definitions live there, next to their SQL); this module adds what a caller needs to read an answer
(type, unit), the topic each belongs to, and who may ask for it. Content and search figures are for
every role that reads analytics; figures about users, sessions, the platform's own systems and
imports, and the user and session dimensions, are for admins and analysts only.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from core.access import PERMISSION_MATRIX, Operation, Role
from core.errors import Forbidden
from semantic.catalog import EVENTS

ValueType = Literal["integer", "float", "string", "date", "datetime"]
Kind = Literal["metric", "dimension"]

EVERY_READER = PERMISSION_MATRIX[Operation.READ_CONTENT_ANALYTICS]
ANALYSTS = PERMISSION_MATRIX[Operation.READ_USER_ANALYTICS]


@dataclass(frozen=True, slots=True)
class Entry:
    """One metric or dimension as the catalog shows it."""

    name: str
    description: str
    type: ValueType
    unit: str | None
    family: str
    roles: frozenset[Role]
    kind: Kind

    def allows(self, role: Role) -> bool:
        return role in self.roles


def _metric(name: str, type_: ValueType, unit: str, family: str, roles: frozenset[Role]) -> Entry:
    return Entry(name, EVENTS.metrics[name].description, type_, unit, family, roles, "metric")


def _counts(names: tuple[str, ...], unit: str, family: str, roles: frozenset[Role]) -> list[Entry]:
    return [_metric(name, "integer", unit, family, roles) for name in names]


def _ratios(names: tuple[str, ...], family: str, roles: frozenset[Role]) -> list[Entry]:
    return [_metric(name, "float", "ratio", family, roles) for name in names]


_METRICS: list[Entry] = [
    *_counts(
        ("views", "plays", "completes", "likes", "shares", "bookmarks", "comments"), "events", "content", EVERY_READER
    ),
    _metric("unique_viewers", "integer", "viewers", "content", EVERY_READER),
    *_counts(("playback_sessions", "completed_sessions"), "sessions", "content", EVERY_READER),
    *_ratios(("completion_rate",), "content", EVERY_READER),
    _metric("watch_time_seconds", "float", "seconds", "content", EVERY_READER),
    *_counts(("searches", "zero_result_searches", "search_clicks"), "events", "search", EVERY_READER),
    *_ratios(("zero_result_rate", "search_ctr"), "search", EVERY_READER),
    _metric("events", "integer", "events", "users", ANALYSTS),
    _metric("users", "integer", "users", "users", ANALYSTS),
    _metric("sessions", "integer", "sessions", "users", ANALYSTS),
    *_counts(("api_requests", "server_error_requests", "errors"), "events", "system", ANALYSTS),
    *_ratios(("error_rate", "request_error_rate"), "system", ANALYSTS),
    *[_metric(f"latency_p{level}", "float", "ms", "system", ANALYSTS) for level in (50, 95, 99)],
    *_counts(
        ("successful_requests", "client_error_requests", "cache_hits", "cache_misses"), "events", "system", ANALYSTS
    ),
    _metric("response_time_avg", "float", "ms", "system", ANALYSTS),
    *[_metric(f"response_time_p{level}", "float", "ms", "system", ANALYSTS) for level in (50, 95, 99)],
    *_ratios(("cache_hit_rate", "availability"), "system", ANALYSTS),
    *_counts(("external_calls", "external_errors"), "calls", "system", ANALYSTS),
    *[
        _metric(f"{resource}_percent_avg", "float", "percent", "system", ANALYSTS)
        for resource in ("cpu", "memory", "disk")
    ],
    *_counts(
        ("health_checks", "health_checks_up", "health_checks_degraded", "health_checks_down"),
        "events",
        "system",
        ANALYSTS,
    ),
    *_counts(("imports_started", "imports_completed", "imports_failed"), "events", "imports", ANALYSTS),
    *_ratios(("import_success_rate",), "imports", ANALYSTS),
    _metric("job_runs", "integer", "jobs", "imports", ANALYSTS),
    *_counts(("jobs_completed", "jobs_failed"), "events", "imports", ANALYSTS),
    *_ratios(("job_success_rate", "job_failure_rate"), "imports", ANALYSTS),
    *_counts(
        (
            "import_records_processed",
            "import_records_failed",
            "import_duplicates",
            "import_invalid_rows",
            "import_missing_fields",
            "import_transform_errors",
        ),
        "records",
        "imports",
        ANALYSTS,
    ),
    _metric("job_throughput", "float", "records/s", "imports", ANALYSTS),
    *[_metric(f"job_duration_p{level}", "float", "ms", "imports", ANALYSTS) for level in (50, 95)],
    *[_metric(f"stage_duration_p{level}", "float", "ms", "imports", ANALYSTS) for level in (50, 95)],
]

# Dimensions that single out a person are for analysts.
_PERSONAL_DIMENSIONS = frozenset({"user_id", "session_id"})


def _event_dimension(name: str) -> Entry:
    dimension = EVENTS.dimensions[name]
    return Entry(
        name,
        dimension.description,
        "integer" if dimension.value_type == "Int64" else "string",
        None,
        "content_metadata" if dimension.from_metadata else "event",
        ANALYSTS if name in _PERSONAL_DIMENSIONS else EVERY_READER,
        "dimension",
    )


def _time(name: str, type_: ValueType, description: str) -> Entry:
    return Entry(name, description, type_, None, "time", EVERY_READER, "dimension")


TIME_DIMENSIONS: tuple[Entry, ...] = (
    _time(
        "bucket",
        "date",
        "the hour, day, week or month of the request's granularity (a date-time for hours), in its timezone",
    ),
    _time("hour", "datetime", "the hour the event fell in, as a local date-time with its UTC offset"),
    _time("day", "date", "the local date of the event"),
    _time("week", "date", "the Monday starting the event's week (local)"),
    _time("month", "date", "the first day of the event's month (local)"),
    _time("hour_of_day", "integer", "the local hour of the day, 0-23"),
    _time("weekday", "integer", "the local day of the week, 1 = Monday ... 7 = Sunday"),
)

METRICS: dict[str, Entry] = {e.name: e for e in _METRICS}
DIMENSIONS: dict[str, Entry] = {
    **{name: _event_dimension(name) for name in EVENTS.dimensions},
    **{e.name: e for e in TIME_DIMENSIONS},
}
TIME_DIMENSION_NAMES = frozenset(e.name for e in TIME_DIMENSIONS)


class CatalogEntry(BaseModel):
    name: str
    description: str
    type: ValueType
    unit: str | None
    family: str
    roles: list[str]

    @classmethod
    def of(cls, entry: Entry) -> CatalogEntry:
        return cls(
            name=entry.name,
            description=entry.description,
            type=entry.type,
            unit=entry.unit,
            family=entry.family,
            roles=sorted(r.value for r in entry.roles),
        )


class AnalyticsCatalog(BaseModel):
    """What the caller's role may use in an analytics query."""

    role: str
    metrics: list[CatalogEntry]
    dimensions: list[CatalogEntry]


def catalog_for(role: Role) -> AnalyticsCatalog:
    return AnalyticsCatalog(
        role=role.value,
        metrics=[CatalogEntry.of(e) for e in METRICS.values() if e.allows(role)],
        dimensions=[CatalogEntry.of(e) for e in DIMENSIONS.values() if e.allows(role)],
    )


def suggest(name: str, known: list[str] | dict[str, Entry]) -> str:
    """' (did you mean ...?)' naming the closest known names, or ''."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def unknown_metric(name: str) -> str:
    return f"unknown metric {name!r}{suggest(name, METRICS)}; GET /api/v1/analytics/catalog lists the metrics"


def unknown_dimension(name: str) -> str:
    return f"unknown dimension {name!r}{suggest(name, DIMENSIONS)}; GET /api/v1/analytics/catalog lists the dimensions"


def require_allowed(entry: Entry, role: Role, field: str) -> None:
    """Forbidden (403) naming the metric or dimension and the roles that may use it."""
    if entry.allows(role):
        return
    allowed = sorted(r.value for r in entry.roles)
    raise Forbidden(
        f"role '{role.value}' may not use {entry.kind} '{entry.name}'; allowed roles: {', '.join(allowed)}",
        details={"field": field, entry.kind: entry.name, "allowed_roles": allowed},
    )
