"""The live counters one shard holds: per-minute buckets for the last 24 hours, per content and
event type, the global live figures, and the per-content trending statistics.

Pure state, no I/O: the counter shard actor feeds it deltas (and, after a restart, the rows of
ClickHouse's minute table, which have the same shape), and asks it for views. Definitions,
as documented in docs/realtime.md:

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

import bisect
import functools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.taxonomy import (
    CONTENT_BOOKMARK,
    CONTENT_COMPLETE,
    CONTENT_LIKE,
    CONTENT_PLAY,
    CONTENT_SHARE,
    CONTENT_VIEW,
    SEARCH_EVENT_TYPES,
)
from semantic.user_sketch import UserSketch
from storage.realtime_minutes import DETAIL_MINUTES, HISTORY_MINUTES, SECONDS_KEPT

WINDOWS: dict[str, int] = {"5m": 5, "1h": 60, "24h": 1440}
WINDOW_NAMES = tuple(WINDOWS)
_WINDOW_MINUTES = tuple(WINDOWS.values())
RATE_SECONDS = 60
ACTIVE_WINDOW = "5m"

METRIC_TYPES: dict[str, tuple[str, ...]] = {
    "views": (CONTENT_VIEW,),
    "plays": (CONTENT_PLAY,),
    "completions": (CONTENT_COMPLETE,),
    "shares": (CONTENT_SHARE,),
    "bookmarks": (CONTENT_BOOKMARK,),
    "searches": SEARCH_EVENT_TYPES,
}
TREND_WEIGHTS: dict[str, float] = {
    CONTENT_VIEW: 1.0,
    CONTENT_PLAY: 1.0,
    CONTENT_COMPLETE: 3.0,
    CONTENT_BOOKMARK: 3.0,
    CONTENT_SHARE: 5.0,
    CONTENT_LIKE: 2.0,
}
MAX_WATCH_SECONDS = 86_400.0


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
    # Its row in the counters' per-content arrays (trending sums, decayed popularity, last event,
    # version), which apply and trending_table update and read for all contents at once.
    slot: int
    minutes: dict[int, _Bucket] = field(default_factory=dict)
    windows: list[_Window] = field(default_factory=lambda: [_Window() for _ in _WINDOW_MINUTES])
    # Per clock hour (minute // 60), the union of its minutes' users, for hours that are closed and
    # wholly inside the 24h window: rebuilding that window's users then merges ≤ 24 of these.
    hours: dict[int, UserSketch] = field(default_factory=dict)
    activity: dict[int, float] = field(default_factory=dict)


def _iso(millis: int | None) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=4096)
def _minute_iso(minute: int) -> str | None:
    """The ISO time of a minute (minutes since the epoch): every view's series repeats the same 60."""
    return _iso(minute * 60_000)


_METRIC_OF: dict[str, str] = {t: name for name, types in METRIC_TYPES.items() for t in types}
_NO_METRICS: dict[str, int] = dict.fromkeys(METRIC_TYPES, 0)


