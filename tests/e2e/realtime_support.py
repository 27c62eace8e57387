"""Helpers for the real-time tests: events with known answers, and the answers computed here,
independently of the service's code, from the definitions in docs/realtime.md."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

WINDOWS = {"5m": 5, "1h": 60, "24h": 1440}
WEIGHTS = {
    "content_view": 1,
    "content_play": 1,
    "content_complete": 3,
    "content_bookmark": 3,
    "content_share": 5,
    "content_like": 2,
}
METRICS = {
    "views": ("content_view",),
    "plays": ("content_play",),
    "completions": ("content_complete",),
    "shares": ("content_share",),
    "bookmarks": ("content_bookmark",),
    "searches": ("search_query", "search_result_click", "search_filter"),
}


def event(
    event_id: str, event_type: str, content_id: str | None, user: str | None, at: datetime, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": event_id, "event_type": event_type, "timestamp": at.isoformat()}
    if content_id:
        body["content_id"] = content_id
    if user:
        body["user_id"] = user
    body.update(extra)
    return body


def send(client: httpx.Client, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 1000):
        chunk = events[start : start + 1000]
        response = client.post("/api/v1/analytics/events/batch", json={"events": chunk})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(chunk), response.text


def minute_of(value: str | datetime) -> int:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return int(at.timestamp() // 60)


def expected_window(events: list[dict[str, Any]], content_id: str, window: int, now_minute: int) -> dict[str, Any]:
    """Counts of one content in one window: events whose minute is one of the last ``window`` minutes."""
    chosen = [
        e for e in events if e.get("content_id") == content_id and now_minute - minute_of(e["timestamp"]) < window
    ]
    by_type: dict[str, int] = {}
    for e in chosen:
        by_type[e["event_type"]] = by_type.get(e["event_type"], 0) + 1
    out: dict[str, Any] = {name: sum(by_type.get(t, 0) for t in types) for name, types in METRICS.items()}
    out["events"] = len(chosen)
    out["by_event_type"] = by_type
    out["unique_users"] = len({e["user_id"] for e in chosen if e.get("user_id")})
    watch = 0.0
    for e in chosen:
        value = e.get("properties", {}).get("duration_seconds")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            watch += min(max(float(value), 0.0), 86400.0)
    out["watch_time_seconds"] = watch
    return out


def expected_trend(events: list[dict[str, Any]], content_id: str, window: int, now: float) -> dict[str, float]:
    now_minute = int(now // 60)
    periods = [0.0, 0.0, 0.0]
    popularity = 0.0
    for e in events:
        if e.get("content_id") != content_id:
            continue
        w = WEIGHTS.get(e["event_type"], 0)
        m = minute_of(e["timestamp"])
        age = now_minute - m
        if age // window < 3:
            periods[max(age, 0) // window] += w
        if age < window:
            popularity += w * 2 ** (-(now - m * 60) / 60 / (window / 4))
    r0, r1, r2 = (p / window for p in periods)
    return {
        "activity": periods[0],
        "popularity": popularity,
        "baseline_per_minute": r1,
        "velocity": r0 - r1,
        "acceleration": r0 - 2 * r1 + r2,
        "score": popularity * (1 + max(0.0, r0 - r1) / (r1 + 1)),
    }


def poll(fetch: Callable[[], T], ok: Callable[[T], bool], *, timeout: float = 30.0, interval: float = 0.1) -> T:
    """Call ``fetch`` until ``ok`` holds for its result; the last result is returned either way."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = fetch()
    return value


def now_utc() -> datetime:
    return datetime.now(UTC)


def ago(**delta: float) -> datetime:
    return now_utc() - timedelta(**delta)


def window_counts(view: dict[str, Any], window: str) -> dict[str, Any]:
    """The count fields of one window of a content view (what ``expected_window`` computes)."""
    w = view["windows"][window]
    keys = (*METRICS, "events", "by_event_type", "unique_users", "watch_time_seconds")
    return {k: w[k] for k in keys}
