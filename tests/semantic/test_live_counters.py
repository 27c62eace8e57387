"""The live counters on a fixed clock: windows, periods, decay, expiry and the global figures."""

import math

import pyarrow as pa
import pytest

from semantic.live_counters import DELTA_SCHEMA, SECONDS_SCHEMA, LiveCounters, merge_global

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
    c.apply(rows((T0, "a", "content_view", 4, [1, 2]), (T0 - 3 * 60, "a", "content_share", 1, [3]),
                 (T0 - 70 * 60, "a", "content_view", 6, [4])), now=T0 + 10)
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
    c.apply(rows((T0, "a", "content_view", 3, [1]), (T0, "b", "content_complete", 2, [2]), (T0, "", "search_query", 5, [9])), now=T0)
    table = c.trending_table(now=T0 + 30).to_pylist()
    by_id = {r["content_id"]: r for r in table}
    assert set(by_id) == {"a", "b"}
    assert by_id["b"]["activity_5m"] == 6.0
    assert by_id["a"]["score_1h"] == pytest.approx(c.content_view("a", now=T0 + 30)["windows"]["1h"]["trending"]["score"])
    assert math.isclose(by_id["a"]["popularity_24h"], 3 * 2 ** (-(30 / 60) / 360))


def test_global_figures_merge_shards():
    a, b = LiveCounters(now=T0), LiveCounters(now=T0)
    a.apply(rows((T0, "x", "content_view", 2, [1, 2])), pa.table({"second": [T0 + 5], "events": [2]}, schema=SECONDS_SCHEMA), now=T0 + 6)
    b.apply(rows((T0, "y", "search_query", 3, [2, 3])), pa.table({"second": [T0 + 6], "events": [3]}, schema=SECONDS_SCHEMA), now=T0 + 6)
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
