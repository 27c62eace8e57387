"""The live figures computed from ClickHouse's minute table instead of the actors.

Used when the counter actors cannot answer (restarting, not deployed): the same windows and
definitions, ``source: "rollup"``. Unique counts here are exact (ClickHouse merges the id sets).
Trending uses the same weights, periods and decay as the live counters (semantic/live_counters.py),
summed per minute in SQL.
"""

from __future__ import annotations

import time
from typing import Any

from core.access import ALL_CONTENT, ContentScope
from semantic.live_counters import (
    ACTIVE_WINDOW,
    METRIC_TYPES,
    RATE_SECONDS,
    TREND_WEIGHTS,
    WINDOWS,
    half_life_minutes,
    iso_millis,
    trend_score,
)
from storage.content_categories import load_categories
from storage.event_keys import sql_list
from storage.events import EventStore

_CONTENT_SQL = """
SELECT toString(event_type) AS event_type,
       toInt64(sumIf(events, minute >= toDateTime({w5:Int64}, 'UTC'))) AS n5,
       toInt64(sumIf(events, minute >= toDateTime({w60:Int64}, 'UTC'))) AS n60,
       toInt64(sum(events)) AS n1440,
       sumIf(watch_seconds, minute >= toDateTime({w5:Int64}, 'UTC')) AS s5,
       sumIf(watch_seconds, minute >= toDateTime({w60:Int64}, 'UTC')) AS s60,
       sum(watch_seconds) AS s1440,
       toInt64(toUnixTimestamp64Milli(max(last_event))) AS last_ms
FROM realtime_minutes
WHERE content_id = {content_id:String} AND minute >= toDateTime({w1440:Int64}, 'UTC')
GROUP BY event_type
"""
_CONTENT_USERS_SQL = """
SELECT length(groupUniqArrayMergeIf(users, minute >= toDateTime({w5:Int64}, 'UTC'))) AS u5,
       length(groupUniqArrayMergeIf(users, minute >= toDateTime({w60:Int64}, 'UTC'))) AS u60,
       length(groupUniqArrayMerge(users)) AS u1440
FROM realtime_minutes
WHERE content_id = {content_id:String} AND minute >= toDateTime({w1440:Int64}, 'UTC')
"""
_GLOBAL_SQL = _CONTENT_SQL.replace("content_id = {content_id:String} AND ", "")
_GLOBAL_USERS_SQL = """
SELECT length(groupUniqArrayMergeIf(users, minute >= toDateTime({w5:Int64}, 'UTC'))) AS u5,
       length(groupUniqArrayMergeIf(users, minute >= toDateTime({w60:Int64}, 'UTC'))) AS u60,
       length(groupUniqArrayMerge(users)) AS u1440,
       length(groupUniqArrayMergeIf(sessions, minute >= toDateTime({w5:Int64}, 'UTC'))) AS s5,
       length(groupUniqArrayMergeIf(sessions, minute >= toDateTime({w60:Int64}, 'UTC'))) AS s60,
       length(groupUniqArrayMerge(sessions)) AS s1440
FROM realtime_minutes
WHERE minute >= toDateTime({w1440:Int64}, 'UTC')
"""
_RATE_SQL = """
SELECT toInt64(count()) FROM events
WHERE timestamp > fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')
  AND timestamp < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')
"""

_WEIGHT = "multiIf(" + ", ".join(f"event_type = '{t}', {w!r}" for t, w in TREND_WEIGHTS.items()) + ", 0.0)"
# Per content: weighted activity in the window (a0) and the two windows before it (a1, a2), and
# the window's activity decayed to now (each minute counts at its start, as in the live counters).
_TRENDING_SQL = f"""
SELECT content_id,
       sumIf(w, minute >= toDateTime({{p0:Int64}}, 'UTC')) AS a0,
       sumIf(w, minute >= toDateTime({{p1:Int64}}, 'UTC') AND minute < toDateTime({{p0:Int64}}, 'UTC')) AS a1,
       sumIf(w, minute < toDateTime({{p1:Int64}}, 'UTC')) AS a2,
       sumIf(w * pow(2, (toUnixTimestamp(minute) - {{now:Float64}}) / 60 / {{half_life:Float64}}),
             minute >= toDateTime({{p0:Int64}}, 'UTC')) AS popularity,
       toInt64(toUnixTimestamp64Milli(max(last_event))) AS last_ms
FROM (
    SELECT minute, content_id, last_event, toFloat64(events) * {_WEIGHT} AS w
    FROM realtime_minutes
    WHERE content_id != '' AND minute >= toDateTime({{p2:Int64}}, 'UTC')
      AND event_type IN {sql_list(TREND_WEIGHTS)}
)
GROUP BY content_id
HAVING a0 > 0
"""


