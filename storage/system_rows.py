"""The rows system analytics read from system events: each kind's properties as named columns, in
ClickHouse SQL over ``events``.

Each kind of system event the service health board reads (``api_request``, ``error_occurred``,
``resource_usage``, ``health_check``) has one row shape. The system rollup views
(storage/migrations/clickhouse/017_system_rollups.sql) select exactly ``row.source(...)`` from the
rollup feed, and the catalog's raw sources (semantic/catalog.py) select it from ``events``, so an
answer read from a rollup and one read from raw events count the same values. docs/system.md
describes the properties.

The properties are parsed once per event, into a tuple (``JSONExtract`` with a named Tuple type):
one parse instead of one per property made the rows about ten times cheaper to read. A number
property may be a JSON number or a string holding one (true counts as 1); anything else is no
value. Durations, counts and sizes below 0 count as 0, percentages are clamped to 0-100.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.taxonomy import API_REQUEST, ERROR_OCCURRED, HEALTH_CHECK, RESOURCE_USAGE

# The parsed properties' alias inside a row source.
PARSED = "p"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    # The property it reads and the type JSONExtract converts it to.
    property: str
    type: str
    # The column as an expression of the extracted value ``{v}``.
    shape: str = "{v}"

    def over(self, value: str) -> str:
        return self.shape.format(v=value)


def _text(name: str, prop: str | None = None) -> Column:
    return Column(name, prop or name, "String")


def _number(name: str, *, percent: bool = False) -> Column:
    """No value (NULL) when the property is not a number; at least 0 (and at most 100 for a percentage)."""
    clamped = "least(greatest({v}, 0), 100)" if percent else "greatest({v}, 0)"
    return Column(name, name, "Nullable(Float64)", f"if(isNull({{v}}), NULL, {clamped})")


def _count(name: str) -> Column:
    """A per-event count: its whole part, 0 when it is not a number."""
    return Column(name, name, "Nullable(Float64)", "toUInt64(greatest(ifNull({v}, 0), 0))")


def _amount(name: str) -> Column:
    """A per-event amount (milliseconds): 0 when it is not a number."""
    return Column(name, name, "Nullable(Float64)", "greatest(ifNull({v}, 0), 0)")


@dataclass(frozen=True, slots=True)
class RowShape:
    event_type: str
    # Columns of ``events`` every row keeps as they are.
    plain: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def tuple_type(self) -> str:
        return "Tuple(" + ", ".join(f"{c.property} {c.type}" for c in self.columns) + ")"

    def source(self, table: str, where: str = "") -> str:
        """The rows of ``table`` (events or the rollup feed) of this kind; ``where`` adds ``AND ...``
        conditions on the ``events`` columns."""
        parsed = ", ".join(
            [*self.plain, *(c.over(f"tupleElement({PARSED}, '{c.property}')") + f" AS {c.name}" for c in self.columns)]
        )
        return (
            f"SELECT {parsed} FROM (SELECT {', '.join(self.plain)}, "
            f"JSONExtract(properties, '{self.tuple_type}') AS {PARSED} "
            f"FROM {table} WHERE event_type = '{self.event_type}'{where})"
        )

    def column(self, name: str) -> Column:
        (found,) = [c for c in self.columns if c.name == name]
        return found

    def on_event_row(self, name: str, other: str) -> str:
        """One column over a single ``events`` row of any type, ``other`` for rows of other types.
        Parses only that property, with the same conversion as the tuple."""
        column = self.column(name)
        value = column.over(f"JSONExtract(properties, '{column.property}', '{column.type}')")
        return f"if(event_type = '{self.event_type}', {value}, {other})"


API_REQUEST_ROW = RowShape(
    API_REQUEST,
    ("timestamp", "user_id"),
    (
        _text("service"),
        _text("endpoint"),
        _text("method"),
        Column("status", "status", "Int64"),
        _number("duration_ms"),
        _count("db_query_count"),
        _amount("db_time_ms"),
        # 1 = a cache hit, 0 = a miss, -1 = the request does not say.
        Column("cache_hit", "cache_hit", "Nullable(Bool)", "multiIf(isNull({v}), -1, {v}, 1, 0)"),
        _count("external_calls"),
        _count("external_errors"),
        _amount("external_time_ms"),
    ),
)
ERROR_ROW = RowShape(
    ERROR_OCCURRED,
    ("timestamp",),
    (
        _text("service"),
        _text("endpoint"),
        _text("error_type"),
        _text("severity"),
        # Messages are compared (and kept) by their first 500 characters.
        Column("message", "message", "String", "substringUTF8({v}, 1, 500)"),
    ),
)
RESOURCE_ROW = RowShape(
    RESOURCE_USAGE,
    ("timestamp",),
    (
        _text("service"),
        _text("instance"),
        _number("cpu_percent", percent=True),
        _number("memory_percent", percent=True),
        _number("disk_percent", percent=True),
        _number("cpu_cores"),
        _number("memory_gb"),
    ),
)
HEALTH_CHECK_ROW = RowShape(
    HEALTH_CHECK,
    ("timestamp",),
    (
        _text("service"),
        # up, degraded or down; anything else is no rating.
        Column("check_status", "status", "String", "lower({v})"),
        _number("latency_ms"),
    ),
)
ROW_SHAPES: tuple[RowShape, ...] = (API_REQUEST_ROW, ERROR_ROW, RESOURCE_ROW, HEALTH_CHECK_ROW)
