"""Compile a metric query into one parameterized ClickHouse statement, on a rollup when one can answer.

Routing: the rollups of a family are tried coarsest first. A rollup answers when it has every
metric, dimension and filter asked for, and when its time grain lines up with the period in the
requested timezone: a UTC-day rollup only where every local midnight of the period is a UTC
midnight (and no hour-level dimension is asked), a UTC-hour rollup only where the zone's offset is
a whole number of hours. Anything else reads raw events, which always answer.

Families built from event rows (the ``events`` family) have no rollup: their source selects only
the row columns the query reads, only the event types its metrics count when every metric says
which, and applies filters to the events before grouping.

Identifiers and expressions come from semantic/catalog.py only; every request value is bound as a
``{name:Type}`` parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from core.access import ContentScope
from semantic import filter_sql
from semantic.catalog import COLUMNS, FAMILIES, TIME_DIMENSIONS, WHERE, Dimension, Family, Metric, Rollup
from semantic.content_scope import ScopeNotApplicable, current_scope, scope_condition
from semantic.filter_sql import COMPARE, SINGLE_VALUE_OPS, FilterOp
from semantic.periods import Period, utc_text
from storage.event_keys import CONTENT_KEY, sql_list
from storage.events import EventStore

Route = Literal["auto", "raw", "rollup"]
ValueType = Literal["String", "Int64"]
_REF = re.compile(r"@([a-z_]+)")
# Time dimensions at an hour's grain: a daily rollup cannot answer them.
_HOURLY_TIME_DIMENSIONS = frozenset({"hour", "hour_of_day"})


@dataclass(frozen=True, slots=True)
class Filter:
    """Keep the rows whose ``dimension`` value passes ``op`` against ``values`` (one value but for
    in / not_in). contains is case-insensitive; gt/gte/lt/lte compare numbers (text that is not a
    number counts as 0)."""

    dimension: str
    values: tuple[str | int | float, ...]
    # True keeps the rows whose value is NOT one of ``values`` (the same as op="not_in").
    exclude: bool = False
    op: FilterOp = "in"

    def __post_init__(self) -> None:
        if self.exclude and self.op != "in":
            raise UnknownName("exclude=True is op='not_in'; give one or the other")
        if self.op in SINGLE_VALUE_OPS and len(self.values) != 1:
            raise UnknownName(f"filter op {self.op!r} takes exactly one value")

    @property
    def effective_op(self) -> FilterOp:
        return "not_in" if self.exclude else self.op


@dataclass(frozen=True)
class MetricQuery:
    family: str
    metrics: tuple[str, ...]
    # None = all of history (then no time dimension may be asked).
    period: Period | None
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    # Also cover the previous period; the "period" dimension tells 'current' from 'previous'.
    with_previous: bool = False
    order_by: tuple[tuple[str, bool], ...] = ()  # (name, descending)
    limit: int | None = None
    offset: int = 0
    limit_by: tuple[int, tuple[str, ...]] | None = None
    # Keep only groups where each metric is at least the value.
    at_least: tuple[tuple[str, float], ...] = ()
    # Leave out groups where every metric the query computes (derived ones aside) is 0 or null, so
    # the rows do not depend on which source answered (a rollup holds no group without a count).
    skip_empty: bool = False
    route: Route = "auto"
    # Several groupings of ``dimensions`` in one pass over the rows (ClickHouse GROUPING SETS): each
    # row's ``grouping_set`` is the index of its set here, and its dimensions outside the set are empty.
    grouping_sets: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    sql: str
    parameters: dict[str, Any]
    # The table that answers: a rollup, or "events".
    source: str
    columns: tuple[str, ...] = field(default=())
    # grouping() bit mask -> index of the grouping set (queries with grouping sets only).
    grouping_masks: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class QueryRows:
    rows: list[dict[str, Any]]
    source: str


class UnknownName(ValueError):
    """A metric or dimension name that is not in the catalog (a programming error, not a request error)."""


def compile_query(query: MetricQuery, *, prefix: str = "p", scope: ContentScope | None = None) -> CompiledQuery:
    """``prefix`` names the bound parameters, so several compiled queries can be nested in one statement.

    ``scope`` (by default the request's, semantic/content_scope.py) keeps only the rows of in-scope
    content; a family whose rows name no content cannot be narrowed and refuses a restricted scope."""
    family = FAMILIES[query.family]
    _check_names(family, query)
    scope = current_scope() if scope is None else scope
    if not scope.unrestricted and family.content_column is None:
        raise ScopeNotApplicable(f"{family.name} analytics", scope)
    rollup = _choose_rollup(family, query, scope)
    if query.route == "rollup" and rollup is None:
        raise UnknownName(f"no rollup of {family.name} can answer this query")
    return _Builder(family, query, rollup, prefix, scope).build()


async def run_query(store: EventStore, query: MetricQuery) -> QueryRows:
    compiled = compile_query(query)
    result = await store.query(compiled.sql, compiled.parameters)
    rows = [dict(zip(compiled.columns, row, strict=True)) for row in result.rows]
    if compiled.grouping_masks:
        for row in rows:
            row["grouping_set"] = compiled.grouping_masks[int(row["grouping_set"])]
    return QueryRows(rows=rows, source=compiled.source)


# --- routing -----------------------------------------------------------------------------------


def _periods(query: MetricQuery) -> list[Period]:
    if query.period is None:
        return []
    return [query.period, query.period.previous()] if query.with_previous else [query.period]


def _check_names(family: Family, query: MetricQuery) -> None:
    for name in (*query.metrics, *(name for name, _ in query.at_least)):
        if name not in family.metrics:
            raise UnknownName(f"{family.name} has no metric {name!r}")
    for name in [*query.dimensions, *(f.dimension for f in query.filters)]:
        if name not in family.dimensions and name not in TIME_DIMENSIONS:
            raise UnknownName(f"{family.name} has no dimension {name!r}")
    if query.period is None and any(d in TIME_DIMENSIONS for d in [*query.dimensions, *_filtered(query)]):
        raise UnknownName("time dimensions need a period")
    if "period" in query.dimensions and not query.with_previous:
        raise UnknownName("the period dimension needs with_previous")
    for grouping in query.grouping_sets:
        if not set(grouping) <= set(query.dimensions):
            raise UnknownName(f"grouping set {grouping} is not a subset of the dimensions")


def _metric_closure(family: Family, names: tuple[str, ...]) -> list[Metric]:
    """The metrics asked for plus those derived metrics refer to, base metrics first."""
    ordered: list[Metric] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name in seen:
            return
        metric = family.metrics[name]
        if metric.derived:
            for ref in _REF.findall(metric.raw):
                add(ref)
        seen.add(name)
        ordered.append(metric)

    for name in names:
        add(name)
    return ordered


def _selected_metrics(family: Family, query: MetricQuery) -> list[Metric]:
    extra = [name for name, _ in query.at_least] + [name for name, _ in query.order_by if name in family.metrics]
    return _metric_closure(family, (*query.metrics, *extra))


def _filtered(query: MetricQuery) -> list[str]:
    return [f.dimension for f in query.filters]


def _hour_level(query: MetricQuery) -> bool:
    period = query.period
    names = {*query.dimensions, *_filtered(query)}
    return bool(names & _HOURLY_TIME_DIMENSIONS) or (
        "bucket" in names and period is not None and period.granularity == "hour"
    )


def _choose_rollup(family: Family, query: MetricQuery, scope: ContentScope) -> Rollup | None:
    if query.route == "raw" or not family.rollups:
        return None
    metrics = _selected_metrics(family, query)
    if any(m.rollup is None for m in metrics):
        return None
    names = [*query.dimensions, *(f.dimension for f in query.filters)]
    if any(name in family.dimensions and family.dimensions[name].rollup is None for name in names):
        return None
    offsets: set[timedelta] = set()
    for period in _periods(query):
        offsets |= period.utc_offsets()
    # Totals hold no content: no dimension of it (or of anything else) to group, filter or scope by.
    totals_answer = scope.unrestricted and not query.filters and all(n in TIME_DIMENSIONS for n in query.dimensions)
    for rollup in family.rollups:
        if not rollup.per_content and not totals_answer:
            continue
        if rollup.grain == "day" and all(o == timedelta(0) for o in offsets) and not _hour_level(query):
            return rollup
        if rollup.grain == "hour" and all(o.total_seconds() % 3600 == 0 for o in offsets):
            return rollup
    return None


# --- SQL ---------------------------------------------------------------------------------------


class _Builder:
    def __init__(
        self, family: Family, query: MetricQuery, rollup: Rollup | None, prefix: str, scope: ContentScope
    ) -> None:
        self.family = family
        self.query = query
        self.rollup = rollup
        self.prefix = prefix
        self.scope = scope
        self.params: dict[str, Any] = {"tz": query.period.timezone if query.period else "UTC"}

    def bind(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return name

    # Time: the column and how instants are compared with it at this grain.
    def _time_column(self) -> str:
        return self.rollup.time_column if self.rollup else "timestamp"

    def _time_literal(self, moment: datetime) -> str:
        if self.rollup is None:
            return f"{{{self.bind(utc_text(moment))}:DateTime64(3, 'UTC')}}"
        if self.rollup.grain == "hour":
            return f"{{{self.bind(moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S'))}:DateTime('UTC')}}"
        return f"{{{self.bind(moment.astimezone(UTC).date().isoformat())}:Date}}"

    def _time_range(self) -> str | None:
        periods = _periods(self.query)
        if not periods:
            return None
        start = min(p.start for p in periods)
        end = max(p.end for p in periods)
        column = self._time_column()
        return f"{column} >= {self._time_literal(start)} AND {column} < {self._time_literal(end)}"

    def _time_dimension(self, name: str) -> str:
        column = self._time_column()
        daily = self.rollup is not None and self.rollup.grain == "day"
        local_day = column if daily else f"toDate({column}, {{tz:String}})"
        if name == "day":
            return local_day
        if name == "hour":
            return f"toUnixTimestamp(toStartOfHour({column}, {{tz:String}}))"
        if name == "week":
            return f"toMonday({local_day})"
        if name == "month":
            return f"toStartOfMonth({local_day})"
        if name == "weekday":
            return f"toDayOfWeek({local_day})"
        if name == "hour_of_day":
            return f"toHour({column}, {{tz:String}})"
        if name == "period":
            assert self.query.period is not None
            return f"if({column} >= {self._time_literal(self.query.period.start)}, 'current', 'previous')"
        assert self.query.period is not None
        granularity = self.query.period.granularity
        if granularity == "hour":
            return f"toUnixTimestamp(toStartOfHour({column}, {{tz:String}}))"
        if granularity == "week":
            return f"toMonday({local_day})"
        if granularity == "month":
            return f"toStartOfMonth({local_day})"
        return local_day

    def _dimension(self, name: str) -> str:
        if name in TIME_DIMENSIONS:
            return self._time_dimension(name)
        dimension = self.family.dimensions[name]
        expression = dimension.rollup if self.rollup else dimension.raw
        assert expression is not None
        return expression

    def _metric(self, metric: Metric) -> str:
        expression = metric.rollup if self.rollup else metric.raw
        assert expression is not None
        return _REF.sub(lambda m: f"m_{m.group(1)}", expression) if metric.derived else expression

    def _uses_metadata(self) -> bool:
        # Families built from event rows filter on metadata inside the source (no join needed).
        names = [*self.query.dimensions, *([] if self.family.row_columns else _filtered(self.query))]
        return any(n in self.family.dimensions and self.family.dimensions[n].from_metadata for n in names)

    def _source(self) -> str:
        prefilters: list[str] = []
        time_range = self._time_range()
        if self.rollup is not None:
            source = self.rollup.table
        else:
            if time_range:
                prefilters.append(time_range)
            for flt in self.query.filters:
                dimension = self.family.dimensions.get(flt.dimension)
                if dimension is not None and dimension.raw_prefilter and flt.effective_op in ("in", "eq"):
                    prefilters.append(dimension.raw_prefilter % self.bind([str(v) for v in flt.values]))
            if self.family.row_columns is not None:
                prefilters += self._row_prefilters()
            if not self.scope.unrestricted:
                # Raw sources read ``events``: the content as the families name it.
                prefilters.append(scope_condition(CONTENT_KEY, self.bind, self.scope))
            source = self.family.raw_source.replace(WHERE, "".join(f" AND {p}" for p in prefilters))
            if self.family.row_columns is not None:
                source = source.replace(COLUMNS, self._row_columns())
        if self._uses_metadata():
            assert self.family.content_column is not None
            content = self.family.content_column[0 if self.rollup is None else 1]
            source = (
                f"{source} AS src LEFT JOIN (SELECT content_id AS meta_content_id, category AS meta_category, "
                "content_type AS meta_content_type, language AS meta_language, author AS meta_author "
                f"FROM content_metadata) AS meta ON meta.meta_content_id = src.{content}"
            )
        return source

    # Families built from event rows.
    def _row_columns(self) -> str:
        """Only the row columns the metrics and dimensions read, in the family's order."""
        assert self.family.row_columns is not None
        needed: set[str] = set()
        for metric in _selected_metrics(self.family, self.query):
            needed.update(metric.columns)
        for name in self.query.dimensions:
            if name in self.family.dimensions:
                needed.update(self.family.dimensions[name].columns)
        selected = [f"{sql} AS e_{name}" for name, sql in self.family.row_columns.items() if name in needed]
        if any(name in TIME_DIMENSIONS for name in self.query.dimensions):
            selected.append("timestamp")
        return ", ".join(selected) or "1 AS e_row"

    def _row_prefilters(self) -> list[str]:
        """What every computed metric needs of an event (its types, a content), and the filters."""
        base = [m for m in _selected_metrics(self.family, self.query) if not m.derived]
        conditions: list[str] = []
        if base and all(m.event_types is not None for m in base):
            types = sorted({t for m in base for t in m.event_types or ()})
            conditions.append(f"event_type IN {sql_list(types)}")
        if base and all(m.names_content for m in base):
            conditions.append(f"{CONTENT_KEY} != ''")
        for flt in self.query.filters:
            dimension = self.family.dimensions.get(flt.dimension)
            if dimension is None:
                continue  # a time dimension: filtered after grouping expressions are computed
            if dimension.metadata_field is not None:
                conditions.append(self._metadata_filter(dimension.metadata_field, flt))
            else:
                assert dimension.row_sql is not None
                conditions.append(predicate(dimension.row_sql, flt, dimension.value_type, self.bind))
        return conditions

    def _metadata_filter(self, field: str, flt: Filter) -> str:
        """A filter on a metadata field as a content subquery. Content without metadata (or events
        without content) have '' for the field, as the grouped dimension shows them, so they pass
        exactly when '' passes."""
        values = _bound_values(flt, "String")
        return filter_sql.metadata_condition(CONTENT_KEY, field, flt.effective_op, values, self.bind)

    def build(self) -> CompiledQuery:
        query = self.query
        select: list[str] = []
        columns: list[str] = []
        for name in query.dimensions:
            select.append(f"{self._dimension(name)} AS d_{name}")
            columns.append(name)
        for metric in _selected_metrics(self.family, query):
            select.append(f"{self._metric(metric)} AS m_{metric.name}")
            columns.append(metric.name)
        masks: dict[int, int] = {}
        if query.grouping_sets:
            # grouping() sets bit (n - 1 - i) when dimension i is NOT grouped in the row's set.
            n = len(query.dimensions)
            for index, grouping in enumerate(query.grouping_sets):
                masks[sum(1 << (n - 1 - i) for i, name in enumerate(query.dimensions) if name not in grouping)] = index
            select.append(f"grouping({', '.join(f'd_{name}' for name in query.dimensions)}) AS g_set")
            columns.append("grouping_set")
        source = self._source()
        where: list[str] = []
        if self.rollup is not None:
            time_range = self._time_range()
            if time_range:
                where.append(time_range)
            if not self.scope.unrestricted:
                assert self.family.content_column is not None
                where.append(scope_condition(self.family.content_column[1], self.bind, self.scope))
        for flt in query.filters:
            if self.family.row_columns is not None and flt.dimension in self.family.dimensions:
                continue  # applied to the events inside the source
            value_type = self._value_type(flt.dimension)
            where.append(predicate(self._dimension(flt.dimension), flt, value_type, self.bind))
        sql = f"SELECT {', '.join(select)} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if query.grouping_sets:
            sets = ", ".join(
                "(" + ", ".join(f"d_{name}" for name in grouping) + ")" for grouping in query.grouping_sets
            )
            sql += f" GROUP BY GROUPING SETS ({sets})"
        elif query.dimensions:
            sql += " GROUP BY " + ", ".join(f"d_{name}" for name in query.dimensions)
        having = [f"m_{name} >= {{{self.bind(float(value))}:Float64}}" for name, value in query.at_least]
        if query.skip_empty and (query.dimensions or query.grouping_sets):
            present = [
                f"isNotNull(m_{m.name})" if m.nullable else f"m_{m.name} != 0"
                for m in _selected_metrics(self.family, query)
                if not m.derived
            ]
            having.append("(" + " OR ".join(present) + ")")
        if having:
            sql += " HAVING " + " AND ".join(having)
        if query.order_by:
            sql += " ORDER BY " + ", ".join(
                f"{self._alias(name)} {'DESC' if desc else 'ASC'}" for name, desc in query.order_by
            )
        if query.limit_by is not None:
            count, by = query.limit_by
            sql += f" LIMIT {{{self.bind(count)}:UInt32}} BY " + ", ".join(self._alias(name) for name in by)
        if query.limit is not None:
            sql += f" LIMIT {{{self.bind(query.limit)}:UInt32}} OFFSET {{{self.bind(query.offset)}:UInt32}}"
        return CompiledQuery(
            sql=sql,
            parameters=self.params,
            source=self.rollup.table if self.rollup else "events",
            columns=tuple(columns),
            grouping_masks=masks,
        )

    def _value_type(self, name: str) -> ValueType:
        dimension: Dimension | None = self.family.dimensions.get(name)
        if dimension is None:
            # Time dimensions: hour_of_day, weekday and hour buckets are numbers, the others dates.
            numeric = name in ("hour_of_day", "weekday", "hour") or (
                name == "bucket" and self.query.period is not None and self.query.period.granularity == "hour"
            )
            return "Int64" if numeric else "String"
        return dimension.value_type

    def _alias(self, name: str) -> str:
        if name in self.query.dimensions:
            return f"d_{name}"
        if name in self.family.metrics:
            return f"m_{name}"
        raise UnknownName(f"cannot order by {name!r}: it is neither a selected dimension nor a metric")


# --- filters -----------------------------------------------------------------------------------


_INT64 = (-(2**63), 2**63 - 1)


def _typed(value: str | int | float, value_type: ValueType) -> str | int:
    if value_type == "String":
        return str(value)
    # Beyond Int64 a comparison is decided by the range's end, and no Int64 equals such a value.
    return min(max(int(float(value)), _INT64[0]), _INT64[1])


def _bound_values(flt: Filter, value_type: ValueType) -> list[Any]:
    """``flt``'s values typed as filter_sql binds them: numbers for a comparison, text for contains."""
    op = flt.effective_op
    if op == "contains":
        return [str(v) for v in flt.values]
    if op in COMPARE and value_type != "Int64":
        return [float(v) for v in flt.values]
    return [_typed(v, value_type) for v in flt.values]


def predicate(expression: str, flt: Filter, value_type: ValueType, bind: Callable[[Any], str]) -> str:
    """``flt`` as a condition on ``expression``; ``bind(value)`` returns the name of a bound parameter."""
    return filter_sql.condition(expression, flt.effective_op, _bound_values(flt, value_type), value_type, bind)


def passes_empty(flt: Filter) -> bool:
    """Whether the text '' passes ``flt``, as ClickHouse evaluates ``predicate`` on it."""
    return filter_sql.passes_empty(flt.effective_op, flt.values)
