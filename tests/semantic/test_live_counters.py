"""The live counters on a fixed clock: windows, periods, decay, expiry and the global figures."""

import math
import random

import pyarrow as pa
import pytest

from semantic.live_counters import LiveCounters, _watch_of, merge_global
from semantic.user_sketch import UserSketch
from storage.realtime_minutes import DELTA_SCHEMA, SECONDS_SCHEMA

T0 = 1_800_000_000 - (1_800_000_000 % 60)  # a minute start


def rows(*items: tuple[int, str, str, int, list[int]]) -> pa.Table:
    """(minute start seconds, content, type, events, users)"""
    return pa.table(
        {
            "minute": [i[0] for i in items],
            "content_id": [i[1] for i in items],
            "event_type": [i[2] for i in items],
            "events": [i[3] for i in items],
            "watch_seconds": [0.0 for _ in items],
            "users": [i[4] for i in items],
            "sessions": [[1] for _ in items],
            "last_event_ms": [i[0] * 1000 + 1 for i in items],
        },
        schema=DELTA_SCHEMA,
    )


def test_windows_and_trending_over_time():
    c = LiveCounters(now=T0 + 10)
    c.apply(
        rows(
            (T0, "a", "content_view", 4, [1, 2]),
            (T0 - 3 * 60, "a", "content_share", 1, [3]),
            (T0 - 70 * 60, "a", "content_view", 6, [4]),
        ),
        now=T0 + 10,
    )
    view = c.content_view("a", now=T0 + 10)
    assert view["windows"]["5m"]["views"] == 4 and view["windows"]["5m"]["shares"] == 1
    assert view["windows"]["5m"]["unique_users"] == 3
    assert view["windows"]["1h"]["views"] == 4
    assert view["windows"]["24h"]["views"] == 10
    trend = view["windows"]["1h"]["trending"]
    assert trend["activity"] == 9.0  # 4 views + 1 share x 5
    assert trend["baseline_per_minute"] == pytest.approx(6 / 60)
    assert trend["velocity"] == pytest.approx(9 / 60 - 6 / 60)
    expected_pop = 4 * 2 ** (-(10 / 60) / 15) + 5 * 2 ** (-(190 / 60) / 15)
    assert trend["popularity"] == pytest.approx(expected_pop, rel=1e-9)

    # Four minutes later the share (minute T0-3) has left the 5m window, the views have not.
    later = T0 + 4 * 60 + 5
    view = c.content_view("a", now=later)
    assert view["windows"]["5m"]["shares"] == 0 and view["windows"]["5m"]["views"] == 4
    t5 = view["windows"]["5m"]["trending"]
    assert t5["activity"] == 4.0
    assert t5["baseline_per_minute"] == pytest.approx(5 / 5)  # the share moved to the previous period
    assert t5["popularity"] == pytest.approx(4 * 2 ** (-(later - T0) / 60 / 1.25), rel=1e-9)

    # After a day only the trending history is left; after three days nothing.
    assert c.content_view("a", now=T0 + 1440 * 60)["windows"]["24h"]["views"] == 0
    assert c.content_view("a", now=T0 + 3 * 1440 * 60 + 60) is None


def test_trending_table_matches_content_view():
    c = LiveCounters(now=T0)
    c.apply(
        rows(
            (T0, "a", "content_view", 3, [1]), (T0, "b", "content_complete", 2, [2]), (T0, "", "search_query", 5, [9])
        ),
        now=T0,
    )
    table = c.trending_table(now=T0 + 30).to_pylist()
    by_id = {r["content_id"]: r for r in table}
    assert set(by_id) == {"a", "b"}
    assert by_id["b"]["activity_5m"] == 6.0
    assert by_id["a"]["score_1h"] == pytest.approx(
        c.content_view("a", now=T0 + 30)["windows"]["1h"]["trending"]["score"]
    )
    assert math.isclose(by_id["a"]["popularity_24h"], 3 * 2 ** (-(30 / 60) / 360))


def test_global_figures_merge_shards():
    a, b = LiveCounters(now=T0), LiveCounters(now=T0)
    a.apply(
        rows((T0, "x", "content_view", 2, [1, 2])),
        pa.table({"second": [T0 + 5], "events": [2]}, schema=SECONDS_SCHEMA),
        now=T0 + 6,
    )
    b.apply(
        rows((T0, "y", "search_query", 3, [2, 3])),
        pa.table({"second": [T0 + 6], "events": [3]}, schema=SECONDS_SCHEMA),
        now=T0 + 6,
    )
    merged = merge_global([a.global_partial(now=T0 + 6), b.global_partial(now=T0 + 6)])
    assert merged["active_users_5m"] == 3  # users 1, 2, 3: user 2 in both shards
    assert merged["events_last_60s"] == 5
    assert merged["events_per_second"] == pytest.approx(5 / 60, abs=1e-3)
    assert merged["windows"]["24h"]["views"] == 2 and merged["windows"]["24h"]["searches"] == 3
    assert merged["as_of"].startswith("2027-01-15T08:00:00.001")


