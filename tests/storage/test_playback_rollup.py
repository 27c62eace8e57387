"""Watch time kept per content and hour by the rollup feed, on real chDB: each fed range adds the
change it makes to the touched sessions' pieces, so late, out-of-order and re-fed events leave
exactly the pieces a from-scratch computation over every event gives."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from storage import playback_rollup
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from storage.playback_rollup import TABLE, event_rows, pieces_of, pieces_sql
from storage.rollup_feed import Claim
from tests.support import stored_events

T0 = datetime(2026, 3, 2, 10, 50, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _event(event_id: str, event_type: str, minutes: float, session: str, content: str = "c1", **extra: Any) -> dict:
    return {
        "id": event_id,
        "event_type": event_type,
        "timestamp": _at(minutes),
        "session_id": session,
        "content_id": content,
        "properties": orjson.dumps(extra).decode(),
    }


def _table(events: list[dict]) -> pa.Table:
    n = len(events)
    base = stored_events("unused", n, T0)
    columns = {name: base.column(name).to_pylist() for name in EVENT_SCHEMA.names}
    for name in ("id", "event_type", "timestamp", "session_id", "content_id", "properties"):
        columns[name] = [e[name] for e in events]
    columns["user_id"] = [e.get("user", "u-" + e["session_id"]) for e in events]
    return pa.table(columns, schema=EVENT_SCHEMA)


@pytest.fixture(params=["python", "python-evicting", "sql", "sql-past-the-touched-limit"])
def store(chdb_dir: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ClickHouseEvents:
    """A store whose feed steps compute the watch-time change in Python (the default for small steps),
    in Python holding so few recent rows that most touched sessions are read back, always in SQL, or
    in SQL after reading the touched rows and finding too many for Python."""
    opened = ClickHouseEvents.open(
        None, chdb_path=chdb_dir, database=f"playback_{secrets.token_hex(4)}", retention_days=3650
    )
    if request.param == "python-evicting":
        opened.rollups.recent.max_rows = 6
    if request.param == "sql":
        opened.rollups.python_delta_max_rows = 0
    if request.param == "sql-past-the-touched-limit":
        monkeypatch.setattr(playback_rollup, "PYTHON_DELTA_MAX_TOUCHED", 0)
    yield opened
    opened.close()


def _rollup(store: ClickHouseEvents) -> dict[tuple[str, str, str], int]:
    rows = store.query(
        f"SELECT content_id, toString(opened_hour), toString(closed_hour), sum(watch_ms) AS ms FROM {TABLE} "
        "GROUP BY content_id, opened_hour, closed_hour HAVING ms != 0"
    ).rows
    return {(c, o, cl): int(ms) for c, o, cl, ms in rows}


def _from_scratch(store: ClickHouseEvents) -> dict[tuple[str, str, str], int]:
    rows = store.query(
        "SELECT content_key, toString(toStartOfHour(fromUnixTimestamp64Milli(opened_ms, 'UTC'))) AS o, "
        "toString(toStartOfHour(fromUnixTimestamp64Milli(closed_ms, 'UTC'))) AS cl, sum(watch_ms) AS ms "
        f"FROM ({pieces_sql(event_rows('1'))}) GROUP BY content_key, o, cl HAVING ms != 0"
    ).rows
    return {(c, o, cl): int(ms) for c, o, cl, ms in rows}


def _feed(store: ClickHouseEvents, events: list[dict]) -> None:
    store.insert(_table(events), f"t-{secrets.token_hex(4)}")


def test_late_and_out_of_order_events_change_the_pieces_exactly(store: ClickHouseEvents) -> None:
    # s1: play 10:50, pause 10:51, resume 10:52, complete 10:55 -> 60 s + 180 s, all in hour 10.
    _feed(store, [_event("a1", "content_play", 0, "s1"), _event("a2", "content_pause", 1, "s1")])
    # s2: a view reporting 30 s, no play yet; s3: play 10:58 -> pause 11:08 (across the hour).
    _feed(
        store,
        [
            _event("b1", "content_view", 3, "s2", duration_seconds=30),
            _event("c1", "content_play", 8, "s3"),
            _event("c2", "content_pause", 18, "s3"),
            _event("a3", "content_resume", 2, "s1"),  # arrives before the complete that closes it
        ],
    )
    assert _rollup(store) == {
        ("c1", "2026-03-02 10:00:00", "2026-03-02 10:00:00"): 60_000 + 30_000,
        ("c1", "2026-03-02 10:00:00", "2026-03-02 11:00:00"): 600_000,
    }
    _feed(
        store,
        [
            _event("a4", "content_complete", 5, "s1"),
            # s2 plays after all: its reported 30 s no longer count; the open play adds nothing yet.
            _event("b2", "content_play", 4, "s2"),
            # A pause inside s3's segment, late: play 10:58 -> pause 11:00 is the piece now.
            _event("c3", "content_pause", 10, "s3"),
        ],
    )
    assert _rollup(store) == {
        ("c1", "2026-03-02 10:00:00", "2026-03-02 10:00:00"): 60_000 + 180_000,
        ("c1", "2026-03-02 10:00:00", "2026-03-02 11:00:00"): 120_000,
    }
    assert _rollup(store) == _from_scratch(store)


def test_a_shuffled_stream_fed_in_many_steps_matches_a_from_scratch_computation(store: ClickHouseEvents) -> None:
    rng = random.Random(7)
    events = []
    for s in range(120):
        content = f"c{s % 4}"
        minutes = rng.uniform(0, 300)
        if s % 5 == 0:
            events.append(
                _event(f"v{s}", "content_view", minutes, f"s{s}", content, duration_seconds=rng.randint(1, 90))
            )
            continue
        for k, kind in enumerate(
            rng.choice(
                [
                    ("content_play", "content_pause", "content_resume", "content_complete"),
                    ("content_play", "content_complete"),
                    ("content_play", "content_pause", "content_pause", "content_resume"),
                ]
            )
        ):
            minutes += rng.uniform(0.1, 40)
            events.append(_event(f"e{s}-{k}", kind, minutes, f"s{s}", content))
        if s % 7 == 0:
            events.append(_event(f"w{s}", "content_view", minutes, f"s{s}", content, duration_seconds=15))
    rng.shuffle(events)
    for start in range(0, len(events), 37):
        _feed(store, events[start : start + 37])
    expected = _from_scratch(store)
    assert sum(expected.values()) > 100 * 60_000
    assert len({key[1:] for key in expected}) > 5  # pieces within and across several hours
    assert _rollup(store) == expected


def test_a_re_fed_claim_does_not_count_its_pieces_twice(store: ClickHouseEvents) -> None:
    _feed(store, [_event("a1", "content_play", 0, "s1"), _event("a2", "content_pause", 2, "s1")])
    seq = store.insert_raw(
        _table([_event("a3", "content_resume", 3, "s1"), _event("a4", "content_pause", 4, "s1")]), "x"
    )
    store.rollups.feed_through(seq)
    once = _rollup(store)
    assert once == {("c1", "2026-03-02 10:00:00", "2026-03-02 10:00:00"): 180_000}
    # A writer that died before marking the claim done runs it again with the same token.
    claim = store.query(
        "SELECT first_seq, last_seq, token FROM rollup_feed_claims ORDER BY last_seq DESC LIMIT 1"
    ).rows[0]
    store.rollups._feed(Claim(int(claim[0]), int(claim[1]), claim[2]))
    assert _rollup(store) == once


def test_pieces_made_in_python_equal_the_sql_pieces(store: ClickHouseEvents) -> None:
    """User watch time makes pieces in Python (pieces_of); they must be exactly the SQL's."""
    rng = random.Random(11)
    kinds = ("content_play", "content_pause", "content_resume", "content_complete", "content_view")
    events = []
    for s in range(150):
        minutes = rng.uniform(0, 300)
        for k in range(rng.randint(1, 7)):
            # Whole minutes now and then, so several events of a session share a timestamp and
            # the (time, id) order decides.
            minutes += rng.choice((0, 0, 0.5, rng.uniform(0.1, 30)))
            kind = "content_view" if s % 10 == 0 else rng.choice(kinds)  # some sessions only report durations
            extra = (
                {"duration_seconds": rng.choice((12.3455, 0.0035, 1.9996, 90, 2.5))} if kind == "content_view" else {}
            )
            events.append(_event(f"e{s}-{rng.randint(0, 99)}-{k}", kind, minutes, f"s{s % 60}", f"c{s % 3}", **extra))
    _feed(store, events)
    rows = store.query(
        "SELECT content_key, session_key, toUnixTimestamp64Milli(timestamp), event_type, id, duration_seconds "
        f"FROM {event_rows('1')}"
    ).rows
    in_sql = store.query(
        f"SELECT content_key, opened_ms, closed_ms, watch_ms FROM ({pieces_sql(event_rows('1'))})"
    ).rows
    assert len(in_sql) > 50
    assert sorted(pieces_of(rows)) == sorted(tuple(row) for row in in_sql)


