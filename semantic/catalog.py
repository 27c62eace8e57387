"""The metric and dimension catalog: every name an analytics query may use, and its SQL.

Each family of metrics has a raw-event source (a subquery over ``events``) and the rollup tables
that can answer it (storage/migrations/clickhouse/004-012). A metric carries two expressions that
mean the same thing: one over raw event rows, one over rollup rows. The compiler picks one; the
parity test (tests/semantic/test_rollup_parity.py) proves they agree.

Only text from this module becomes SQL identifiers or expressions; request values are bound as
``{name:Type}`` parameters by the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.enrichment import DEVICE_TYPES, TRAFFIC_SOURCES
from core.taxonomy import (
    CONTENT_BOOKMARK,
    CONTENT_COMMENT,
    CONTENT_COMPLETE,
    CONTENT_EVENT_TYPES,
    CONTENT_LIKE,
    CONTENT_SHARE,
    CONTENT_VIEW,
    PAGE_TYPES,
    PLAYBACK_SESSION_TYPES,
    RECOMMENDATION_CLICK,
    RECOMMENDATION_IMPRESSION,
    SEARCH_IMPRESSION,
    SEARCH_QUERY,
    SEARCH_RESULT_CLICK,
)
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


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    description: str
    raw: str
    rollup: str | None
    # A derived metric is an expression over other metrics written as @name.
    derived: bool = False


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

# Time dimensions every family has; the compiler computes them at the grain of its source.
TIME_DIMENSIONS = ("bucket", "day", "hour_of_day", "weekday", "period")

FAMILIES: dict[str, Family] = {f.name: f for f in (CONTENT, BREAKDOWN, USERS, SEARCH)}

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