def test_views_follow_every_change_though_they_are_cached():
    c = LiveCounters(now=T0 + 10)
    c.apply(rows((T0, "a", "content_view", 2, [1]), (T0, "b", "content_view", 1, [9])), now=T0 + 10)
    first = c.content_view("a", now=T0 + 10)
    # Read again unchanged: the same figures; trending decays with the clock even within the minute.
    again = c.content_view("a", now=T0 + 40)
    assert again["windows"]["5m"] | {"trending": None} == first["windows"]["5m"] | {"trending": None}
    assert again["windows"]["5m"]["trending"]["popularity"] < first["windows"]["5m"]["trending"]["popularity"]
    # A caller changing what it got does not change the next answer.
    again["windows"]["5m"]["by_event_type"]["content_view"] = 99
    again["series"][-1]["views"] = 99
    # A delta for "b" leaves "a" as it was; one for "a" shows at once, in the same minute.
    c.apply(rows((T0, "b", "content_view", 5, [8])), now=T0 + 41)
    assert c.content_view("a", now=T0 + 42)["windows"]["5m"]["by_event_type"] == {"content_view": 2}
    c.apply(rows((T0, "a", "content_view", 3, [2, 3])), now=T0 + 43)
    latest = c.content_view("a", now=T0 + 44)
    assert latest["windows"]["5m"]["views"] == 5 and latest["windows"]["5m"]["unique_users"] == 3
    assert latest["series"][-1]["views"] == 5
    # The next minute moves the windows: the last hour's series shifts by one.
    assert c.content_view("a", now=T0 + 61)["series"][-2]["views"] == 5


# ---- the windows' running totals against a from-scratch computation ---------------------------

WINDOW_LENGTHS = {"5m": 5, "1h": 60, "24h": 1440}
TYPES = ("content_view", "content_play", "content_complete", "content_share", "search_query", "content_like")


def _from_scratch(applied: list[tuple], content: str, minute_now: int) -> dict[str, dict]:
    """Each window's figures straight from every row ever applied (no running totals)."""
    out = {}
    for name, length in WINDOW_LENGTHS.items():
        counts: dict[str, int] = {}
        buckets: dict[int, float] = {}  # per minute, the watch time summed in arrival order
        users: list[int] = []
        for minute, c, event_type, events, watch, hashes in applied:
            if c != content or not minute_now - minute < length:
                continue
            counts[event_type] = counts.get(event_type, 0) + events
            buckets[minute] = buckets.get(minute, 0.0) + watch
            users.extend(hashes)
        out[name] = {
            "minutes": len(buckets),
            "by_event_type": dict(sorted(counts.items())),
            "events": sum(counts.values()),
            "views": counts.get("content_view", 0),
            "shares": counts.get("content_share", 0),
            "searches": counts.get("search_query", 0),
            "watch": math.fsum(buckets.values()),
            "unique_users": UserSketch.of(users).estimate() if users else 0,
        }
    return out


def _walk_minutes(c: LiveCounters, content: str) -> dict[str, dict]:
    """Each window's figures by walking the content's minutes, as views were built before the totals."""
    state = c._contents[content]
    out = {}
    for name, length in WINDOW_LENGTHS.items():
        inside = [b for m, b in state.minutes.items() if c._minute - m < length]
        counts: dict[str, int] = {}
        for b in inside:
            for t, n in b.counts.items():
                counts[t] = counts.get(t, 0) + n
        out[name] = {
            "by_event_type": dict(sorted(counts.items())),
            "watch": math.fsum(b.watch for b in inside),
            "unique_users": UserSketch.union([b.users for b in inside]).estimate() if inside else 0,
        }
    return out