def _starts(now: float) -> dict[str, int]:
    minute = int(now // 60) * 60
    return {f"w{size}": minute - (size - 1) * 60 for size in WINDOWS.values()}


def _windows(rows: list[dict[str, Any]], uniques: dict[str, int], unique_key: str = "u") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, size in WINDOWS.items():
        counts = {r["event_type"]: int(r[f"n{size}"]) for r in rows if r[f"n{size}"]}
        metrics: dict[str, Any] = {m: sum(counts.get(t, 0) for t in types) for m, types in METRIC_TYPES.items()}
        metrics["watch_time_seconds"] = round(sum(float(r[f"s{size}"]) for r in rows), 3)
        metrics["events"] = sum(counts.values())
        metrics["by_event_type"] = dict(sorted(counts.items()))
        metrics["unique_users"] = int(uniques[f"{unique_key}{size}"])
        out[name] = metrics
    return out


class RealtimeRollup:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def content_live(self, content_id: str, now: float | None = None) -> dict[str, Any]:
        params = {**_starts(time.time() if now is None else now), "content_id": content_id}
        rows = (await self._store.query(_CONTENT_SQL, params)).dicts()
        uniques = (await self._store.query(_CONTENT_USERS_SQL, params)).dicts()[0]
        last = max((int(r["last_ms"]) for r in rows), default=0)
        return {
            "content_id": content_id,
            "as_of": iso_millis(last),
            "source": "rollup",
            "windows": _windows(rows, uniques),
            "series": [],
        }

    async def realtime(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        params = _starts(now)
        rows = (await self._store.query(_GLOBAL_SQL, params)).dicts()
        uniques = (await self._store.query(_GLOBAL_USERS_SQL, params)).dicts()[0]
        windows = _windows(rows, uniques)
        for name, size in WINDOWS.items():
            windows[name]["unique_sessions"] = int(uniques[f"s{size}"])
        second = int(now)
        rate = (
            await self._store.query(
                _RATE_SQL, {"since_ms": (second - RATE_SECONDS) * 1000 + 999, "until_ms": (second + 1) * 1000}
            )
        ).rows
        recent = int(rate[0][0]) if rate else 0
        return {
            "as_of": iso_millis(max((int(r["last_ms"]) for r in rows), default=0)),
            "events_per_second": round(recent / RATE_SECONDS, 3),
            "events_last_60s": recent,
            "active_users_5m": windows[ACTIVE_WINDOW]["unique_users"],
            "active_sessions_5m": windows[ACTIVE_WINDOW]["unique_sessions"],
            "windows": windows,
            "source": "rollup",
            "computed_at": iso_millis(int(now * 1000)),
        }

    async def trending(
        self,
        window: str,
        limit: int,
        category: str | None = None,
        now: float | None = None,
        scope: ContentScope = ALL_CONTENT,
    ) -> dict[str, Any]:
        """The live ranking (score, then content id) computed from the minute table, of the content in
        ``scope``."""
        now = time.time() if now is None else now
        size = WINDOWS[window]
        minute = int(now // 60) * 60
        params = {
            "p0": minute - (size - 1) * 60,
            "p1": minute - (2 * size - 1) * 60,
            "p2": minute - (3 * size - 1) * 60,
            "now": now,
            "half_life": half_life_minutes(size),
        }
        rows = (await self._store.query(_TRENDING_SQL, params)).dicts()
        categories = await load_categories(self._store)
        if category is not None:
            rows = [r for r in rows if categories.get(r["content_id"]) == category]
        if not scope.unrestricted:
            rows = [r for r in rows if scope.admits(r["content_id"], categories.get(r["content_id"]))]
        ranked = []
        for r in rows:
            r0, r1, r2 = (float(r[k]) / size for k in ("a0", "a1", "a2"))
            popularity = float(r["popularity"])
            ranked.append((-trend_score(popularity, r0, r1), r["content_id"], r, popularity, r0, r1, r2))
        ranked.sort(key=lambda item: (item[0], item[1]))
        items = [
            {
                "rank": rank,
                "content_id": content_id,
                "category": categories.get(content_id),
                "score": -neg_score,
                "popularity": popularity,
                "activity": float(r["a0"]),
                "baseline_per_minute": r1,
                "velocity": r0 - r1,
                "acceleration": r0 - 2 * r1 + r2,
            }
            for rank, (neg_score, content_id, r, popularity, r0, r1, r2) in enumerate(ranked[:limit], start=1)
        ]
        return {
            "window": window,
            "category": category,
            "computed_at": iso_millis(int(now * 1000)),
            "as_of": iso_millis(max((int(r["last_ms"]) for _, _, r, *_ in ranked), default=0)),
            "source": "rollup",
            "items": items,
        }