def _delta_by_pieces_of(rows: pa.Table, first_seq: int) -> list[tuple[str, datetime, datetime, int]]:
    """delta_table's answer from pieces_of, one session at a time, sorted as _hourly sorts."""
    names = ("content_key", "session_key", "at", "event_type", "id", "duration_seconds")
    every = list(zip(*(rows.column(name).to_pylist() for name in names), strict=True))
    earlier = [row for row, seq in zip(every, rows.column("stored_seq").to_pylist(), strict=True) if seq < first_seq]
    sums: dict[tuple[str, int, int], int] = {}
    for pieces, sign in ((pieces_of(every), 1), (pieces_of(earlier), -1)):
        for content, opened, closed, watch in pieces:
            key = (content, opened // 3_600_000 * 3600, closed // 3_600_000 * 3600)
            sums[key] = sums.get(key, 0) + sign * watch
    return [
        (c, datetime.fromtimestamp(o, UTC), datetime.fromtimestamp(e, UTC), w)
        for (c, o, e), w in sorted(sums.items(), key=lambda item: (item[0][0].encode(), item[0][1], item[0][2]))
        if w
    ]


@pytest.mark.parametrize("seed", range(6))
def test_delta_table_equals_the_pieces_of_each_session(seed: int) -> None:
    """The feed's watch-time change, made with array operations, equals pieces_of's row by row:
    ties in time decided by id, sessions that only report view durations, exact halves of a
    millisecond (rounded to even), earlier and new rows of the same session."""
    rng = random.Random(seed)
    kinds = ("content_play", "content_pause", "content_resume", "content_complete", "content_view")
    rows = []
    for s in range(0 if seed == 0 else rng.randint(60, 120)):  # seed 0: a step that touched nothing
        at = rng.randint(0, 47) * 3_600_000 + rng.randint(0, 3_599_999)
        only_views = s % 7 == 0
        for k in range(rng.randint(1, 8)):
            at += rng.choice((0, 0, 1, rng.randint(1, 2_000_000)))
            kind = "content_view" if only_views else rng.choice(kinds)
            duration = rng.choice((0.0625, 0.1875, 12.3455, 0.0, 90.0, 2.5)) if kind == "content_view" else 0.0
            content = rng.choice(("c-b", "c-a", "é", "c-a2", ""))
            event_id = f"e{rng.randint(0, 999)}-{s}-{k}"
            rows.append((content, f"s{s % 40}", at, kind, event_id, duration, rng.randint(1, 4)))
    table = pa.table(
        list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)],
        schema=pa.schema(
            [
                ("content_key", pa.string()),
                ("session_key", pa.string()),
                ("at", pa.int64()),
                ("event_type", pa.string()),
                ("id", pa.string()),
                ("duration_seconds", pa.float64()),
                ("stored_seq", pa.uint64()),
            ]
        ),
    )
    expected = _delta_by_pieces_of(table, first_seq=3)
    got = playback_rollup.delta_table(table, first_seq=3)
    assert list(zip(*(got.column(i).to_pylist() for i in range(4)), strict=True)) == expected
    assert len(expected) > 30 if seed else expected == []