def _metrics(counts: dict[str, int], watch: float) -> dict[str, Any]:
    out: dict[str, Any] = dict(_NO_METRICS)
    events = 0
    for t, n in counts.items():
        events += n
        name = _METRIC_OF.get(t)
        if name is not None:
            out[name] += n
    out["watch_time_seconds"] = round(watch, 3)
    out["events"] = events
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
        # Per content slot (_Content.slot): _sums[s, w, p] the weighted activity of period p of
        # window w, _acc[s, w] the decayed popularity at the reference minute, the last event and
        # the counters' change number of the last delta row for it (unique across contents: a
        # cached view is valid while it and the minute hold). A freed slot is all zeros.
        self._sums = np.zeros((0, len(_WINDOW_MINUTES), 3), dtype=np.float64)
        self._acc = np.zeros((0, len(_WINDOW_MINUTES)), dtype=np.float64)
        self._last_ms = np.zeros(0, dtype=np.int64)
        self._version = np.zeros(0, dtype=np.int64)
        self._free: list[int] = []
        self._used = 0  # slots ever handed out (the free ones among them are in _free)

    # ---- content slots ---------------------------------------------------------------------
    def _new_content(self, content_id: str) -> _Content:
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._used
            self._used += 1
            if slot >= len(self._version):
                grow = max(64, 2 * len(self._version))
                self._sums = np.concatenate([self._sums, np.zeros((grow, *self._sums.shape[1:]))])
                self._acc = np.concatenate([self._acc, np.zeros((grow, self._acc.shape[1]))])
                self._last_ms = np.concatenate([self._last_ms, np.zeros(grow, np.int64)])
                self._version = np.concatenate([self._version, np.zeros(grow, np.int64)])
        c = self._contents[content_id] = _Content(slot)
        return c

    def _drop_content(self, content_id: str) -> None:
        slot = self._contents.pop(content_id).slot
        self._sums[slot] = 0.0
        self._acc[slot] = 0.0
        self._last_ms[slot] = 0
        self._version[slot] = 0
        self._free.append(slot)

    # ---- feeding -------------------------------------------------------------------------
    def apply(self, rows: pa.Table | None, seconds: pa.Table | None = None, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.advance(now)
        if seconds is not None and seconds.num_rows:
            floor = int(now) - SECONDS_KEPT
            per_second = zip(seconds.column("second").to_pylist(), seconds.column("events").to_pylist(), strict=True)
            for second, events in per_second:
                if second >= floor:
                    self._seconds[second] = self._seconds.get(second, 0) + int(events)
        if rows is None or not rows.num_rows:
            return
        self._apply_rows(rows)

    def _apply_rows(self, rows: pa.Table) -> None:
        """A delta's rows, grouped with numpy before any Python object is touched.

        The result is the same, bit for bit, as applying the rows one by one in their order: each
        float total still gets its additions in row order (``np.add.at`` adds in index order), the
        sketches are order-independent, and dicts get their keys in order of first appearance.
        """
        minutes = _int_column(rows, "minute") // 60
        events = _int_column(rows, "events")
        age = self._minute - minutes
        keep = (age < HISTORY_MINUTES) & (events > 0)
        if not keep.any():
            return
        last_ms = _int_column(rows, "last_event_ms")
        self.last_event_ms = max(self.last_event_ms, int(last_ms[keep].max()))
        watch = _float_column(rows, "watch_seconds")
        types, type_code = _encoded(rows, "event_type")
        users, user_off = _lists(rows, "users")
        detail = keep & (age < DETAIL_MINUTES)
        # ---- the global buckets, per minute
        if detail.any():
            sessions, session_off = _lists(rows, "sessions")
            for minute, at in _groups(minutes, np.flatnonzero(detail)):
                if minute < self._minute:
                    self._closed.clear()  # a late event changed a closed minute
                g = self._global.get(minute)
                if g is None:
                    g = self._global[minute] = _GlobalBucket()
                for t, k in _type_counts(type_code[at], events[at], types):
                    g.counts[t] = g.counts.get(t, 0) + k
                added = watch[at]
                for w in added[added != 0.0].tolist():  # adding 0.0 changes no total: skipped
                    g.watch += w
                g.users.add(_gather(users, user_off, at))
                g.sessions.add(_gather(sessions, session_off, at))
        # ---- the contents
        names, content_code = _encoded(rows, "content_id")
        has_content = np.array([bool(name) for name in names], dtype=bool)
        on = np.flatnonzero(keep & has_content[content_code])
        if not on.size:
            return
        codes = content_code[on]
        slot_of = np.full(len(names), -1, dtype=np.int64)
        touched: list[str] = []
        for code in _first_seen(codes).tolist():  # new contents in order of first appearance
            name = names[code]
            c = self._contents.get(name)
            if c is None:
                c = self._new_content(name)
            slot_of[code] = c.slot
            touched.append(name)
        slots = slot_of[codes]
        self.dirty.update(touched)
        for minute, at in _groups(minutes[on], np.arange(on.size)):
            self._by_minute.setdefault(minute, set()).update(names[code] for code in np.unique(codes[at]).tolist())
        np.maximum.at(self._version, slots, self._changes + np.arange(1, on.size + 1, dtype=np.int64))
        self._changes += int(on.size)
        np.maximum.at(self._last_ms, slots, last_ms[on])
        # Trending: weighted activity per minute, period sums and decayed popularity per window.
        weight = _type_weights(tuple(types))[type_code[on]] * events[on].astype(np.float64)
        weighted = np.flatnonzero(weight != 0.0)
        if weighted.size:
            w_slots, w_weight = slots[weighted], weight[weighted]
            w_minutes, w_age = minutes[on][weighted], age[on][weighted]
            weighted_rows = zip(codes[weighted].tolist(), w_minutes.tolist(), w_weight.tolist(), strict=True)
            for code, minute, value in weighted_rows:
                activity = self._contents[names[code]].activity
                activity[minute] = activity.get(minute, 0.0) + value
            distinct = np.unique(w_minutes).tolist()
            for i, window in enumerate(_WINDOW_MINUTES):
                period = np.minimum(np.maximum(w_age, 0) // window, 3)
                inside = period < 3
                np.add.at(self._sums, (w_slots[inside], i, period[inside]), w_weight[inside])
                recent = w_age < window
                if recent.any():
                    h = half_life_minutes(window)
                    factor = {m: math.pow(2.0, (m - self._ref) / h) for m in distinct}
                    factors = np.array([factor[m] for m in w_minutes[recent].tolist()], dtype=np.float64)
                    np.add.at(self._acc, (w_slots[recent], i), w_weight[recent] * factors)
        # The minute buckets and the windows' running totals, per (content, minute).
        d = np.flatnonzero(age[on] < DETAIL_MINUTES)
        if not d.size:
            return
        rows_on = on[d]
        lo = int(minutes[rows_on].min())
        pair = codes[d] * (int(minutes[rows_on].max()) - lo + 1) + (minutes[rows_on] - lo)
        row_list = rows_on.tolist()
        minute_list = minutes[rows_on].tolist()
        content_list = [self._contents[names[code]] for code in codes[d].tolist()]
        type_list = [types[code] for code in type_code[rows_on].tolist()]
        event_list = events[rows_on].tolist()
        watch_list = watch[rows_on].tolist()
        offsets = user_off.tolist()
        for group in _group_lists(pair):
            j = group[0]
            minute = minute_list[j]
            c = content_list[j]
            b = c.minutes.get(minute)
            new_minute = b is None
            if b is None:
                b = c.minutes[minute] = _Bucket()
            before = b.watch
            if len(group) == 1:
                t, k = type_list[j], event_list[j]
                counts: tuple[tuple[Any, int], ...] = ((t, k),)
                b.counts[t] = b.counts.get(t, 0) + k
                if watch_list[j] != 0.0:
                    b.watch += watch_list[j]
                r = row_list[j]
                hashes = users[offsets[r] : offsets[r + 1]]
            else:
                totals: dict[Any, int] = {}
                for j in group:
                    t = type_list[j]
                    totals[t] = totals.get(t, 0) + event_list[j]
                    if watch_list[j] != 0.0:
                        b.watch += watch_list[j]
                counts = tuple(totals.items())
                for t, k in counts:
                    b.counts[t] = b.counts.get(t, 0) + k
                hashes = _gather(users, user_off, rows_on[group])
            b.users.add(hashes)
            # The windows' watch time moves by exactly what the minute's did (the minute's own
            # total is a float, and that float is what leaves the windows later).
            watch_change = _exact(b.watch) - _exact(before) if b.watch != before else 0
            # The windows are nested: the minute is in those from the first that is longer than its age.
            for w in c.windows[bisect.bisect_right(_WINDOW_MINUTES, self._minute - minute) :]:
                w.minutes += new_minute
                wc = w.counts
                for t, k in counts:
                    wc[t] = wc.get(t, 0) + k
                w.watch += watch_change
                if w.users is not None:
                    w.users.add(hashes)
            if c.hours:
                c.hours.pop(minute // 60, None)  # a late event in a closed hour

    def advance(self, now: float) -> None:
        """Move to the minute of ``now``: buckets change period or leave the windows."""
        new = int(now // 60)
        old = self._minute
        if new <= old:
            return
        for minute in _moving(self._by_minute, old, new):
            a_old, a_new = old - minute, new - minute
            names = self._by_minute[minute]
            moves = []
            for i, window in enumerate(_WINDOW_MINUTES):
                p_old, p_new = _period(a_old, window), _period(a_new, window)
                if p_old != p_new:
                    moves.append((i, window, p_old, p_new, a_old < window <= a_new))
            if moves:
                present = [(name, c) for name in names if (c := self._contents.get(name)) is not None]
                if any(leaves for *_, leaves in moves):
                    self.dirty.update(name for name, _ in present)
                weighted = [(c.slot, w) for _, c in present if (w := c.activity.get(minute, 0.0))]
                if weighted:
                    slots = np.array([s for s, _ in weighted], dtype=np.int64)
                    values = np.array([w for _, w in weighted], dtype=np.float64)
                    # ufunc.at on a view of one (window, period) column updates the arrays themselves.
                    for i, window, p_old, p_new, leaves in moves:
                        if p_old < 3:
                            np.subtract.at(self._sums[:, i, p_old], slots, values)
                        if p_new < 3:
                            np.add.at(self._sums[:, i, p_new], slots, values)
                        if leaves:
                            factor = math.pow(2.0, (minute - self._ref) / half_life_minutes(window))
                            np.subtract.at(self._acc[:, i], slots, values * factor)
            # The minute leaves the content windows it was in: take it out of their totals.
            for i, window in enumerate(_WINDOW_MINUTES):
                if not a_old < window <= a_new:
                    continue
                for name in names:
                    c = self._contents.get(name)
                    b = c.minutes.get(minute) if c is not None else None
                    if c is not None and b is not None:
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
                        self._drop_content(name)
                del self._by_minute[minute]
        # Rebase the decayed accumulators on the new minute so the exponents stay small.
        factors = np.array([math.pow(2.0, -(new - self._ref) / half_life_minutes(w)) for w in _WINDOW_MINUTES])
        acc = self._acc
        self._acc = np.where(acc > 1e-12, np.maximum(0.0, acc * factors), 0.0)
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
    def _trends(self, c: _Content, now: float) -> list[dict[str, float]]:
        """A content's trending figures per window, decayed to ``now``."""
        all_sums = self._sums[c.slot].tolist()
        all_acc = self._acc[c.slot].tolist()
        minutes = (now - self._ref * 60.0) / 60.0
        out = []
        for window, sums, acc in zip(_WINDOW_MINUTES, all_sums, all_acc, strict=True):
            popularity = acc * math.pow(2.0, -minutes / half_life_minutes(window))
            r0, r1, r2 = (s / window for s in sums)
            out.append(
                {
                    "activity": sums[0],
                    "popularity": popularity,
                    "baseline_per_minute": r1,
                    "velocity": r0 - r1,
                    "acceleration": r0 - 2 * r1 + r2,
                    "score": trend_score(popularity, r0, r1),
                }
            )
        return out

    def content_view(
        self, content_id: str, now: float | None = None, *, empty_ok: bool = False, series: bool = True
    ) -> dict[str, Any] | None:
        """A content's figures per window and, unless ``series`` is false, its last hour by minute."""
        now = time.time() if now is None else now
        self.advance(now)
        c = self._contents.get(content_id)
        if c is None:
            return self.empty_view(content_id) if empty_ok else None
        version = int(self._version[c.slot])
        cached = self._views.get(content_id)
        if cached is None or cached[0] != version:
            cached = self._views[content_id] = [version, self._figures(c), None]
        figures = cached[1]
        # Trending decays with the clock, so it is computed at every read (it is cheap).
        windows = {
            name: {**figures[name], "by_event_type": dict(figures[name]["by_event_type"]), "trending": trend}
            for name, trend in zip(WINDOW_NAMES, self._trends(c, now), strict=True)
        }
        view: dict[str, Any] = {"content_id": content_id, "as_of": _iso(int(self._last_ms[c.slot])), "windows": windows}
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
            series.append(
                {
                    "minute": _minute_iso(minute),
                    "events": sum(b.counts.values()) if b else 0,
                    "views": b.counts.get(CONTENT_VIEW, 0) if b else 0,
                }
            )
        return series

    def empty_view(self, content_id: str) -> dict[str, Any]:
        """The view of a content id with nothing in the window: zeros, not an error."""
        zero = {name: 0 for name in METRIC_TYPES} | {
            "watch_time_seconds": 0.0, "events": 0, "by_event_type": {}, "unique_users": 0,
        }  # fmt: skip
        trend = {
            "activity": 0.0, "popularity": 0.0, "baseline_per_minute": 0.0, "velocity": 0.0, "acceleration": 0.0,
            "score": 0.0,
        }  # fmt: skip
        minutes = range(self._minute - 59, self._minute + 1)
        series = [{"minute": _minute_iso(m), "events": 0, "views": 0} for m in minutes]
        windows = {w: {**zero, "trending": dict(trend)} for w in WINDOWS}
        return {"content_id": content_id, "as_of": None, "windows": windows, "series": series}

    def trending_table(self, now: float | None = None) -> pa.Table:
        """Every content with activity in any window: its trending figures per window."""
        now = time.time() if now is None else now
        self.advance(now)
        names = list(self._contents)
        slots = np.fromiter((c.slot for c in self._contents.values()), dtype=np.int64, count=len(names))
        sums, acc = self._sums[slots], self._acc[slots]  # (n, windows, 3), (n, windows)
        active = (sums != 0.0).any(axis=(1, 2)) | (acc != 0.0).any(axis=1)
        if not active.all():
            names = [n for n, a in zip(names, active.tolist(), strict=True) if a]
            slots, sums, acc = slots[active], sums[active], acc[active]
        columns: dict[str, Any] = {"content_id": pa.array(names, pa.string())}
        for i, (label, window) in enumerate(WINDOWS.items()):
            popularity = acc[:, i] * np.power(2.0, -((now - self._ref * 60.0) / 60.0) / half_life_minutes(window))
            r0, r1, r2 = (sums[:, i, p] / window for p in range(3))
            columns[f"activity_{label}"] = sums[:, i, 0]
            columns[f"popularity_{label}"] = popularity
            columns[f"baseline_{label}"] = r1
            columns[f"velocity_{label}"] = r0 - r1
            columns[f"acceleration_{label}"] = r0 - 2 * r1 + r2
            columns[f"score_{label}"] = popularity * (1.0 + np.maximum(0.0, r0 - r1) / (r1 + 1.0))
        columns["last_event_ms"] = pa.array(self._last_ms[slots], pa.int64())
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
        metrics["unique_users"] = UserSketch.union(
            UserSketch.from_wire(p["windows"][name]["users"]) for p in partials
        ).estimate()
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


# ---- grouping a delta's rows with numpy ----------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _type_weights(types: tuple[Any, ...]) -> np.ndarray:
    return np.array([TREND_WEIGHTS.get(t, 0.0) for t in types], dtype=np.float64)


def _column(rows: pa.Table, name: str) -> pa.Array:
    column = rows.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _int_column(rows: pa.Table, name: str) -> np.ndarray:
    """An integer column (a null is 0: a row without events or minute is dropped, as a missing last event)."""
    column = _column(rows, name)
    if column.null_count:
        column = pc.fill_null(column, 0)
    return column.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _float_column(rows: pa.Table, name: str) -> np.ndarray:
    """A float column (a null is 0.0)."""
    column = _column(rows, name)
    if column.null_count:
        column = pc.fill_null(column, 0.0)
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _encoded(rows: pa.Table, name: str) -> tuple[list[Any], np.ndarray]:
    """A text column's distinct values (in order of first appearance) and each row's index into them."""
    encoded = pc.dictionary_encode(_column(rows, name), null_encoding="encode")
    return encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _lists(rows: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column's values (one copy, so sketches holding slices of it keep no Arrow buffer alive)
    and each row's offsets into them (a null list is empty)."""
    column = _column(rows, name)
    if column.null_count:
        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
        offsets = np.zeros(len(column) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
    else:
        offsets = column.offsets.to_numpy().astype(np.int64)
        offsets -= offsets[0]
    values = np.array(column.flatten().to_numpy(zero_copy_only=False), dtype=np.uint64)
    return values, offsets


def _gather(values: np.ndarray, offsets: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The values of the rows ``at``, concatenated."""
    if at.size == 1:
        r = int(at[0])
        return values[offsets[r] : offsets[r + 1]]
    starts = offsets[at]
    lengths = offsets[at + 1] - starts
    total = int(lengths.sum())
    if total == values.size:
        return values
    ends = np.cumsum(lengths)
    index = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
    return values[index]


def _first_seen(keys: np.ndarray) -> np.ndarray:
    """The distinct keys in order of first appearance."""
    uniq, first = np.unique(keys, return_index=True)
    return uniq[np.argsort(first, kind="stable")]


def _groups(keys: np.ndarray, at: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``at`` split by ``keys[at]``: (key, the entries of ``at`` with it, in their order), the groups
    in order of first appearance."""
    k = keys[at]
    if not k.size:
        return []
    uniq, first, inverse, counts = np.unique(k, return_index=True, return_inverse=True, return_counts=True)
    if uniq.size == 1:
        return [(int(uniq[0]), at)]
    order = at[np.argsort(inverse, kind="stable")]
    ends = np.cumsum(counts)
    starts = ends - counts
    keys_list, starts_list, ends_list = uniq.tolist(), starts.tolist(), ends.tolist()
    return [(keys_list[g], order[starts_list[g] : ends_list[g]]) for g in np.argsort(first, kind="stable").tolist()]


def _type_counts(codes: np.ndarray, events: np.ndarray, types: list[Any]) -> list[tuple[Any, int]]:
    """Events per type, the types in order of first appearance."""
    totals: dict[Any, int] = {}
    for code, n in zip(codes.tolist(), events.tolist(), strict=True):
        t = types[code]
        totals[t] = totals.get(t, 0) + n
    return list(totals.items())


def _group_lists(keys: np.ndarray) -> list[list[int]]:
    """The positions of ``keys`` grouped by key: each group in position order, the groups in order of
    first appearance."""
    if keys.size <= 1:
        return [[0]] if keys.size else []
    uniq, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    if uniq.size == keys.size:
        return [[j] for j in range(keys.size)]
    order = np.argsort(inverse, kind="stable").tolist()
    ends = np.cumsum(counts).tolist()
    starts = [e - n for e, n in zip(ends, counts.tolist(), strict=True)]
    return [order[starts[g] : ends[g]] for g in np.argsort(first, kind="stable").tolist()]


def _moving(by_minute: dict[int, set[str]], old: int, new: int) -> list[int]:
    """The minutes (in their order) that change period in some window when the clock moves from minute
    ``old`` to ``new``; nothing happens to the others. A minute leaves the 24h window, the detail and
    the history only as its period there changes."""
    minutes = np.fromiter(by_minute, dtype=np.int64, count=len(by_minute))
    a_old, a_new = old - minutes, new - minutes
    moved = np.zeros(minutes.size, dtype=bool)
    for window in _WINDOW_MINUTES:
        moved |= np.minimum(np.maximum(a_old, 0) // window, 3) != np.minimum(np.maximum(a_new, 0) // window, 3)
    return minutes[moved].tolist()
