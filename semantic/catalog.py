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
    ERROR_OCCURRED,
    IMPORT_COMPLETED,
    IMPORT_FAILED,
    IMPORT_STARTED,
    PAGE_TYPES,
    PLAYBACK_SESSION_TYPES,
    RECOMMENDATION_CLICK,
    RECOMMENDATION_IMPRESSION,
    SEARCH_IMPRESSION,
    SEARCH_QUERY,
    SEARCH_RESULT_CLICK,
)
from semantic.event_dimensions import EVENT_DIMENSIONS
from storage.event_keys import CONTENT_KEY, DURATION_SECONDS, QUERY_KEY, SESSION_KEY, VIEWER_KEY, sql_list

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
    rollups=(Rollup("content_daily", "day", "day"), Rollup("content_hourly", "hour", "hour")),
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
        _event_count("imports_started", IMPORT_STARTED, f"{IMPORT_STARTED} events"),
        _event_count("imports_completed", IMPORT_COMPLETED, f"{IMPORT_COMPLETED} events"),
        _event_count("imports_failed", IMPORT_FAILED, f"{IMPORT_FAILED} events"),
        _ratio(
            "import_success_rate",
            "imports_completed / (imports_completed + imports_failed)",
            "@imports_completed",
            "@imports_completed + @imports_failed",
        ),
    ),
    dimensions=_event_dimensions(),
)

# Time dimensions every family has; the compiler computes them at the grain of its source.
# ``bucket`` is the hour, day, week or month of the period's granularity.
TIME_DIMENSIONS = ("bucket", "hour", "day", "week", "month", "hour_of_day", "weekday", "period")

FAMILIES: dict[str, Family] = {f.name: f for f in (CONTENT, BREAKDOWN, USERS, SEARCH, EVENTS)}

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
