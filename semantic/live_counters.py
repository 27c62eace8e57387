"""The live counters one shard holds: per-minute buckets for the last 24 hours, per content and
event type, the global live figures, and the per-content trending statistics.

Pure state, no I/O: the counter shard actor feeds it deltas (and, after a restart, the rows of
ClickHouse's minute table, which have the same shape), and asks it for views. Definitions,
as documented in the README:

- Windows are whole minutes: ``5m`` is the current minute and the 4 before it, ``1h`` 60
  minutes, ``24h`` 1440 minutes. An event counts in the minute of its own timestamp.
- views/plays/completions/shares/bookmarks count ``content_view``/``content_play``/
  ``content_complete``/``content_share``/``content_bookmark``; searches count the
  ``search_*`` types; watch time sums ``properties.duration_seconds`` (numbers only,
  clamped to 0..86400 s); unique users count distinct ``user_id`` (see user_sketch).
- Trending, per window W: activity is weighted events (``TREND_WEIGHTS``); r0, r1, r2 are
  the activity per minute in the last W, the W before it and the W before that (the item's
  own baseline); velocity = r0 - r1; acceleration = r0 - 2 r1 + r2; popularity is the
  activity of the window decayed with a half-life of W/4; score = popularity x
  (1 + max(0, velocity) / (r1 + 1)).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from semantic.user_sketch import UserSketch

WINDOWS: dict[str, int] = {"5m": 5, "1h": 60, "24h": 1440}
WINDOW_NAMES = tuple(WINDOWS)
_WINDOW_MINUTES = tuple(WINDOWS.values())
DETAIL_MINUTES = 1440
# Trending compares each window with the two before it, so 24h needs 72 h of activity.
HISTORY_MINUTES = 3 * 1440
SECONDS_KEPT = 300
RATE_SECONDS = 60
ACTIVE_WINDOW = "5m"

METRIC_TYPES: dict[str, tuple[str, ...]] = {
    "views": ("content_view",),
    "plays": ("content_play",),
    "completions": ("content_complete",),
    "shares": ("content_share",),
    "bookmarks": ("content_bookmark",),
    "searches": ("search_query", "search_result_click", "search_filter"),
}
TREND_WEIGHTS: dict[str, float] = {
    "content_view": 1.0,
    "content_play": 1.0,
    "content_complete": 3.0,
    "content_bookmark": 3.0,
    "content_share": 5.0,
    "content_like": 2.0,
}
MAX_WATCH_SECONDS = 86_400.0

# The shape of a delta (and of a snapshot read back from ClickHouse): one row per
# (minute, content, event type).
DELTA_SCHEMA = pa.schema(
    [
        ("minute", pa.int64()),  # epoch seconds of the minute start
        ("content_id", pa.string()),
        ("event_type", pa.string()),
        ("events", pa.int64()),
        ("watch_seconds", pa.float64()),
        ("users", pa.list_(pa.uint64())),
        ("sessions", pa.list_(pa.uint64())),
        ("last_event_ms", pa.int64()),
    ]
)
SECONDS_SCHEMA = pa.schema([("second", pa.int64()), ("events", pa.int64())])


def half_life_minutes(window_minutes: int) -> float:
    return window_minutes / 4.0


def trend_score(popularity: float, r0: float, r1: float) -> float:
    return popularity * (1.0 + max(0.0, r0 - r1) / (r1 + 1.0))


def _period(age: int, window: int) -> int:
    """0 = inside the window, 1 and 2 = the windows before it, 3 = older (future minutes count as now)."""
    return 0 if age < 0 else min(age // window, 3)


@dataclass(slots=True)
class _Bucket:
    counts: dict[str, int] = field(default_factory=dict)
    watch: float = 0.0
    users: UserSketch = field(default_factory=UserSketch)


@dataclass(slots=True)
class _GlobalBucket:
    counts: dict[str, int] = field(default_factory=dict)
    watch: float = 0.0
    users: UserSketch = field(default_factory=UserSketch)
    sessions: UserSketch = field(default_factory=UserSketch)


# Watch time is summed exactly across a window's minutes: as an integer count of the smallest
# double (2**-1074), so adding a minute and taking it away again leaves no rounding behind.
_WATCH_SCALE = 1 << 1074


def _exact(seconds: float) -> int:
    numerator, denominator = seconds.as_integer_ratio()
    return numerator * (_WATCH_SCALE // denominator)


def _watch_of(exact: int) -> float:
    return exact / _WATCH_SCALE  # correctly rounded


@dataclass(slots=True)
class _Window:
    """The running totals of one window of one content: its minutes, counts, exact watch time and
    users. Kept up to date as deltas come in and minutes leave, so a view never walks the minutes."""

    minutes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    watch: int = 0
    # The union of its minutes' users; None once a minute left (rebuilt at the next view).
    users: UserSketch | None = field(default_factory=UserSketch)


@dataclass(slots=True)
class _Content:
    minutes: dict[int, _Bucket] = field(default_factory=dict)
    windows: list[_Window] = field(default_factory=lambda: [_Window() for _ in _WINDOW_MINUTES])
    # Per clock hour (minute // 60), the union of its minutes' users, for hours that are closed and
    # wholly inside the 24h window: rebuilding that window's users then merges ≤ 24 of these.
    hours: dict[int, UserSketch] = field(default_factory=dict)
    activity: dict[int, float] = field(default_factory=dict)
    # sums[w][p]: weighted activity of period p of window w; acc[w]: decayed popularity at the reference minute.
    sums: list[list[float]] = field(default_factory=lambda: [[0.0, 0.0, 0.0] for _ in _WINDOW_MINUTES])
    acc: list[float] = field(default_factory=lambda: [0.0 for _ in _WINDOW_MINUTES])
    last_event_ms: int = 0
    # The counters' change number of the last delta row for this content (unique across contents):
    # a cached view is valid while it and the minute hold.
    version: int = 0


def _iso(millis: int | None) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=4096)
def _minute_iso(minute: int) -> str | None:
    """The ISO time of a minute (minutes since the epoch): every view's series repeats the same 60."""
    return _iso(minute * 60_000)