def test_sessions_without_a_session_id_are_matched_across_feed_steps(store: ClickHouseEvents) -> None:
    # Without a session id the session is the user's ("user:<id>"); one client even sends that key as
    # its session id. Every earlier event of such a session must be found when a later step touches it.
    rng = random.Random(11)
    events = []
    for u in range(30):
        minutes = rng.uniform(0, 120)
        session = "" if u % 3 else f"user:u{u}"
        for k, kind in enumerate(("content_play", "content_pause", "content_resume", "content_complete")):
            minutes += rng.uniform(0.5, 20)
            # Half of the literal-key session's events come without the session id: the same session.
            sid = session if k % 2 == 0 else ""
            events.append({**_event(f"n{u}-{k}", kind, minutes, sid, f"c{u % 3}"), "user": f"u{u}"})
    rng.shuffle(events)
    for start in range(0, len(events), 9):
        _feed(store, events[start : start + 9])
    expected = _from_scratch(store)
    assert sum(expected.values()) > 30 * 60_000
    assert _rollup(store) == expected


def test_touched_sessions_are_read_back_only_when_their_rows_are_not_held(chdb_dir: Path) -> None:
    database = f"playback_{secrets.token_hex(4)}"
    store = ClickHouseEvents.open(None, chdb_path=chdb_dir, database=database, retention_days=3650)
    feed = store.rollups
    _feed(store, [_event("a1", "content_play", 0, "s1"), _event("b1", "content_play", 1, "s2")])
    _feed(store, [_event("a2", "content_pause", 2, "s1")])
    # Both steps found every touched session held (the first: nothing was stored before it).
    assert (feed.history_held_steps, feed.history_read_back_steps) == (2, 0)
    store.close()

    # Opened again, nothing is held: s1's earlier rows are read back once, then held.
    store = ClickHouseEvents.open(None, chdb_path=chdb_dir, database=database, retention_days=3650)
    feed = store.rollups
    _feed(store, [_event("a3", "content_resume", 3, "s1")])
    _feed(store, [_event("a4", "content_complete", 6, "s1"), _event("c1", "content_play", 7, "s3")])
    assert (feed.history_held_steps, feed.history_read_back_steps) == (1, 1)
    # s2, stored before the reopening and not touched since, is still only in events.
    _feed(store, [_event("b2", "content_complete", 9, "s2")])
    assert (feed.history_held_steps, feed.history_read_back_steps) == (1, 2)
    assert _rollup(store) == {("c1", "2026-03-02 10:00:00", "2026-03-02 10:00:00"): 120_000 + 180_000 + 480_000}
    # A step fed in SQL holds its rows too when every session it touches is held...
    feed.python_delta_max_rows = 0
    _feed(store, [_event("c2", "content_pause", 8, "s3")])
    feed.python_delta_max_rows = playback_rollup.PYTHON_DELTA_MAX_ROWS
    _feed(store, [_event("c3", "content_resume", 8.5, "s3")])
    assert (feed.history_held_steps, feed.history_read_back_steps) == (2, 2)
    # ... and a step too large to hold sends its sessions to be read back when next touched.
    feed.python_delta_max_rows, feed.recent.max_rows = 0, 0
    _feed(store, [_event("c4", "content_pause", 9, "s3")])
    feed.python_delta_max_rows, feed.recent.max_rows = playback_rollup.PYTHON_DELTA_MAX_ROWS, 300_000
    _feed(store, [_event("c5", "content_resume", 9.2, "s3"), _event("c6", "content_complete", 9.5, "s3")])
    assert (feed.history_held_steps, feed.history_read_back_steps) == (2, 3)
    # s3: 10:57-10:58, 10:58:30-10:59 and 10:59:12-10:59:30.
    assert _rollup(store) == {
        ("c1", "2026-03-02 10:00:00", "2026-03-02 10:00:00"): 120_000 + 180_000 + 480_000 + 60_000 + 30_000 + 18_000
    }
    assert _rollup(store) == _from_scratch(store)
    store.close()