def _check(c: LiveCounters, applied: list[tuple], contents: list[str], now: float) -> None:
    minute_now = int(now // 60)
    for content in contents:
        view = c.content_view(content, now=now)
        want = _from_scratch(applied, content, minute_now)
        if view is None:
            # Gone only once nothing of it is left in any window.
            assert all(w["events"] == 0 for w in want.values()), content
            continue
        state = c._contents[content]
        walked = _walk_minutes(c, content)
        for i, (name, w) in enumerate(want.items()):
            got = view["windows"][name]
            totals = state.windows[i]
            assert totals.minutes == w["minutes"], (name, content)
            assert totals.counts == {t: n for t, n in w["by_event_type"].items()}, (name, content)
            assert _watch_of(totals.watch) == w["watch"] == walked[name]["watch"], (name, content)
            assert got["by_event_type"] == w["by_event_type"] == walked[name]["by_event_type"], (name, content)
            for field in ("events", "views", "shares", "searches", "unique_users"):
                assert got[field] == w[field], (name, content, field)
            assert got["unique_users"] == walked[name]["unique_users"]
            assert got["watch_time_seconds"] == round(w["watch"], 3)
        # What a Redis flush builds is the same view without the series.
        assert c.content_view(content, now=now, series=False) == {k: v for k, v in view.items() if k != "series"}


@pytest.mark.parametrize("seed", range(6))
def test_running_totals_match_a_computation_from_scratch(seed):
    """Random deltas (late, future and too old ones among them) and clock moves, minutes ageing out
    of every window (the 24h one too, in steps and in jumps): the totals never drift."""
    rng = random.Random(seed)
    contents = [f"c{i}" for i in range(4)]
    now = float(T0)
    c = LiveCounters(now=now)
    applied: list[tuple] = []
    for _step in range(160):
        minute_now = int(now // 60)
        batch = []
        for _ in range(rng.randint(0, 6)):
            # Mostly the current minute; some late (up to past the 24 h detail), a few a minute ahead.
            age = rng.choice([0, 0, 0, 1, 2, rng.randint(0, 70), rng.randint(0, 1500), -1])
            minute = minute_now - age
            many = rng.random() < 0.05  # now and then enough users to make the sketches dense
            hashes = [rng.getrandbits(64) for _ in range(rng.randint(2100, 2600) if many else rng.randint(0, 4))]
            hashes += [rng.randint(1, 50) for _ in range(rng.randint(0, 3))]  # repeat users
            row = (
                minute,
                rng.choice(contents),
                rng.choice(TYPES),
                rng.randint(1, 5),
                rng.choice([0.0, round(rng.uniform(0, 500), rng.randint(0, 6)), rng.random() / 3]),
                hashes,
            )
            batch.append(row)
            if age < 1440:  # what the counters keep in detail
                applied.append(row)
        if batch:
            table = pa.table(
                {
                    "minute": [r[0] * 60 for r in batch],
                    "content_id": [r[1] for r in batch],
                    "event_type": [r[2] for r in batch],
                    "events": [r[3] for r in batch],
                    "watch_seconds": [r[4] for r in batch],
                    "users": [r[5] for r in batch],
                    "sessions": [[1] for _ in batch],
                    "last_event_ms": [r[0] * 60_000 for r in batch],
                },
                schema=DELTA_SCHEMA,
            )
            c.apply(table, now=now)
        if rng.random() < 0.5:
            _check(c, applied, contents, now)
        # Move the clock: within the minute, a minute or a few, an hour, or most of (or past) a day.
        now += rng.choice([0, 20, 60, 60, 180, 3600, rng.randint(1, 1500) * 60, rng.randint(1380, 1500) * 60])
    _check(c, applied, contents, now)
    # A day and more later every window is empty, with nothing left over in the totals.
    now += 1441 * 60
    c.advance(now)
    for state in c._contents.values():
        for totals in state.windows:
            assert (totals.minutes, totals.counts, totals.watch) == (0, {}, 0)
        assert state.hours == {}


def test_late_event_in_a_closed_hour_reaches_the_24h_users():
    """Rebuilding the 24h users merges whole closed hours from a cache; a late event in such an hour
    must reach the next rebuild."""
    c = LiveCounters(now=T0)  # T0 starts an hour
    c.apply(rows((T0, "a", "content_view", 1, [100]), (T0 + 60, "a", "content_view", 1, [101])), now=T0 + 60)
    for h in range(1, 5):
        c.apply(rows((T0 + h * 3600, "a", "content_view", 1, [200 + h])), now=T0 + h * 3600)
    # The minute of T0 leaves the 24h window: its users are rebuilt, hours 1-4 from the cache.
    now = T0 + 86400 + 10
    assert c.content_view("a", now=now)["windows"]["24h"]["unique_users"] == 5
    assert set(c._contents["a"].hours) == {T0 // 3600 + h for h in range(1, 5)}
    c.apply(rows((T0 + 2 * 3600 + 600, "a", "content_view", 1, [999])), now=now)  # late, in hour 2
    assert c.content_view("a", now=now)["windows"]["24h"]["unique_users"] == 6
    # The next minute (user 101) leaves: rebuilt again, with the late user.
    assert c.content_view("a", now=now + 60)["windows"]["24h"]["unique_users"] == 5
    # Each hour leaves the cache with its first minute that leaves the window.
    assert c.content_view("a", now=T0 + 86400 + 3600 + 10)["windows"]["24h"]["unique_users"] == 4
    assert set(c._contents["a"].hours) == {T0 // 3600 + h for h in range(2, 5)}


# ---- a delta is applied with numpy, whole: the same, bit for bit, as its rows one at a time ----


def _table(batch: list[dict]) -> pa.Table:
    table = pa.Table.from_pylist(batch, schema=DELTA_SCHEMA)
    if table.num_rows > 2:  # as several chunks, as a concatenation of deltas would be
        table = pa.concat_tables([table.slice(0, table.num_rows // 2), table.slice(table.num_rows // 2)])
    return table


def _same(whole: LiveCounters, by_row: LiveCounters, contents: list[str], now: float) -> None:
    assert whole.content_ids() == by_row.content_ids()
    for content in contents:
        # repr compares floats bit for bit (and tells 0.0 from -0.0).
        assert repr(whole.content_view(content, now=now)) == repr(by_row.content_view(content, now=now)), content
    assert repr(whole.trending_table(now=now).to_pylist()) == repr(by_row.trending_table(now=now).to_pylist())
    assert repr(whole.global_partial(now=now)) == repr(by_row.global_partial(now=now))
    assert whole.take_dirty() == by_row.take_dirty()
    assert whole.last_event_ms == by_row.last_event_ms
    for content, state in whole._contents.items():
        other = by_row._contents[content]
        assert list(state.minutes) == list(other.minutes)
        for minute, b in state.minutes.items():
            assert (b.counts, repr(b.watch)) == (other.minutes[minute].counts, repr(other.minutes[minute].watch))
        assert repr(state.activity) == repr(other.activity)


@pytest.mark.parametrize("seed", range(4))
def test_a_delta_applied_whole_equals_its_rows_one_by_one(seed):
    """Several rows per content, minute and type (a snapshot's parts), rows without content, nulls,
    late, future and too old rows, zero counts, dense sketches, contents leaving after three days
    and coming back (their array slots are reused)."""
    rng = random.Random(seed)
    contents = [f"c{i}" for i in range(6)]
    now = float(T0 + 7)
    whole, by_row = LiveCounters(now=now), LiveCounters(now=now)
    for _ in range(120):
        minute_now = int(now // 60)
        batch = []
        for _ in range(rng.choice([0, 1, 4, 12, 30])):
            age = rng.choice([0, 0, 0, 1, 3, rng.randint(0, 70), rng.randint(0, 1500), rng.randint(1400, 4400), -1])
            many = rng.random() < 0.03
            hashes = [rng.getrandbits(64) for _ in range(rng.randint(2100, 2400) if many else rng.randint(0, 3))]
            batch.append(
                {
                    "minute": (minute_now - age) * 60,
                    "content_id": rng.choice([*contents, "", None]),
                    "event_type": rng.choice([*TYPES, "content_bookmark"]),
                    "events": rng.choice([1, 1, 2, 7, 0]),
                    "watch_seconds": rng.choice(
                        [0.0, None, round(rng.uniform(0, 500), rng.randint(0, 6)), rng.random()]
                    ),
                    "users": rng.choice([hashes, hashes + [rng.randint(1, 20)], None]),
                    "sessions": rng.choice([[rng.randint(1, 30)], [], None]),
                    "last_event_ms": rng.choice([None, (minute_now - age) * 60_000 + rng.randint(0, 59_999)]),
                }
            )
        if batch:
            whole.apply(_table(batch), now=now)
            for row in batch:
                by_row.apply(pa.Table.from_pylist([row], schema=DELTA_SCHEMA), now=now)
        if rng.random() < 0.5:
            _same(whole, by_row, contents, now + rng.choice([0, 30]))
        now += rng.choice([0, 20, 60, 180, 3600, rng.randint(1, 1500) * 60, rng.randint(4000, 4400) * 60])
    _same(whole, by_row, contents, now)
    _same(whole, by_row, contents, now + 3 * 1441 * 60)
    assert whole.content_ids() == [] and whole.trending_table(now=now + 3 * 1441 * 60).num_rows == 0


def test_a_content_that_comes_back_starts_from_zero():
    """A content dropped after three days frees its slot; whatever takes it starts from nothing."""
    c = LiveCounters(now=T0)
    c.apply(rows((T0, "a", "content_share", 4, [1])), now=T0)
    later = T0 + 3 * 1440 * 60 + 60
    c.apply(rows((later - later % 60, "b", "content_view", 1, [2])), now=later)
    assert c.content_ids() == ["b"]
    trend = c.content_view("b", now=later)["windows"]["24h"]["trending"]
    assert trend["activity"] == 1.0 and trend["baseline_per_minute"] == 0.0
    (row,) = c.trending_table(now=later).to_pylist()
    assert row["content_id"] == "b" and row["activity_24h"] == 1.0
    assert row["last_event_ms"] == (later - later % 60) * 1000 + 1
    assert row["popularity_5m"] == c.content_view("b", now=later)["windows"]["5m"]["trending"]["popularity"]