def _metrics(counts: dict[str, int], watch: float) -> dict[str, Any]:
    out: dict[str, Any] = {name: sum(counts.get(t, 0) for t in types) for name, types in METRIC_TYPES.items()}
    out["watch_time_seconds"] = round(watch, 3)
    out["events"] = sum(counts.values())
    out["by_event_type"] = dict(sorted(counts.items()))
    return out


class LiveCounters:
    def __init__(self, now: float | None = None) -> None:
        self._minute = int((time.time() if now is None else now) // 60)
        self._ref = self._minute  # reference minute of the decayed accumulators
        self._contents: dict[str, _Content] = {}
        self._by_minute: dict[int, set[str]] = {}
        self._global: dict[int, _GlobalBucket] = {}
        # Per window, the merged global buckets of its closed minutes (valid for the current minute).
        self._closed: dict[str, _GlobalBucket] = {}
        self._seconds: dict[int, int] = {}
        self.last_event_ms = 0
        self.dirty: set[str] = set()
        # content id -> [version, window figures without trending, series or None until a read
        # asks for it]: reads, Redis flushes and hub ticks of an unchanged content share one
        # computation. Emptied each minute.
        self._views: dict[str, list[Any]] = {}
        self._changes = 0

    # ---- feeding -------------------------------------------------------------------------
    def apply(self, rows: pa.Table | None, seconds: pa.Table | None = None, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.advance(now)
        if seconds is not None and seconds.num_rows:
            floor = int(now) - SECONDS_KEPT
            for second, events in zip(seconds.column("second").to_pylist(), seconds.column("events").to_pylist(), strict=True):
                if second >= floor:
                    self._seconds[second] = self._seconds.get(second, 0) + int(events)
        if rows is None or not rows.num_rows:
            return
        data = rows.to_pydict()
        for minute_s, content_id, event_type, events, watch, users, sessions, last_ms in zip(
            data["minute"], data["content_id"], data["event_type"], data["events"], data["watch_seconds"],
            data["users"], data["sessions"], data["last_event_ms"], strict=True,
        ):
            self._apply_row(int(minute_s) // 60, content_id, event_type, int(events), float(watch or 0.0),
                            users or (), sessions or (), int(last_ms or 0))

    def _apply_row(self, minute: int, content_id: str, event_type: str, events: int, watch: float,
                   users: Iterable[int], sessions: Iterable[int], last_ms: int) -> None:
        age = self._minute - minute
        if age >= HISTORY_MINUTES or events <= 0:
            return
        user_hashes = np.fromiter(users, dtype=np.uint64)
        if age < DETAIL_MINUTES:
            if minute < self._minute:
                self._closed.clear()  # a late event changed a closed minute
            g = self._global.get(minute)
            if g is None:
                g = self._global[minute] = _GlobalBucket()
            g.counts[event_type] = g.counts.get(event_type, 0) + events
            g.watch += watch
            g.users.add(user_hashes)
            g.sessions.add(np.fromiter(sessions, dtype=np.uint64))
        self.last_event_ms = max(self.last_event_ms, last_ms)
        if not content_id:
            return
        c = self._contents.get(content_id)
        if c is None:
            c = self._contents[content_id] = _Content()
        self._by_minute.setdefault(minute, set()).add(content_id)
        self._changes += 1
        c.version = self._changes
        c.last_event_ms = max(c.last_event_ms, last_ms)
        self.dirty.add(content_id)
        weight = TREND_WEIGHTS.get(event_type, 0.0) * events
        if weight:
            c.activity[minute] = c.activity.get(minute, 0.0) + weight
            for i, window in enumerate(_WINDOW_MINUTES):
                p = _period(age, window)
                if p < 3:
                    c.sums[i][p] += weight
                if age < window:
                    c.acc[i] += weight * math.pow(2.0, (minute - self._ref) / half_life_minutes(window))
        if age < DETAIL_MINUTES:
            b = c.minutes.get(minute)
            new_minute = b is None
            if b is None:
                b = c.minutes[minute] = _Bucket()
            b.counts[event_type] = b.counts.get(event_type, 0) + events
            before = b.watch
            b.watch += watch
            b.users.add(user_hashes)
            # The windows' watch time moves by exactly what the minute's did (the minute's own
            # total is a float, and that float is what leaves the windows later).
            watch_change = _exact(b.watch) - _exact(before) if b.watch != before else 0
            for i, window in enumerate(_WINDOW_MINUTES):
                if age < window:
                    w = c.windows[i]
                    w.minutes += new_minute
                    w.counts[event_type] = w.counts.get(event_type, 0) + events
                    w.watch += watch_change
                    if w.users is not None:
                        w.users.add(user_hashes)
            if c.hours:
                c.hours.pop(minute // 60, None)  # a late event in a closed hour

    def advance(self, now: float) -> None:
        """Move to the minute of ``now``: buckets change period or leave the windows."""
        new = int(now // 60)
        old = self._minute
        if new <= old:
            return
        for minute in list(self._by_minute):
            a_old, a_new = old - minute, new - minute
            names = self._by_minute[minute]
            for i, window in enumerate(_WINDOW_MINUTES):
                p_old, p_new = _period(a_old, window), _period(a_new, window)
                if p_old == p_new:
                    continue
                leaves = a_old < window <= a_new
                h = half_life_minutes(window)
                for name in names:
                    c = self._contents.get(name)
                    if c is None:
                        continue
                    if leaves:
                        self.dirty.add(name)
                    w = c.activity.get(minute, 0.0)
                    if not w:
                        continue
                    if p_old < 3:
                        c.sums[i][p_old] -= w
                    if p_new < 3:
                        c.sums[i][p_new] += w
                    if leaves:
                        c.acc[i] -= w * math.pow(2.0, (minute - self._ref) / h)
            # The minute leaves the content windows it was in: take it out of their totals.
            for i, window in enumerate(_WINDOW_MINUTES):
                if not a_old < window <= a_new:
                    continue
                for name in names:
                    c = self._contents.get(name)
                    b = c.minutes.get(minute) if c is not None else None
                    if b is not None:
                        _leave(c.windows[i], b)
                        if window == DETAIL_MINUTES:
                            c.hours.pop(minute // 60, None)
            if a_new >= DETAIL_MINUTES:
                for name in names:
                    c = self._contents.get(name)
                    if c is not None:
                        c.minutes.pop(minute, None)
            if a_new >= HISTORY_MINUTES:
                for name in names:
                    c = self._contents.get(name)
                    if c is None:
                        continue
                    c.activity.pop(minute, None)
                    if not c.activity and not c.minutes:
                        del self._contents[name]
                del self._by_minute[minute]
        # Rebase the decayed accumulators on the new minute so the exponents stay small.
        factors = [math.pow(2.0, -(new - self._ref) / half_life_minutes(w)) for w in _WINDOW_MINUTES]
        for c in self._contents.values():
            c.acc = [max(0.0, a * f) if a > 1e-12 else 0.0 for a, f in zip(c.acc, factors, strict=True)]
        self._ref = new
        self._minute = new
        self._closed.clear()
        self._views.clear()
        for minute in [m for m in self._global if new - m >= DETAIL_MINUTES]:
            del self._global[minute]
        floor = int(now) - SECONDS_KEPT
        for second in [s for s in self._seconds if s < floor]:
            del self._seconds[second]

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def content_ids(self) -> list[str]:
        return list(self._contents)

    # ---- views ---------------------------------------------------------------------------
    def _trend(self, c: _Content, i: int, now: float) -> dict[str, float]:
        window = _WINDOW_MINUTES[i]
        popularity = c.acc[i] * math.pow(2.0, -((now - self._ref * 60.0) / 60.0) / half_life_minutes(window))
        r0, r1, r2 = (s / window for s in c.sums[i])
        return {
            "activity": c.sums[i][0],
            "popularity": popularity,
            "baseline_per_minute": r1,
            "velocity": r0 - r1,
            "acceleration": r0 - 2 * r1 + r2,
            "score": trend_score(popularity, r0, r1),
        }

    def content_view(self, content_id: str, now: float | None = None, *, empty_ok: bool = False,
                     series: bool = True) -> dict[str, Any] | None:
        """A content's figures per window and, unless ``series`` is false, its last hour by minute."""
        now = time.time() if now is None else now
        self.advance(now)
        c = self._contents.get(content_id)
        if c is None:
            return self.empty_view(content_id) if empty_ok else None
        cached = self._views.get(content_id)
        if cached is None or cached[0] != c.version:
            cached = self._views[content_id] = [c.version, self._figures(c), None]
        figures = cached[1]
        # Trending decays with the clock, so it is computed at every read (it is cheap).
        windows = {
            name: {**figures[name], "by_event_type": dict(figures[name]["by_event_type"]), "trending": self._trend(c, i, now)}
            for i, name in enumerate(WINDOWS)
        }
        view = {"content_id": content_id, "as_of": _iso(c.last_event_ms), "windows": windows}
        if series:
            if cached[2] is None:
                cached[2] = self._series(c)
            view["series"] = [dict(p) for p in cached[2]]
        return view

    def _figures(self, c: _Content) -> dict[str, dict[str, Any]]:
        """A content's counts per window, as of the current minute, from the windows' running totals."""
        figures: dict[str, dict[str, Any]] = {}
        previous: _Window | None = None
        for i, name in enumerate(WINDOWS):
            w = c.windows[i]
            if previous is not None and w.minutes == previous.minutes:
                # The windows are nested, so one with as many minutes as the one inside it holds the same.
                figures[name] = figures[WINDOW_NAMES[i - 1]]
                continue
            metrics = _metrics(w.counts, _watch_of(w.watch))
            if w.users is None:
                w.users = self._window_users(c, _WINDOW_MINUTES[i])
            metrics["unique_users"] = w.users.estimate()
            figures[name] = metrics
            previous = w
        return figures

    def _window_users(self, c: _Content, window: int) -> UserSketch:
        """The union of the users of a content's minutes in a window (after a minute left it)."""
        after = self._minute - window  # the window holds the minutes after this one
        if window <= 60:
            return UserSketch.union([b.users for m, b in c.minutes.items() if m > after])
        # Whole closed hours inside the window merge as one cached sketch each.
        parts: list[UserSketch] = []
        hours: dict[int, list[UserSketch]] = {}
        for m, b in c.minutes.items():
            if m <= after:
                continue
            h = m // 60
            if h * 60 > after and h * 60 + 59 < self._minute:
                hours.setdefault(h, []).append(b.users)
            else:
                parts.append(b.users)
        for h, users in hours.items():
            sketch = c.hours.get(h)
            if sketch is None:
                sketch = c.hours[h] = UserSketch.union(users)
            parts.append(sketch)
        return UserSketch.union(parts)

    def _series(self, c: _Content) -> list[dict[str, Any]]:
        """A content's last hour by minute."""
        series = []
        for minute in range(self._minute - 59, self._minute + 1):
            b = c.minutes.get(minute)
            series.append({
                "minute": _minute_iso(minute),
                "events": sum(b.counts.values()) if b else 0,
                "views": b.counts.get("content_view", 0) if b else 0,
            })
        return series

    def empty_view(self, content_id: str) -> dict[str, Any]:
        """The view of a content id with nothing in the window: zeros, not an error."""
        zero = {name: 0 for name in METRIC_TYPES} | {"watch_time_seconds": 0.0, "events": 0, "by_event_type": {}, "unique_users": 0}
        trend = {"activity": 0.0, "popularity": 0.0, "baseline_per_minute": 0.0, "velocity": 0.0, "acceleration": 0.0, "score": 0.0}
        series = [{"minute": _minute_iso(m), "events": 0, "views": 0} for m in range(self._minute - 59, self._minute + 1)]
        return {"content_id": content_id, "as_of": None, "windows": {w: {**zero, "trending": dict(trend)} for w in WINDOWS}, "series": series}

    def trending_table(self, now: float | None = None) -> pa.Table:
        """Every content with activity in any window: its trending figures per window."""
        now = time.time() if now is None else now
        self.advance(now)
        names = [n for n, c in self._contents.items() if any(any(row) for row in c.sums) or any(c.acc)]
        columns: dict[str, Any] = {"content_id": pa.array(names, pa.string())}
        if names:
            sums = np.array([self._contents[n].sums for n in names], dtype=np.float64)  # (n, windows, 3)
            acc = np.array([self._contents[n].acc for n in names], dtype=np.float64)
        else:
            sums = np.zeros((0, len(_WINDOW_MINUTES), 3))
            acc = np.zeros((0, len(_WINDOW_MINUTES)))
        for i, (label, window) in enumerate(WINDOWS.items()):
            popularity = acc[:, i] * np.power(2.0, -((now - self._ref * 60.0) / 60.0) / half_life_minutes(window))
            r0, r1, r2 = (sums[:, i, p] / window for p in range(3))
            columns[f"activity_{label}"] = sums[:, i, 0]
            columns[f"popularity_{label}"] = popularity
            columns[f"baseline_{label}"] = r1
            columns[f"velocity_{label}"] = r0 - r1
            columns[f"acceleration_{label}"] = r0 - 2 * r1 + r2
            columns[f"score_{label}"] = popularity * (1.0 + np.maximum(0.0, r0 - r1) / (r1 + 1.0))
        columns["last_event_ms"] = pa.array([self._contents[n].last_event_ms for n in names], pa.int64())
        return pa.table(columns)

    def global_partial(self, now: float | None = None) -> dict[str, Any]:
        """This shard's share of the global figures, merged across shards by ``merge_global``."""
        now = time.time() if now is None else now
        self.advance(now)
        windows: dict[str, Any] = {}
        open_minutes = [g for m, g in self._global.items() if m >= self._minute]
        for name, window in WINDOWS.items():
            closed = self._closed.get(name)
            if closed is None:
                closed = self._closed[name] = _merge_buckets(
                    g for m, g in self._global.items() if m < self._minute and self._minute - m < window
                )
            merged = _merge_buckets([closed, *open_minutes])
            windows[name] = {
                "counts": merged.counts,
                "watch": merged.watch,
                "users": merged.users.to_wire(),
                "sessions": merged.sessions.to_wire(),
            }
        # The last 60 whole seconds, the current one included.
        start = int(now) - RATE_SECONDS
        recent = sum(n for s, n in self._seconds.items() if start < s <= int(now))
        return {"windows": windows, "events_last_60s": recent, "last_event_ms": self.last_event_ms}


def _leave(w: _Window, b: _Bucket) -> None:
    """Take a minute out of a window's totals."""
    w.minutes -= 1
    for t, n in b.counts.items():
        left = w.counts[t] - n
        if left:
            w.counts[t] = left
        else:
            del w.counts[t]
    w.watch -= _exact(b.watch)
    w.users = None


def _merge_buckets(buckets: Iterable[_GlobalBucket]) -> _GlobalBucket:
    items = list(buckets)
    counts: dict[str, int] = {}
    watch = 0.0
    for g in items:
        for t, n in g.counts.items():
            counts[t] = counts.get(t, 0) + n
        watch += g.watch
    return _GlobalBucket(
        counts=counts,
        watch=watch,
        users=UserSketch.union(g.users for g in items),
        sessions=UserSketch.union(g.sessions for g in items),
    )


def merge_global(partials: list[dict[str, Any]]) -> dict[str, Any]:
    """The global live metrics from every shard's partial."""
    windows: dict[str, Any] = {}
    for name in WINDOWS:
        counts: dict[str, int] = {}
        watch = 0.0
        for p in partials:
            w = p["windows"][name]
            for t, n in w["counts"].items():
                counts[t] = counts.get(t, 0) + n
            watch += w["watch"]
        metrics = _metrics(counts, watch)
        metrics["unique_users"] = UserSketch.union(UserSketch.from_wire(p["windows"][name]["users"]) for p in partials).estimate()
        metrics["unique_sessions"] = UserSketch.union(
            UserSketch.from_wire(p["windows"][name]["sessions"]) for p in partials
        ).estimate()
        windows[name] = metrics
    recent = sum(p["events_last_60s"] for p in partials)
    last = max((p["last_event_ms"] for p in partials), default=0)
    return {
        "as_of": _iso(last),
        "events_per_second": round(recent / RATE_SECONDS, 3),
        "events_last_60s": recent,
        "active_users_5m": windows[ACTIVE_WINDOW]["unique_users"],
        "active_sessions_5m": windows[ACTIVE_WINDOW]["unique_sessions"],
        "windows": windows,
    }


def iso_millis(millis: int | None) -> str | None:
    return _iso(millis)
