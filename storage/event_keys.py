"""The keys the analytics derive from a row of ``events``, as ClickHouse expressions over its columns.

The rollup migrations (storage/migrations/clickhouse) spell the same expressions in their views; the
catalog's raw sources (semantic/catalog.py), the watch-time rollup (storage/playback_rollup.py) and the
other readers of raw events use these, so a figure read from raw rows and one read from a rollup agree.
"""

from __future__ import annotations

from collections.abc import Iterable

# The content an event is about: its content_id, else properties.content_id (search and
# recommendation events often name the item shown or clicked there).
CONTENT_KEY = "if(content_id != '', content_id, JSONExtractString(properties, 'content_id'))"
# Who viewed: the user, else the session, else the single anonymous event.
VIEWER_KEY = "if(user_id != '', user_id, if(session_id != '', concat('session:', session_id), concat('event:', id)))"
# Which playback session: the session, else all of the user's session-less events, else the event.
SESSION_KEY = "if(session_id != '', session_id, if(user_id != '', concat('user:', user_id), concat('event:', id)))"
# A duration a client reported (e.g. POST /track/content-view's duration_seconds): a JSON number,
# else 0, clamped to 0..86400 (the same rule as the live counters and events_by_user).
DURATION_SECONDS = (
    "least(greatest(if(JSONType(properties, 'duration_seconds') IN ('Int64', 'UInt64', 'Double'), "
    "JSONExtractFloat(properties, 'duration_seconds'), 0), 0), 86400)"
)
# A search query as counted: trimmed and lower-cased.
QUERY_KEY = "lower(trimBoth(JSONExtractString(properties, 'query')))"


def sql_list(values: Iterable[str]) -> str:
    """A SQL tuple literal of fixed names (event types, sources; never request values)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"
