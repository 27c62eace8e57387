"""The metric and dimension catalog: every name an analytics query may use, and its SQL.

Each family of metrics has a raw-event source (a subquery over ``events``) and the rollup tables
that can answer it (storage/migrations/clickhouse/004-012). A metric carries two expressions that
mean the same thing: one over raw event rows, one over rollup rows. The compiler picks one; the
parity test (tests/semantic/test_rollup_parity.py) proves they agree. The ``events`` family has no
rollup: it is every raw event by any dimension of semantic/event_dimensions.py, and the public
catalog (semantic/public_catalog.py) is made of it.

Only text from this module becomes SQL identifiers or expressions; request values are bound as
``{name:Type}`` parameters by the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.enrichment import DEVICE_TYPES, TRAFFIC_SOURCES
from core.taxonomy import (
    API_REQUEST,
    CONTENT_BOOKMARK,
    CONTENT_COMMENT,
    CONTENT_COMPLETE,
    CONTENT_EVENT_TYPES,
    CONTENT_LIKE,
    CONTENT_PLAY,
    CONTENT_SHARE,
    CONTENT_VIEW,
    DATABASE_QUERY,
    ERROR_OCCURRED,
    HEALTH_CHECK,
    IMPORT_COMPLETED,
    IMPORT_FAILED,
    IMPORT_STAGE_COMPLETED,
    IMPORT_STARTED,
    PAGE_TYPES,
    PLAYBACK_SESSION_TYPES,
    PROCESSING_COMPLETED,
    PROCESSING_FAILED,
    PROCESSING_STARTED,
    RECOMMENDATION_CLICK,
    RECOMMENDATION_IMPRESSION,
    RESOURCE_USAGE,
    SEARCH_IMPRESSION,
    SEARCH_QUERY,
    SEARCH_RESULT_CLICK,
)
from semantic.event_dimensions import EVENT_DIMENSIONS
from storage.event_keys import CONTENT_KEY, DURATION_SECONDS, QUERY_KEY, SESSION_KEY, VIEWER_KEY, sql_list
from storage.system_rows import API_REQUEST_ROW, ERROR_ROW, HEALTH_CHECK_ROW, RESOURCE_ROW

# Distinct counts of these keys count their cityHash64 (the rollup states hold the same hashes,
# migration 012): merging UInt64 states is much cheaper than merging String ones.
HASHED = (
    ", counted as distinct 64-bit hashes of the key (any two of n keys share a hash with chance"
    " about n²/2^65, 3·10^-10 for 10^5 keys; keys that share one count once)"
)

BREAKDOWN_DIMENSIONS = ("traffic_source", "country", "region", "device_type", "browser", "referrer_host")
METADATA_FIELDS = ("category", "content_type", "language", "author")

# Marks where the compiler puts its predicates inside a raw source.
WHERE = "/*where*/"
# Marks where the compiler puts the columns a query reads, in the source of a family built from event rows.
COLUMNS = "/*columns*/"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    description: str
    raw: str
    rollup: str | None
    # A derived metric is an expression over other metrics written as @name.
    derived: bool = False
    # Families built from event rows (``Family.row_columns``): the row columns the raw expression reads,
    # the event types it counts (None = every event) and whether it counts only events naming a content.
    # The compiler reads only those columns, and only those events when every metric says which.
    columns: tuple[str, ...] = ()
    event_types: tuple[str, ...] | None = None
    names_content: bool = False
    # Null where there is nothing to aggregate (quantiles of no values), never 0.
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    description: str
    raw: str
    rollup: str | None
    # Added inside the raw source when filtering on this dimension, so ClickHouse can use the sort key.
    raw_prefilter: str | None = None
    # Served by joining the content_metadata dimension on the content column.
    from_metadata: bool = False
    # The ClickHouse type filter values are bound as: String, or Int64 for numbers.
    value_type: Literal["String", "Int64"] = "String"
    # Families built from event rows: the expression over one ``events`` row that filters use (inside
    # the source, before grouping), the row columns the dimension reads, and for metadata dimensions
    # the content_metadata field.
    row_sql: str | None = None
    columns: tuple[str, ...] = ()
    metadata_field: str | None = None


@dataclass(frozen=True, slots=True)
class Rollup:
    table: str
    grain: Literal["hour", "day"]
    time_column: str
    # False: one row per period for the whole family, no content in it (site-wide totals). It answers
    # only queries with no dimension but time and no filter, under an unrestricted content scope.
    per_content: bool = True


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    raw_source: str
    rollups: tuple[Rollup, ...]
    metrics: dict[str, Metric]
    dimensions: dict[str, Dimension]
    # The column that names the content (for metadata joins), in raw rows and in rollup rows.
    content_column: tuple[str, str] | None = None
    # A family built from event rows: the columns a query may read, name -> expression over ``events``.
    # The compiler selects only those the query needs (as e_<name>) instead of using raw_source.
    row_columns: dict[str, str] | None = None


def _count(name: str, description: str, condition: str, column: str | None = None) -> Metric:
    return Metric(name, description, raw=f"countIf({condition})", rollup=f"sum({column or name})")


def _count_of(name: str, event_type: str, description: str = "") -> Metric:
    """A count of one event type's events."""
    return _count(name, f"{event_type} events{description}", f"event_type = '{event_type}'")


def _one_of(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1]


def _all_of(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


def _metrics(*items: Metric) -> dict[str, Metric]:
    return {m.name: m for m in items}


def _metadata_dimensions() -> list[Dimension]:
    return [
        Dimension(
            name,
            f"the content's {name.replace('_', ' ')} from content_metadata",
            raw=f"meta.meta_{name}",
            rollup=f"meta.meta_{name}",
            from_metadata=True,
        )
        for name in METADATA_FIELDS
    ]


# --- content -----------------------------------------------------------------------------------
_CONTENT_RAW = f"""(
    SELECT timestamp, event_type, traffic_source, device_type, content_key, viewer_key, session_key
    FROM (
        SELECT
            timestamp, event_type, traffic_source, device_type,
            {CONTENT_KEY} AS content_key,
            {VIEWER_KEY} AS viewer_key,
            {SESSION_KEY} AS session_key
        FROM events
        WHERE event_type IN {sql_list(CONTENT_EVENT_TYPES)} {WHERE}
    )
    WHERE content_key != ''
)"""

CONTENT = Family(
    name="content",
    raw_source=_CONTENT_RAW,
    # Coarsest first: site-wide day totals, then per content by day, then by hour.
    rollups=(
        Rollup("content_totals_daily", "day", "day", per_content=False),
        Rollup("content_daily", "day", "day"),
        Rollup("content_hourly", "hour", "hour"),
    ),
    content_column=("content_key", "content_id"),
    metrics=_metrics(
        _count_of("views", CONTENT_VIEW),
        Metric(
            "unique_views",
            f"distinct viewers (user, else session, else the anonymous event) with a {CONTENT_VIEW}" + HASHED,
            raw=f"uniqExactIf(cityHash64(viewer_key), event_type = '{CONTENT_VIEW}')",
            rollup="uniqExactMerge(viewers)",
        ),
        Metric(
            "playback_sessions",
            f"distinct sessions with a {_one_of(PLAYBACK_SESSION_TYPES)} of the content" + HASHED,
            raw=f"uniqExactIf(cityHash64(session_key), event_type IN {sql_list(PLAYBACK_SESSION_TYPES)})",
            rollup="uniqExactMerge(playback_sessions)",
        ),
        Metric(
            "completed_sessions",
            f"distinct sessions with a {CONTENT_COMPLETE} of the content" + HASHED,
            raw=f"uniqExactIf(cityHash64(session_key), event_type = '{CONTENT_COMPLETE}')",
            rollup="uniqExactMerge(completed_sessions)",
        ),
        _count_of("likes", CONTENT_LIKE),
        _count_of("shares", CONTENT_SHARE),
        _count_of("bookmarks", CONTENT_BOOKMARK),
        _count_of("comments", CONTENT_COMMENT),
        _count_of("search_impressions", SEARCH_IMPRESSION, " naming the content"),
        _count_of("search_clicks", SEARCH_RESULT_CLICK, " naming the content"),
        _count_of("recommendation_impressions", RECOMMENDATION_IMPRESSION, " naming the content"),
        _count_of("recommendation_clicks", RECOMMENDATION_CLICK, " naming the content"),
        *[
            _count(
                f"{source}_views",
                f"views with traffic_source = {source}",
                f"event_type = '{CONTENT_VIEW}' AND traffic_source = '{source}'",
            )
            for source in TRAFFIC_SOURCES
        ],
        *[
            _count(
                f"{device}_views",
                f"views with device_type = {device}",
                f"event_type = '{CONTENT_VIEW}' AND device_type = '{device}'",
            )
            for device in DEVICE_TYPES
        ],
        Metric(
            "completion_rate",
            "completed_sessions / playback_sessions (0 when there were none)",
            raw="if(@playback_sessions = 0, 0, @completed_sessions / @playback_sessions)",
            rollup="if(@playback_sessions = 0, 0, @completed_sessions / @playback_sessions)",
            derived=True,
        ),
        Metric(
            "interactions",
            "likes + shares + bookmarks + comments",
            raw="@likes + @shares + @bookmarks + @comments",
            rollup="@likes + @shares + @bookmarks + @comments",
            derived=True,
        ),
        Metric(
            "engagement_rate",
            "interactions per view (0 without views)",
            raw="if(@views = 0, 0, (@likes + @shares + @bookmarks + @comments) / @views)",
            rollup="if(@views = 0, 0, (@likes + @shares + @bookmarks + @comments) / @views)",
            derived=True,
        ),
        Metric(
            "search_ctr",
            "search_clicks / search_impressions (0 without impressions)",
            raw="if(@search_impressions = 0, 0, @search_clicks / @search_impressions)",
            rollup="if(@search_impressions = 0, 0, @search_clicks / @search_impressions)",
            derived=True,
        ),
        Metric(
            "recommendation_ctr",
            "recommendation_clicks / recommendation_impressions (0 without impressions)",
            raw="if(@recommendation_impressions = 0, 0, @recommendation_clicks / @recommendation_impressions)",
            rollup="if(@recommendation_impressions = 0, 0, @recommendation_clicks / @recommendation_impressions)",
            derived=True,
        ),
    ),
    dimensions={
        "content_id": Dimension(
            "content_id",
            "the content (content_id, else properties.content_id)",
            raw="content_key",
            rollup="content_id",
            # Events naming the content only in properties have content_id = ''.
            raw_prefilter="(content_id IN {%s:Array(String)} OR content_id = '')",
        ),
        **{d.name: d for d in _metadata_dimensions()},
    },
)

# --- content breakdowns ------------------------------------------------------------------------
_BREAKDOWN_RAW = f"""(
    SELECT timestamp, content_key, viewer_key, pair.1 AS dimension, pair.2 AS value
    FROM (
        SELECT
            timestamp,
            {CONTENT_KEY} AS content_key,
            {VIEWER_KEY} AS viewer_key,
            [{", ".join(f"('{d}', toString({d}))" for d in BREAKDOWN_DIMENSIONS)}] AS pairs
        FROM events
        WHERE event_type = '{CONTENT_VIEW}' {WHERE}
    )
    ARRAY JOIN pairs AS pair
    WHERE content_key != ''
)"""

BREAKDOWN = Family(
    name="breakdown",
    raw_source=_BREAKDOWN_RAW,
    rollups=(Rollup("content_breakdown_daily", "day", "day"),),
    content_column=("content_key", "content_id"),
    metrics=_metrics(
        Metric("views", f"{CONTENT_VIEW} events", raw="count()", rollup="sum(views)"),
        Metric(
            "unique_views",
            "distinct viewers" + HASHED,
            raw="uniqExact(cityHash64(viewer_key))",
            rollup="uniqExactMerge(viewers)",
        ),
    ),
    dimensions={
        "content_id": CONTENT.dimensions["content_id"],
        "dimension": Dimension(
            "dimension", "which breakdown: " + ", ".join(BREAKDOWN_DIMENSIONS), raw="dimension", rollup="dimension"
        ),
        "value": Dimension("value", "the breakdown value ('' = not known)", raw="value", rollup="value"),
        **{d.name: d for d in _metadata_dimensions()},
    },
)

# --- users -------------------------------------------------------------------------------------
_USER_RAW = f"""(
    SELECT timestamp, user_id, event_type
    FROM events
    WHERE user_id != '' {WHERE}
)"""

USERS = Family(
    name="users",
    raw_source=_USER_RAW,
    rollups=(Rollup("user_daily", "day", "day"),),
    metrics=_metrics(
        Metric("users", "distinct users", raw="uniqExact(user_id)", rollup="uniqExact(user_id)"),
        Metric("events", "events", raw="count()", rollup="sum(events)"),
        _count_of("views", CONTENT_VIEW),
        _count_of("completes", CONTENT_COMPLETE),
        _count_of("searches", SEARCH_QUERY),
        _count_of("likes", CONTENT_LIKE),
        _count_of("shares", CONTENT_SHARE),
        _count_of("bookmarks", CONTENT_BOOKMARK),
        _count_of("comments", CONTENT_COMMENT),
        _count("pages", f"{_all_of(PAGE_TYPES)} events", f"event_type IN {sql_list(PAGE_TYPES)}"),
        Metric("first_seen", "first event", raw="min(timestamp)", rollup="min(first_seen)"),
        Metric("last_seen", "last event", raw="max(timestamp)", rollup="max(last_seen)"),
        # Rollup rows are UTC days; the compiler uses this rollup only where local days are UTC days.
        Metric(
            "active_days",
            "distinct days with an event",
            raw="uniqExact(toDate(timestamp, {tz:String}))",
            rollup="uniqExact(day)",
        ),
    ),
    dimensions={"user_id": Dimension("user_id", "the user", raw="user_id", rollup="user_id")},
)

# --- search ------------------------------------------------------------------------------------
_SEARCH_RAW = f"""(
    SELECT
        timestamp, event_type,
        {QUERY_KEY} AS query,
        if(event_type = '{SEARCH_RESULT_CLICK}',
           toUInt16(least(greatest(JSONExtractInt(properties, 'position'), 0), 1000)), 0) AS click_position,
        event_type = '{SEARCH_QUERY}' AND JSONHas(properties, 'results_count')
            AND JSONExtractInt(properties, 'results_count') = 0 AS zero_result,
        toUInt64(greatest(JSONExtractInt(properties, 'results_count'), 0)) AS results_count,
        {VIEWER_KEY} AS searcher_key
    FROM events
    WHERE event_type IN {sql_list((SEARCH_QUERY, SEARCH_RESULT_CLICK))} {WHERE}
)"""

SEARCH = Family(
    name="search",
    raw_source=_SEARCH_RAW,
    rollups=(Rollup("search_daily", "day", "day"),),
    metrics=_metrics(
        _count_of("searches", SEARCH_QUERY),
        Metric(
            "zero_result_searches",
            "searches with results_count = 0",
            raw="countIf(zero_result)",
            rollup="sum(zero_result_searches)",
        ),
        Metric(
            "results",
            "sum of results_count over searches",
            raw=f"sumIf(results_count, event_type = '{SEARCH_QUERY}')",
            rollup="sum(results)",
        ),
        Metric(
            "searchers",
            "distinct searchers (user, else session, else the event)" + HASHED,
            raw=f"uniqExactIf(cityHash64(searcher_key), event_type = '{SEARCH_QUERY}')",
            rollup="uniqExactMerge(searchers)",
        ),
        _count_of("clicks", SEARCH_RESULT_CLICK),
        Metric(
            "ctr",
            "clicks / searches (0 without searches)",
            raw="if(@searches = 0, 0, @clicks / @searches)",
            rollup="if(@searches = 0, 0, @clicks / @searches)",
            derived=True,
        ),
        Metric(
            "zero_result_rate",
            "zero_result_searches / searches (0 without searches)",
            raw="if(@searches = 0, 0, @zero_result_searches / @searches)",
            rollup="if(@searches = 0, 0, @zero_result_searches / @searches)",
            derived=True,
        ),
    ),
    dimensions={
        "query": Dimension("query", "the normalized query text", raw="query", rollup="query"),
        "click_position": Dimension(
            "click_position",
            "position of a clicked result (0 = searches, or a click without position)",
            raw="click_position",
            rollup="click_position",
        ),
    },
)

# --- system: the platform's services, from their system events (migration 017) -----------------------
# Each family's raw source is storage/system_rows.py's row of one kind of event; its rollup holds the
# same columns aggregated per UTC hour. Response-time quantiles are quantileTiming: the value at rank
# floor(q·n)+1 of the times in whole milliseconds (past 5,670 values rank ceil(q·n), with times of
# 1,024 ms and more counted in 16 ms steps); times above 30 s count as 30 s. Its state is a
# histogram, so merged states give the same answer as the raw times.
_RESPONSE_TIMED = "ifNull(duration_ms, 0), isNotNull(duration_ms)"
RESPONSE_TIME_LEVELS = (0.5, 0.95, 0.99)


def _sum_of(name: str, description: str, column: str, *, raw: str | None = None) -> Metric:
    """A sum of a row column (``raw`` overrides the raw expression) and of its rollup column."""
    return Metric(name, description, raw=raw or f"sum({name})", rollup=f"sum({column})")


def _response_time(level: float) -> Metric:
    percent = round(level * 100)
    return Metric(
        f"response_time_p{percent}",
        f"the {percent}th percentile of properties.duration_ms (quantileTiming); null without any",
        raw=f"if(count(duration_ms) = 0, NULL, toFloat64(quantileTimingIf({level})({_RESPONSE_TIMED})))",
        rollup=f"if(sum(timed_requests) = 0, NULL, toFloat64(quantileTimingMerge({level})(response_time)))",
        nullable=True,
    )


def _average(name: str, description: str, total: str, count: str) -> Metric:
    expression = f"if(@{count} = 0, NULL, @{total} / @{count})"
    return Metric(name, f"{description}; null without any", raw=expression, rollup=expression, derived=True)


def _share(name: str, description: str, numerator: str, denominator: str) -> Metric:
    expression = f"if({denominator} = 0, 0, ({numerator}) / ({denominator}))"
    return Metric(name, f"{description} (0 without any)", raw=expression, rollup=expression, derived=True)


def _key(name: str, description: str) -> Dimension:
    return Dimension(name, description, raw=name, rollup=name)


_STATUS_LEVELS = "toUInt8(multiIf(check_status = 'down', 3, check_status = 'degraded', 2, check_status = 'up', 1, 0))"

SYSTEM_REQUESTS = Family(
    name="system_requests",
    raw_source=f"({API_REQUEST_ROW.source('events', WHERE)})",
    rollups=(Rollup("system_requests_hourly", "hour", "hour"),),
    metrics=_metrics(
        Metric("requests", f"{API_REQUEST} events", raw="count()", rollup="sum(requests)"),
        _count("successful_requests", "requests with 100 <= status < 400", "status >= 100 AND status < 400"),
        _count("client_error_requests", "requests with 400 <= status < 500", "status >= 400 AND status < 500"),
        _count("server_error_requests", "requests with status >= 500", "status >= 500"),
        _share("error_rate", "server_error_requests / requests", "@server_error_requests", "@requests"),
        Metric(
            "status_codes",
            "requests by status (0 = not given)",
            raw="sumMap(map(status, toUInt64(1)))",
            rollup="sumMap(status_codes)",
        ),
        Metric(
            "timed_requests",
            "requests reporting duration_ms",
            raw="count(duration_ms)",
            rollup="sum(timed_requests)",
        ),
        _sum_of(
            "response_time_ms",
            "the sum of duration_ms",
            "response_time_total_ms",
            raw="sum(ifNull(duration_ms, 0))",
        ),
        _average("response_time_avg", "response_time_ms / timed_requests", "response_time_ms", "timed_requests"),
        *[_response_time(level) for level in RESPONSE_TIME_LEVELS],
        Metric(
            "response_time_quantiles",
            "response_time_p50, p95 and p99 as one array (NaN without any)",
            raw=f"quantilesTimingIf({', '.join(map(str, RESPONSE_TIME_LEVELS))})({_RESPONSE_TIMED})",
            rollup=f"quantilesTimingMerge({', '.join(map(str, RESPONSE_TIME_LEVELS))})(response_time)",
        ),
        _sum_of("db_queries", "the sum of db_query_count", "db_queries", raw="sum(db_query_count)"),
        _sum_of("db_time_ms", "the sum of db_time_ms", "db_time_total_ms"),
        _count("cache_hits", "requests with cache_hit true", "cache_hit = 1"),
        _count("cache_misses", "requests with cache_hit false", "cache_hit = 0"),
        _share(
            "cache_hit_rate", "cache_hits / (cache_hits + cache_misses)", "@cache_hits", "@cache_hits + @cache_misses"
        ),
        _sum_of("external_calls", "the sum of external_calls", "external_calls_total"),
        _sum_of("external_errors", "the sum of external_errors", "external_errors_total"),
        _sum_of("external_time_ms", "the sum of external_time_ms", "external_time_total_ms"),
        _average(
            "external_response_time_avg", "external_time_ms / external_calls", "external_time_ms", "external_calls"
        ),
        Metric(
            "users",
            "distinct user_id of the requests that carry one" + HASHED,
            raw="uniqExactIf(cityHash64(user_id), user_id != '')",
            rollup="uniqExactMerge(users)",
        ),
        Metric("last_seen", "the latest request", raw="max(timestamp)", rollup="max(last_seen)"),
    ),
    dimensions={
        "service": _key("service", "properties.service"),
        "endpoint": _key("endpoint", "properties.endpoint"),
        "method": _key("method", "properties.method"),
    },
)

SYSTEM_ERRORS = Family(
    name="system_errors",
    raw_source=f"({ERROR_ROW.source('events', WHERE)})",
    rollups=(Rollup("system_errors_hourly", "hour", "hour"),),
    metrics=_metrics(
        Metric("errors", f"{ERROR_OCCURRED} events", raw="count()", rollup="sum(errors)"),
        Metric("last_seen", "the latest error", raw="max(timestamp)", rollup="max(last_seen)"),
    ),
    dimensions={
        "service": _key("service", "properties.service"),
        "endpoint": _key("endpoint", "properties.endpoint"),
        "error_type": _key("error_type", "properties.error_type"),
        "severity": _key("severity", "properties.severity"),
        "message": _key("message", "the first 500 characters of properties.message"),
    },
)


def _resource(resource: str) -> list[Metric]:
    column = f"{resource}_percent"
    return [
        Metric(
            f"{resource}_samples",
            f"samples reporting {column}",
            raw=f"count({column})",
            rollup=f"sum({resource}_samples)",
        ),
        _sum_of(f"{column}_total", f"the sum of {column}", f"{column}_total", raw=f"sum(ifNull({column}, 0))"),
        Metric(
            f"{column}_max",
            f"the largest {column} (0 without samples)",
            raw=f"max(ifNull({column}, 0))",
            rollup=f"max({column}_max)",
        ),
        _average(f"{column}_avg", f"the mean of {column}", f"{column}_total", f"{resource}_samples"),
    ]


SYSTEM_RESOURCES = Family(
    name="system_resources",
    raw_source=f"({RESOURCE_ROW.source('events', WHERE)})",
    rollups=(Rollup("system_resources_hourly", "hour", "hour"),),
    metrics=_metrics(
        Metric("samples", f"{RESOURCE_USAGE} events", raw="count()", rollup="sum(samples)"),
        *_resource("cpu"),
        *_resource("memory"),
        *_resource("disk"),
        Metric(
            "cpu_cores",
            "the largest cpu_cores (0 when none)",
            raw="max(ifNull(cpu_cores, 0))",
            rollup="max(cpu_cores_max)",
        ),
        Metric(
            "memory_gb",
            "the largest memory_gb (0 when none)",
            raw="max(ifNull(memory_gb, 0))",
            rollup="max(memory_gb_max)",
        ),
        Metric("last_seen", "the latest sample", raw="max(timestamp)", rollup="max(last_seen)"),
    ),
    dimensions={
        "service": _key("service", "properties.service"),
        "instance": _key("instance", "properties.instance ('' = not given)"),
    },
)

SYSTEM_HEALTH = Family(
    name="system_health",
    raw_source=f"({HEALTH_CHECK_ROW.source('events', WHERE)})",
    rollups=(Rollup("system_health_hourly", "hour", "hour"),),
    metrics=_metrics(
        Metric("checks", f"{HEALTH_CHECK} events", raw="count()", rollup="sum(checks)"),
        *[
            _count(f"{status}_checks", f"checks with status {status}", f"check_status = '{status}'")
            for status in ("up", "degraded", "down")
        ],
        _share(
            "availability",
            "(up + degraded checks) / (up + degraded + down checks)",
            "@up_checks + @degraded_checks",
            "@up_checks + @degraded_checks + @down_checks",
        ),
        Metric("timed_checks", "checks reporting latency_ms", raw="count(latency_ms)", rollup="sum(timed_checks)"),
        _sum_of("check_latency_ms", "the sum of latency_ms", "latency_total_ms", raw="sum(ifNull(latency_ms, 0))"),
        _average("check_latency_avg", "check_latency_ms / timed_checks", "check_latency_ms", "timed_checks"),
        Metric(
            "latest_status",
            "the status of the latest check (of checks at the same instant, the worst)",
            raw=f"argMax(check_status, (timestamp, {_STATUS_LEVELS}, check_status))",
            rollup="argMaxMerge(latest_status)",
        ),
        Metric("last_check", "the latest check", raw="max(timestamp)", rollup="max(last_check)"),
    ),
    dimensions={"service": _key("service", "properties.service")},
)

# This service's own statements (database_query events), as migration 019 keeps them in
# database_statements: one row per distinct duration, so statements slower than any threshold count
# exactly (the duration is a dimension). Events without a numeric duration_ms are not statements.
_JSON_NUMBERS = sql_list(("Int64", "UInt64", "Double"))
_STATEMENTS_RAW = f"""(
    SELECT
        timestamp,
        JSONExtractString(properties, 'service') AS service,
        greatest(JSONExtractFloat(properties, 'duration_ms'), 0) AS duration_ms
    FROM events
    WHERE event_type = '{DATABASE_QUERY}' AND JSONType(properties, 'duration_ms') IN {_JSON_NUMBERS} {WHERE}
)"""

SYSTEM_STATEMENTS = Family(
    name="system_statements",
    raw_source=_STATEMENTS_RAW,
    rollups=(Rollup("database_statements", "hour", "hour"),),
    metrics=_metrics(
        Metric("statements", f"{DATABASE_QUERY} events", raw="count()", rollup="sum(statements)"),
    ),
    dimensions={
        "service": _key("service", "properties.service"),
        "duration_ms": _key("duration_ms", "the statement's duration (ms)"),
    },
)

# --- events: any raw event, by any dimension of semantic/event_dimensions.py ----------------------
# The rows are events; a query reads only the columns (e_<name>) and, when every metric it asks
# says which, only the event types its metrics count. Metrics that share a name with a metric of the
# content or search family are defined identically (tests/semantic/test_analytics_query.py checks the
# answers agree), so a query the rollups can answer is answered there (semantic/analytics_query.py).
_SEARCH_ZERO_RESULT = (
    f"event_type = '{SEARCH_QUERY}' AND JSONHas(properties, 'results_count')"
    " AND JSONExtractInt(properties, 'results_count') = 0"
)
_NUMBER = "('Int64', 'UInt64', 'Double')"
# Import and media processing jobs (docs/imports.md): their start, completion and failure events.
JOB_STARTS: tuple[str, ...] = (IMPORT_STARTED, PROCESSING_STARTED)
JOB_COMPLETIONS: tuple[str, ...] = (IMPORT_COMPLETED, PROCESSING_COMPLETED)
JOB_FAILURES: tuple[str, ...] = (IMPORT_FAILED, PROCESSING_FAILED)
JOB_ENDS: tuple[str, ...] = (*JOB_COMPLETIONS, *JOB_FAILURES)
JOB_FIGURES = (
    "records_processed",
    "records_failed",
    "duplicates",
    "invalid_rows",
    "missing_fields",
    "transform_errors",
)


def _job_count(name: str) -> str:
    """A job's figure as import_jobs (migration 018) reads it: a JSON number, negative as 0; else null."""
    return (
        f"if(JSONType(properties, '{name}') IN {_NUMBER}, "
        f"toInt64(least(greatest(JSONExtractFloat(properties, '{name}'), 0), 1e15)), NULL)"
    )


def _job_duration(event_types: tuple[str, ...]) -> str:
    return (
        f"if(event_type IN {sql_list(event_types)} AND JSONType(properties, 'duration_ms') IN {_NUMBER}, "
        "greatest(JSONExtractFloat(properties, 'duration_ms'), 0), NULL)"
    )


EVENT_ROW_COLUMNS: dict[str, str] = {
    **{d.name: d.sql for d in EVENT_DIMENSIONS.values() if d.metadata_field is None},
    "viewer_key": VIEWER_KEY,
    "session_key": SESSION_KEY,
    "duration_seconds": DURATION_SECONDS,
    # Null where there is no latency to count, so quantiles skip those rows (and are null without any).
    "latency_ms": (
        f"if(event_type = '{API_REQUEST}' AND JSONType(properties, 'duration_ms') IN {_NUMBER}, "
        "JSONExtractFloat(properties, 'duration_ms'), NULL)"
    ),
    "zero_result": _SEARCH_ZERO_RESULT,
    # Import and processing jobs: the job id (a JSON string or integer) and the figures they report.
    "job_id": (
        "if(JSONType(properties, 'job_id') IN ('Int64', 'UInt64'), JSONExtractRaw(properties, 'job_id'), "
        "JSONExtractString(properties, 'job_id'))"
    ),
    **{f"job_{name}": _job_count(name) for name in JOB_FIGURES},
    # Null but on the events that report one, so quantiles skip the others.
    "job_duration_ms": _job_duration(JOB_ENDS),
    "stage_duration_ms": _job_duration((IMPORT_STAGE_COMPLETED,)),
    # System events, read as the system families read them (storage/system_rows.py).
    "response_time_ms": API_REQUEST_ROW.on_event_row("duration_ms", "NULL"),
    "cache_hit": API_REQUEST_ROW.on_event_row("cache_hit", "-1"),
    "external_calls": API_REQUEST_ROW.on_event_row("external_calls", "0"),
    "external_errors": API_REQUEST_ROW.on_event_row("external_errors", "0"),
    **{
        f"{resource}_percent": RESOURCE_ROW.on_event_row(f"{resource}_percent", "NULL")
        for resource in ("cpu", "memory", "disk")
    },
}
_EVENTS_RAW = f"(SELECT {COLUMNS} FROM events WHERE 1 {WHERE})"


def _event_count(
    name: str,
    event_type: str,
    description: str,
    *,
    content: bool = False,
    also: str = "",
    also_columns: tuple[str, ...] = (),
) -> Metric:
    """A count of one event type's events (``content``: only those naming a content; ``also``: a further condition)."""
    condition = f"e_event_type = '{event_type}'"
    columns: tuple[str, ...] = ("event_type", *also_columns)
    if content:
        condition += " AND e_content_id != ''"
        columns += ("content_id",)
    if also:
        condition += f" AND {also}"
    return Metric(
        name,
        description,
        raw=f"countIf({condition})",
        rollup=None,
        columns=columns,
        event_types=(event_type,),
        names_content=content,
    )


def _distinct_content(name: str, description: str, key: str, event_types: tuple[str, ...]) -> Metric:
    types = f"= '{event_types[0]}'" if len(event_types) == 1 else f"IN {sql_list(event_types)}"
    return Metric(
        name,
        description + HASHED,
        raw=f"uniqExactIf(cityHash64(e_{key}), e_event_type {types} AND e_content_id != '')",
        rollup=None,
        columns=("event_type", "content_id", key),
        event_types=event_types,
        names_content=True,
    )


def _ratio(name: str, description: str, numerator: str, denominator: str) -> Metric:
    expression = f"if({denominator} = 0, 0, {numerator} / ({denominator}))"
    return Metric(name, f"{description} (0 when the denominator is 0)", raw=expression, rollup=None, derived=True)


def _latency(level: int) -> Metric:
    return Metric(
        f"latency_p{level}",
        f"the {level}th percentile of properties.duration_ms over {API_REQUEST} events that report it, exact"
        " (linear interpolation between the closest ranks); null without any",
        raw=f"quantileExactInclusive({level / 100})(e_latency_ms)",
        rollup=None,
        columns=("latency_ms",),
        event_types=(API_REQUEST,),
        nullable=True,
    )


def _response_time_level(level: float) -> Metric:
    percent = round(level * 100)
    return Metric(
        f"response_time_p{percent}",
        f"the {percent}th percentile of properties.duration_ms over {API_REQUEST} events that report it, as"
        " quantileTiming computes it (docs/metrics.md); null without any",
        raw=f"toFloat64(quantileTiming({level})(e_response_time_ms))",
        rollup=None,
        columns=("response_time_ms",),
        event_types=(API_REQUEST,),
        nullable=True,
    )


def _mean(name: str, description: str, column: str, event_type: str) -> Metric:
    return Metric(
        name,
        f"{description}; null without any",
        raw=f"avg(e_{column})",
        rollup=None,
        columns=(column,),
        event_types=(event_type,),
        nullable=True,
    )


def _event_sum(name: str, description: str, event_type: str) -> Metric:
    return Metric(name, description, raw=f"sum(e_{name})", rollup=None, columns=(name,), event_types=(event_type,))


def _job_events(name: str, event_types: tuple[str, ...]) -> Metric:
    """A count of job events of the given types."""
    return Metric(
        name,
        f"{_one_of(event_types)} events",
        raw=f"countIf(e_event_type IN {sql_list(event_types)})",
        rollup=None,
        columns=("event_type",),
        event_types=event_types,
    )


def _job_sum(name: str, figure: str, event_types: tuple[str, ...]) -> Metric:
    return Metric(
        name,
        f"the sum of properties.{figure} over {_one_of(event_types)} events (the job's totals; JSON numbers,"
        " negative ones as 0)",
        raw=f"sumIf(ifNull(e_job_{figure}, 0), e_event_type IN {sql_list(event_types)})",
        rollup=None,
        columns=("event_type", f"job_{figure}"),
        event_types=event_types,
    )


def _job_quantile(name: str, level: int, column: str, event_types: tuple[str, ...]) -> Metric:
    return Metric(
        name,
        f"the {level}th percentile of properties.duration_ms over {_one_of(event_types)} events that report"
        " it, exact (linear interpolation between the closest ranks); null without any",
        raw=f"quantileExactInclusive({level / 100})(e_{column})",
        rollup=None,
        columns=(column,),
        event_types=event_types,
        nullable=True,
    )


# Completions that say how many records they processed and how long they took: throughput's events.
_TIMED_COMPLETION = (
    f"e_event_type IN {sql_list(JOB_COMPLETIONS)} AND e_job_duration_ms > 0 AND e_job_records_processed IS NOT NULL"
)


def _event_dimensions() -> dict[str, Dimension]:
    dimensions: dict[str, Dimension] = {}
    for d in EVENT_DIMENSIONS.values():
        if d.metadata_field is not None:
            dimensions[d.name] = Dimension(
                d.name,
                d.description,
                raw=f"meta.meta_{d.metadata_field}",
                rollup=None,
                from_metadata=True,
                columns=("content_id",),
                metadata_field=d.metadata_field,
            )
            continue
        dimensions[d.name] = Dimension(
            d.name,
            d.description,
            raw=f"e_{d.name}",
            rollup=None,
            # Events naming the content only in properties have content_id = ''.
            raw_prefilter="(content_id IN {%s:Array(String)} OR content_id = '')" if d.name == "content_id" else None,
            value_type="Int64" if d.type == "integer" else "String",
            row_sql=d.sql,
            columns=(d.name,),
        )
    return dimensions


_CONTENT_NAMED = " naming a content (content_id, else properties.content_id)"

EVENTS = Family(
    name="events",
    raw_source=_EVENTS_RAW,
    rollups=(),
    content_column=("e_content_id", "e_content_id"),
    row_columns=EVENT_ROW_COLUMNS,
    metrics=_metrics(
        Metric("events", "events of any type", raw="count()", rollup=None),
        Metric(
            "users",
            "distinct user_id of the events that carry one, exact",
            raw="uniqExactIf(e_user_id, e_user_id != '')",
            rollup=None,
            columns=("user_id",),
        ),
        Metric(
            "sessions",
            "distinct session_id of the events that carry one, exact",
            raw="uniqExactIf(e_session_id, e_session_id != '')",
            rollup=None,
            columns=("session_id",),
        ),
        _event_count("views", CONTENT_VIEW, f"{CONTENT_VIEW} events{_CONTENT_NAMED}", content=True),
        _distinct_content(
            "unique_viewers",
            f"distinct viewers (user, else session, else the anonymous event) with a {CONTENT_VIEW}{_CONTENT_NAMED}",
            "viewer_key",
            (CONTENT_VIEW,),
        ),
        _event_count("plays", CONTENT_PLAY, f"{CONTENT_PLAY} events{_CONTENT_NAMED}", content=True),
        _event_count("completes", CONTENT_COMPLETE, f"{CONTENT_COMPLETE} events{_CONTENT_NAMED}", content=True),
        _distinct_content(
            "playback_sessions",
            f"distinct playback sessions with a {_one_of(PLAYBACK_SESSION_TYPES)}{_CONTENT_NAMED}",
            "session_key",
            PLAYBACK_SESSION_TYPES,
        ),
        _distinct_content(
            "completed_sessions",
            f"distinct playback sessions with a {CONTENT_COMPLETE}{_CONTENT_NAMED}",
            "session_key",
            (CONTENT_COMPLETE,),
        ),
        _ratio(
            "completion_rate", "completed_sessions / playback_sessions", "@completed_sessions", "@playback_sessions"
        ),
        _event_count("likes", CONTENT_LIKE, f"{CONTENT_LIKE} events{_CONTENT_NAMED}", content=True),
        _event_count("shares", CONTENT_SHARE, f"{CONTENT_SHARE} events{_CONTENT_NAMED}", content=True),
        _event_count("bookmarks", CONTENT_BOOKMARK, f"{CONTENT_BOOKMARK} events{_CONTENT_NAMED}", content=True),
        _event_count("comments", CONTENT_COMMENT, f"{CONTENT_COMMENT} events{_CONTENT_NAMED}", content=True),
        Metric(
            "watch_time_seconds",
            "the sum of properties.duration_seconds over the events that report it (JSON numbers only, each"
            " clamped to 0-86,400), as the live counters' watch time",
            raw="sum(e_duration_seconds)",
            rollup=None,
            columns=("duration_seconds",),
        ),
        _event_count("searches", SEARCH_QUERY, f"{SEARCH_QUERY} events"),
        Metric(
            "zero_result_searches",
            f"{SEARCH_QUERY} events with properties.results_count = 0",
            raw="countIf(e_zero_result)",
            rollup=None,
            columns=("zero_result",),
            event_types=(SEARCH_QUERY,),
        ),
        _ratio("zero_result_rate", "zero_result_searches / searches", "@zero_result_searches", "@searches"),
        _event_count("search_clicks", SEARCH_RESULT_CLICK, f"{SEARCH_RESULT_CLICK} events"),
        _ratio("search_ctr", "search_clicks / searches", "@search_clicks", "@searches"),
        _event_count("api_requests", API_REQUEST, f"{API_REQUEST} events"),
        _event_count(
            "server_error_requests",
            API_REQUEST,
            f"{API_REQUEST} events with properties.status >= 500",
            also="e_status >= 500",
            also_columns=("status",),
        ),
        _event_count("errors", ERROR_OCCURRED, f"{ERROR_OCCURRED} events"),
        _ratio("error_rate", "errors / api_requests", "@errors", "@api_requests"),
        _ratio("request_error_rate", "server_error_requests / api_requests", "@server_error_requests", "@api_requests"),
        _latency(50),
        _latency(95),
        _latency(99),
        _event_count(
            "successful_requests",
            API_REQUEST,
            f"{API_REQUEST} events with 100 <= properties.status < 400",
            also="e_status >= 100 AND e_status < 400",
            also_columns=("status",),
        ),
        _event_count(
            "client_error_requests",
            API_REQUEST,
            f"{API_REQUEST} events with 400 <= properties.status < 500",
            also="e_status >= 400 AND e_status < 500",
            also_columns=("status",),
        ),
        _mean(
            "response_time_avg",
            f"the mean of properties.duration_ms over {API_REQUEST} events that report it",
            "response_time_ms",
            API_REQUEST,
        ),
        *[_response_time_level(level) for level in RESPONSE_TIME_LEVELS],
        _event_count(
            "cache_hits",
            API_REQUEST,
            f"{API_REQUEST} events with properties.cache_hit true",
            also="e_cache_hit = 1",
            also_columns=("cache_hit",),
        ),
        _event_count(
            "cache_misses",
            API_REQUEST,
            f"{API_REQUEST} events with properties.cache_hit false",
            also="e_cache_hit = 0",
            also_columns=("cache_hit",),
        ),
        _ratio(
            "cache_hit_rate", "cache_hits / (cache_hits + cache_misses)", "@cache_hits", "@cache_hits + @cache_misses"
        ),
        _event_sum("external_calls", f"the sum of properties.external_calls over {API_REQUEST} events", API_REQUEST),
        _event_sum("external_errors", f"the sum of properties.external_errors over {API_REQUEST} events", API_REQUEST),
        *[
            _mean(
                f"{resource}_percent_avg",
                f"the mean of properties.{resource}_percent (clamped to 0-100) over {RESOURCE_USAGE} events",
                f"{resource}_percent",
                RESOURCE_USAGE,
            )
            for resource in ("cpu", "memory", "disk")
        ],
        _event_count("health_checks", HEALTH_CHECK, f"{HEALTH_CHECK} events"),
        *[
            _event_count(
                f"health_checks_{status}",
                HEALTH_CHECK,
                f"{HEALTH_CHECK} events with properties.status {status}",
                also=f"e_health_status = '{status}'",
                also_columns=("health_status",),
            )
            for status in ("up", "degraded", "down")
        ],
        _ratio(
            "availability",
            "(health_checks_up + health_checks_degraded) / (health_checks_up + health_checks_degraded +"
            " health_checks_down)",
            "(@health_checks_up + @health_checks_degraded)",
            "@health_checks_up + @health_checks_degraded + @health_checks_down",
        ),
        _event_count("imports_started", IMPORT_STARTED, f"{IMPORT_STARTED} events"),
        _event_count("imports_completed", IMPORT_COMPLETED, f"{IMPORT_COMPLETED} events"),
        _event_count("imports_failed", IMPORT_FAILED, f"{IMPORT_FAILED} events"),
        _ratio(
            "import_success_rate",
            "imports_completed / (imports_completed + imports_failed)",
            "@imports_completed",
            "@imports_completed + @imports_failed",
        ),
        Metric(
            "job_runs",
            f"distinct properties.job_id of {_one_of(JOB_STARTS)} events, exact",
            raw=f"uniqExactIf(e_job_id, e_event_type IN {sql_list(JOB_STARTS)} AND e_job_id != '')",
            rollup=None,
            columns=("event_type", "job_id"),
            event_types=JOB_STARTS,
        ),
        _job_events("jobs_completed", JOB_COMPLETIONS),
        _job_events("jobs_failed", JOB_FAILURES),
        _ratio(
            "job_success_rate",
            "jobs_completed / (jobs_completed + jobs_failed)",
            "@jobs_completed",
            "@jobs_completed + @jobs_failed",
        ),
        _ratio(
            "job_failure_rate",
            "jobs_failed / (jobs_completed + jobs_failed)",
            "@jobs_failed",
            "@jobs_completed + @jobs_failed",
        ),
        _job_sum("import_records_processed", "records_processed", JOB_COMPLETIONS),
        _job_sum("import_records_failed", "records_failed", JOB_ENDS),
        *[
            _job_sum(f"import_{name}", name, JOB_ENDS)
            for name in ("duplicates", "invalid_rows", "missing_fields", "transform_errors")
        ],
        Metric(
            "job_throughput",
            f"records per second of the {_one_of(JOB_COMPLETIONS)} events that report records_processed and a"
            " duration_ms above 0: the sum of the one * 1000 / the sum of the other; null without any",
            raw=(
                f"if(sumIf(e_job_duration_ms, {_TIMED_COMPLETION}) = 0, NULL, "
                f"sumIf(e_job_records_processed, {_TIMED_COMPLETION}) * 1000 "
                f"/ sumIf(e_job_duration_ms, {_TIMED_COMPLETION}))"
            ),
            rollup=None,
            columns=("event_type", "job_duration_ms", "job_records_processed"),
            event_types=JOB_COMPLETIONS,
            nullable=True,
        ),
        *[_job_quantile(f"job_duration_p{level}", level, "job_duration_ms", JOB_ENDS) for level in (50, 95)],
        *[
            _job_quantile(f"stage_duration_p{level}", level, "stage_duration_ms", (IMPORT_STAGE_COMPLETED,))
            for level in (50, 95)
        ],
    ),
    dimensions=_event_dimensions(),
)

# Public metrics and dimensions (of the events family) that a system family defines identically, as
# (family, public metric -> the family's, public dimension -> the family's): analyticsQuery can answer
# them from that family's rollup (semantic/analytics_query.py); tests/semantic/test_system_rollups.py
# compares the answers of both.
SYSTEM_EQUIVALENTS: tuple[tuple[str, dict[str, str], dict[str, str]], ...] = (
    (
        "system_requests",
        {
            "api_requests": "requests",
            "successful_requests": "successful_requests",
            "client_error_requests": "client_error_requests",
            "server_error_requests": "server_error_requests",
            "request_error_rate": "error_rate",
            "response_time_avg": "response_time_avg",
            "response_time_p50": "response_time_p50",
            "response_time_p95": "response_time_p95",
            "response_time_p99": "response_time_p99",
            "cache_hits": "cache_hits",
            "cache_misses": "cache_misses",
            "cache_hit_rate": "cache_hit_rate",
            "external_calls": "external_calls",
            "external_errors": "external_errors",
        },
        {"service": "service", "endpoint": "endpoint", "method": "method"},
    ),
    (
        "system_errors",
        {"errors": "errors"},
        {"service": "service", "endpoint": "endpoint", "error_type": "error_type", "severity": "severity"},
    ),
    (
        "system_resources",
        {f"{resource}_percent_avg": f"{resource}_percent_avg" for resource in ("cpu", "memory", "disk")},
        {"service": "service", "instance": "instance"},
    ),
    (
        "system_health",
        {
            "health_checks": "checks",
            "health_checks_up": "up_checks",
            "health_checks_degraded": "degraded_checks",
            "health_checks_down": "down_checks",
            "availability": "availability",
        },
        {"service": "service"},
    ),
)

# Time dimensions every family has; the compiler computes them at the grain of its source.
# ``bucket`` is the hour, day, week or month of the period's granularity.
TIME_DIMENSIONS = ("bucket", "hour", "day", "week", "month", "hour_of_day", "weekday", "period")

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        CONTENT,
        BREAKDOWN,
        USERS,
        SEARCH,
        SYSTEM_REQUESTS,
        SYSTEM_ERRORS,
        SYSTEM_RESOURCES,
        SYSTEM_HEALTH,
        SYSTEM_STATEMENTS,
        EVENTS,
    )
}

# --- one user's events ---------------------------------------------------------------------------
# events_by_user is a copy of the events that carry a user id, sorted by user; reading raw events
# instead gives the same rows (the parity test compares the two). Needs the {user:String} parameter.
USER_EVENT_SOURCES: dict[str, str] = {
    "events_by_user": "(SELECT * FROM events_by_user WHERE user_id = {user:String})",
    "events": f"""(
        SELECT user_id, timestamp, id, event_type, session_id, content_key AS content_id, device_type, browser,
               traffic_source, country, {DURATION_SECONDS} AS duration_seconds, {QUERY_KEY} AS query
        FROM (SELECT *, {CONTENT_KEY} AS content_key FROM events WHERE user_id = {{user:String}})
    )""",
}
