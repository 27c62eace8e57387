"""Journeys and next-content transitions on real chDB, against a Python reference over the same rows.

The rows are built by hand for the cases the statements must get right (timestamps tied within a
millisecond and broken by event id, a content viewed twice in a row, a view that names its content
only in properties, a view naming none, sessions crossing the boundary between the two periods and
the edges of the window, events without a session) and come with a generated realistic mix and
one bot-like session of thousands of events. Every answer is recomputed here in Python from the
rows inserted, not from the statements.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from core.taxonomy import default_category
from semantic.behavior import BehaviorService
from semantic.content import ContentAnalyticsService
from semantic.content_metadata import ContentMetadataStore
from semantic.journeys import (
    MAX_EVENTS_PER_SESSION,
    JourneyService,
    JourneyStep,
    content_journey_sql,
    raw_session_rows,
    session_steps,
    transitions_sql,
)
from semantic.periods import Period, period_label, utc_text
from semantic.users import UserAnalyticsService
from storage import clickhouse
from storage.event_keys import CONTENT_KEY
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from tests.semantic.conftest import InProcessStore, create_statements, open_store, release_before
from tests.semantic.generator import generate

PERIOD = Period(date(2025, 3, 8), date(2025, 3, 14))
PREVIOUS = PERIOD.previous()
P0 = PERIOD.start
WINDOW = "timestamp >= {w_start:DateTime64(3, 'UTC')} AND timestamp < {w_end:DateTime64(3, 'UTC')}"
PAGE_TYPES = ("content_view", "search_query", "page_view")
MIGRATION = "015_session_steps.sql"
BOT_EVENTS = 3_000
SOURCES = ("session_steps", "events")


@dataclass(frozen=True)
class Row:
    id: str
    timestamp: datetime
    event_type: str
    session_id: str = ""
    user_id: str = ""
    content_id: str = ""
    properties: str = "{}"
    device_type: str = "desktop"

    @property
    def content_key(self) -> str:
        if self.content_id:
            return self.content_id
        value = orjson.loads(self.properties).get("content_id")
        return value if isinstance(value, str) else ""

    @property
    def query(self) -> str:
        value = orjson.loads(self.properties).get("query")
        return value.strip(" ").lower() if isinstance(value, str) else ""

    @property
    def order(self) -> tuple[datetime, str]:
        return self.timestamp, self.id


def _at(minutes: float) -> datetime:
    return P0 + timedelta(minutes=minutes)


def _hand_built() -> list[Row]:
    t0 = _at(600)  # 10:00 on the period's first day
    ms = timedelta(milliseconds=1)
    s = timedelta(seconds=1)
    tie = {"session_id": "s-tie", "user_id": "u-tie"}
    cross = {"session_id": "s-cross", "user_id": "u-cross"}
    edge = {"session_id": "s-edge", "user_id": "u-cross"}
    return [
        # Two views in the same millisecond: "t-a" sorts before "t-b", so B comes before A.
        Row("t-b", t0, "content_view", content_id="A", **tie),
        Row("t-a", t0, "content_view", content_id="B", **tie),
        Row("t-c", t0 + s, "content_view", content_id="A", **tie),  # A, A: a repeat, not a move
        Row("t-d", t0 + 2 * s, "content_view", content_id="C", **tie),
        Row("t-e", t0 + 3 * s, "search_query", properties='{"query": " Desert Film "}', **tie),
        Row("t-f", t0 + 4 * s, "content_view", content_id="C", **tie),
        Row("t-g", t0 + 5 * s, "page_view", **tie),
        Row("t-h", t0 + 6 * s, "content_play", content_id="C", **tie),  # not a step
        Row("t-i", t0 + 7 * s, "content_view", properties='{"content_id": "D"}', **tie),  # D from properties
        Row("t-j", t0 + 8 * s, "content_view", properties='{"duration_seconds": 3}', **tie),  # names no content
        Row("t-k", t0 + 9 * s, "content_view", content_id="A", **tie),
        Row("t-l", t0 + 9 * s + ms, "content_view", content_id="B", **tie),
        # Ids that sort differently as text and as numbers, in one millisecond.
        Row("t-10", t0 + 20 * s, "content_view", content_id="E", **tie),
        Row("t-9", t0 + 20 * s, "content_view", content_id="A", **tie),
        # Without a session: never a step or a transition.
        Row("n-1", t0 + 30 * s, "content_view", content_id="A", user_id="u-tie"),
        Row("n-2", t0 + 31 * s, "content_view", content_id="B", user_id="u-tie"),
        # Across the boundary between the periods: C -> A counts in the previous period, A -> B in this one.
        Row("c-1", _at(-30), "content_view", content_id="C", **cross),
        Row("c-2", _at(-10), "content_view", content_id="A", **cross),
        Row("c-3", _at(5), "content_view", content_id="B", **cross),
        Row("c-4", _at(6), "search_query", properties='{"query": "dunes"}', **cross),
        # At the edges of the window: the view before it and the one after it take no part.
        Row("w-1", PREVIOUS.start - timedelta(minutes=1), "content_view", content_id="E", **edge),
        Row("w-2", PREVIOUS.start + timedelta(minutes=1), "content_view", content_id="A", **edge),
        Row("w-3", PREVIOUS.start + timedelta(minutes=2), "content_view", content_id="C", **edge),
        Row("w-4", PERIOD.end - ms, "content_view", content_id="A", **edge),
        Row("w-5", PERIOD.end, "content_view", content_id="B", **edge),
    ]


def _bot_session() -> list[Row]:
    """A crawler: thousands of views of many items a second or two apart, some reloads, some ties,
    from before the boundary between the periods to after it."""
    rng = np.random.default_rng(11)
    gaps = rng.integers(0, 2_500, BOT_EVENTS) * (rng.random(BOT_EVENTS) < 0.9)  # some 0: ties broken by id
    moments = [_at(-40) + timedelta(milliseconds=int(ms)) for ms in np.cumsum(gaps)]
    kinds = np.where(rng.random(BOT_EVENTS) < 0.08, "page_view", "content_view")
    items = rng.integers(0, 60, BOT_EVENTS)
    reload = rng.random(BOT_EVENTS) < 0.1
    rows = []
    previous = 0
    for i in range(BOT_EVENTS):
        item = previous if reload[i] else int(items[i])
        previous = item
        is_view = kinds[i] == "content_view"
        rows.append(
            Row(
                f"bot-{rng.integers(0, 10**9):09d}-{i}",
                moments[i],
                str(kinds[i]),
                session_id="s-bot",
                user_id="u-bot",
                content_id=f"gc{item}" if is_view else "",
                device_type="bot",
            )
        )
    return rows


def _generated() -> list[Row]:
    table = generate(
        6_000, start=PREVIOUS.start - timedelta(days=1), days=16, seed=3, prefix="g", contents=25, users=40
    )
    return [
        Row(
            r["id"],
            r["timestamp"],
            r["event_type"],
            session_id=r["session_id"],
            user_id=r["user_id"],
            content_id=r["content_id"],
            properties=r["properties"],
            device_type=r["device_type"],
        )
        for r in table.to_pylist()
    ]


def _table(rows: list[Row]) -> pa.Table:
    n = len(rows)
    columns: dict[str, Any] = {name: [""] * n for name in EVENT_SCHEMA.names}
    columns.update(
        id=[r.id for r in rows],
        event_type=[r.event_type for r in rows],
        event_category=[default_category(r.event_type) for r in rows],
        timestamp=[r.timestamp for r in rows],
        user_id=[r.user_id for r in rows],
        session_id=[r.session_id for r in rows],
        content_id=[r.content_id for r in rows],
        properties=[r.properties for r in rows],
        processed_at=[PERIOD.end + timedelta(days=1)] * n,
        device_type=[r.device_type for r in rows],
    )
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)


def _title(content_id: str) -> str:
    return f"Title of {content_id}"


def _title_of(row: Row) -> str | None:
    return _title(row.content_key) if row.content_key else None


@dataclass
class Dataset:
    store: ClickHouseEvents
    rows: list[Row]

    @property
    def reader(self) -> InProcessStore:
        return InProcessStore(self.store)

    def journeys(self) -> JourneyService:
        metadata = ContentMetadataStore(self.reader)
        return JourneyService(
            self.reader,
            ContentAnalyticsService(self.reader, metadata),
            UserAnalyticsService(self.reader),
            metadata,
        )


@pytest.fixture(scope="module")
def data(chdb_dir: Path) -> Iterator[Dataset]:
    store = open_store(chdb_dir, f"journeys_{secrets.token_hex(4)}")
    rows = _hand_built() + _bot_session() + _generated()
    assert len({r.id for r in rows}) == len(rows)
    table = _table(rows)
    for offset in range(0, table.num_rows, 2_000):  # several inserts, as the service stores them
        store.insert(table.slice(offset, 2_000), f"journeys-{offset}")
    titled = sorted({r.content_key for r in rows if r.content_key})
    store.insert_table(
        "content_metadata_updates",
        pa.table(
            {
                "content_id": titled,
                "title": [_title(c) for c in titled],
                "updated_at": pa.array([datetime(2030, 1, 1, tzinfo=UTC)] * len(titled), pa.timestamp("ms", "UTC")),
            }
        ),
    )
    yield Dataset(store, rows)
    store.close()


# --- the Python reference ----------------------------------------------------------------------


def _label(moment: datetime) -> str:
    if PERIOD.start <= moment < PERIOD.end:
        return "0"
    if PREVIOUS.start <= moment < PREVIOUS.end:
        return "1"
    return ""


def _in_window(row: Row) -> bool:
    return PREVIOUS.start <= row.timestamp < PERIOD.end


def _by_session(rows: list[Row]) -> dict[str, list[Row]]:
    sessions: dict[str, list[Row]] = {}
    for row in rows:
        sessions.setdefault(row.session_id, []).append(row)
    return {sid: sorted(steps, key=lambda r: r.order) for sid, steps in sessions.items()}


def expected_transitions(rows: list[Row], limit: int) -> list[tuple[str, str, int, int]]:
    views = [
        r
        for r in rows
        if r.event_type == "content_view" and r.session_id and r.content_key and _in_window(r) and _label(r.timestamp)
    ]
    counts: Counter[tuple[str, str, str]] = Counter()
    for steps in _by_session(views).values():
        for before, after in zip(steps, steps[1:], strict=False):
            if before.content_key != after.content_key:
                counts[(before.content_key, after.content_key, _label(after.timestamp))] += 1
    pairs = {(a, b) for a, b, _ in counts}
    found = [(a, b, counts[(a, b, "0")], counts[(a, b, "1")]) for a, b in pairs if counts[(a, b, "0")]]
    return sorted(found, key=lambda t: (-t[2], t[0], t[1]))[:limit]


def _step(row: Row) -> str:
    if row.event_type == "content_view":
        return f"content:{row.content_key}"
    return "search" if row.event_type == "search_query" else "page"


def expected_content_journey(rows: list[Row], content_id: str) -> Counter[tuple[str, str, str]]:
    """(label, before, after) -> views of the content, in sessions with a view whose content_id is it."""
    sessions = {
        r.session_id
        for r in rows
        if r.content_id == content_id and r.event_type == "content_view" and r.session_id and _in_window(r)
    }
    steps = [r for r in rows if r.event_type in PAGE_TYPES and r.session_id in sessions and _in_window(r)]
    out: Counter[tuple[str, str, str]] = Counter()
    for ordered in _by_session(steps).values():
        names = [_step(r) for r in ordered]
        for i, row in enumerate(ordered):
            if names[i] == f"content:{content_id}":
                label = "0" if row.timestamp >= PERIOD.start else "1"
                before = names[i - 1] if i > 0 else "entry"
                after = names[i + 1] if i + 1 < len(names) else "exit"
                out[(label, before, after)] += 1
    return out


# --- statements --------------------------------------------------------------------------------


def _params(**extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"w_start": utc_text(PREVIOUS.start), "w_end": utc_text(PERIOD.end), **extra}
    return params


def _content_journey_rows(
    store: ClickHouseEvents, content_id: str, source: str, settings: str = ""
) -> Counter[tuple[str, str, str]]:
    params = _params(cid=content_id, step=f"content:{content_id}", split=int(PERIOD.start.timestamp() * 1000))
    result = store.query(content_journey_sql(WINDOW, source) + settings, params)
    return Counter({(lbl, before, after): int(n) for lbl, before, after, n in result.rows})


def _transitions_sql(limit: int, source: str) -> tuple[str, dict[str, Any]]:
    params = _params(transitions_limit=limit)
    label = period_label("timestamp", [PERIOD, PREVIOUS], params)
    views = session_steps(f"event_type = 'content_view' AND {WINDOW}", source)
    return transitions_sql(views, WINDOW, label), params


def _transitions_rows(data: Dataset, limit: int, source: str, settings: str = "") -> list[tuple[str, str, int, int]]:
    sql, params = _transitions_sql(limit, source)
    result = data.store.query(sql + settings, params)
    return [(a, b, int(now), int(before)) for a, b, now, before in result.rows]


def test_the_dataset_has_the_cases_it_is_for(data: Dataset) -> None:
    views = [r for r in data.rows if r.event_type == "content_view" and r.session_id]
    assert Counter(r.session_id for r in data.rows)["s-bot"] == BOT_EVENTS
    assert any(
        a.order[0] == b.order[0] and a.session_id == b.session_id for a, b in zip(views, views[1:], strict=False)
    )
    assert {_label(r.timestamp) for r in data.rows if r.session_id == "s-bot"} == {"0", "1"}
    assert expected_transitions(data.rows, 1000)  # the reference finds pairs in both periods
    assert any(t[3] for t in expected_transitions(data.rows, 1000))


def test_raw_session_rows_give_the_content_key_of_every_view(data: Dataset) -> None:
    params = _params()
    views = raw_session_rows(f"event_type = 'content_view' AND {WINDOW}")
    pruned = data.store.query(f"SELECT id, content_key FROM {views} ORDER BY id", params)
    whole = data.store.query(
        f"SELECT id, {CONTENT_KEY} FROM events WHERE event_type = 'content_view' AND session_id != '' AND {WINDOW} "
        "ORDER BY id",
        params,
    )
    assert pruned.rows == whole.rows
    expected = sorted(
        (r.id, r.content_key) for r in data.rows if r.event_type == "content_view" and r.session_id and _in_window(r)
    )
    assert [tuple(r) for r in pruned.rows] == expected
    assert ("t-i", "D") in expected and ("t-j", "") in expected


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("limit", [1, 5, 100, 100_000])
def test_transitions_equal_the_reference(data: Dataset, limit: int, source: str) -> None:
    assert _transitions_rows(data, limit, source) == expected_transitions(data.rows, limit)


def test_transitions_of_the_hand_built_sessions(data: Dataset) -> None:
    hand = [r for r in data.rows if r.session_id in ("s-tie", "s-cross", "s-edge")]
    found = {(a, b): (now, before) for a, b, now, before in expected_transitions(hand, 100)}
    # s-tie: B (t-a), A (t-b), A, C, C, D, A, B, E (t-10), A (t-9); the view naming no content is skipped.
    # s-cross: C, A (previous period), B (this one). s-edge: A, C (previous period), A (this one's last ms).
    assert found == {
        ("B", "A"): (1, 0),
        ("A", "C"): (1, 1),
        ("C", "D"): (1, 0),
        ("D", "A"): (1, 0),
        ("A", "B"): (2, 0),
        ("B", "E"): (1, 0),
        ("E", "A"): (1, 0),
        ("C", "A"): (1, 1),
    }


def _steps(store: ClickHouseEvents, source: str) -> list[tuple[Any, ...]]:
    sql = f"SELECT session_id, timestamp, id, event_type, content_key FROM {session_steps('1', source)}"
    return sorted(tuple(row) for row in store.query(sql + " ORDER BY session_id, timestamp, id").rows)


def _expected_steps(rows: list[Row]) -> list[tuple[Any, ...]]:
    return sorted(
        (r.session_id, r.timestamp.replace(tzinfo=None), r.id, r.event_type, r.content_key)
        for r in rows
        if r.session_id and r.event_type in PAGE_TYPES
    )


def _below_the_window(data: Dataset, sql: str, params: dict[str, Any]) -> str:
    plan = "\n".join(row[0] for row in data.store.query(f"EXPLAIN PIPELINE {sql}", params).rows)
    return plan.split("WindowTransform")[-1]


def test_transitions_on_session_steps_read_them_in_their_stored_order(data: Dataset) -> None:
    """No sort of the window's views: the window function takes session_steps' rows as stored."""
    below = _below_the_window(data, *_transitions_sql(10, "session_steps"))
    assert "InOrder" in below and "PartialSortingTransform" not in below
    assert "PartialSortingTransform" in _below_the_window(data, *_transitions_sql(10, "events"))


def test_session_steps_hold_every_step_once(data: Dataset) -> None:
    assert _steps(data.store, "session_steps") == _steps(data.store, "events") == _expected_steps(data.rows)
    with pytest.raises(ValueError, match="unknown source"):
        session_steps("1", "session_rollup")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("content_id", ["A", "B", "C", "E", "gc3", "gc7", "gc21"])
def test_content_journey_rows_equal_the_reference(data: Dataset, content_id: str, source: str) -> None:
    expected = expected_content_journey(data.rows, content_id)
    assert expected
    assert _content_journey_rows(data.store, content_id, source) == expected


def test_content_journey_of_the_hand_built_steps(data: Dataset) -> None:
    found = expected_content_journey([r for r in data.rows if r.session_id in ("s-tie", "s-cross")], "A")
    assert found == Counter(
        {
            ("0", "content:B", "content:A"): 1,  # t-b, after t-a in the same millisecond
            ("0", "content:A", "content:C"): 1,  # t-c
            ("0", "content:", "content:B"): 1,  # t-k, after the view naming no content
            ("0", "content:E", "exit"): 1,  # t-9, after t-10 in the same millisecond
            ("1", "content:C", "content:B"): 1,  # c-2, in the previous period
        }
    )


@pytest.mark.parametrize("source", SOURCES)
def test_a_session_of_thousands_of_steps_stays_within_a_small_memory_budget(data: Dataset, source: str) -> None:
    """Copying a session per step (what an ARRAY JOIN over a session's array does) needs gigabytes
    for BOT_EVENTS steps; pairing neighbours needs almost nothing."""
    budget = " SETTINGS max_memory_usage = 60000000"
    bot_items = Counter(r.content_id for r in data.rows if r.session_id == "s-bot" and r.content_id)
    busiest = bot_items.most_common(1)[0][0]
    assert _content_journey_rows(data.store, busiest, source, budget) == expected_content_journey(data.rows, busiest)
    assert _transitions_rows(data, 100, source, budget) == expected_transitions(data.rows, 100)


# --- the services ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
async def test_behavior_patterns_transitions(data: Dataset, source: str) -> None:
    service = BehaviorService(data.reader, ContentMetadataStore(data.reader))
    for limit in (3, 100):
        patterns = await service.patterns(PERIOD, transitions=limit, steps_source=source)
        found = [(t.from_content_id, t.to_content_id, t.count, t.previous_count) for t in patterns.transitions]
        assert found == expected_transitions(data.rows, limit)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("content_id", "limit"), [("A", 20), ("gc5", 3), ("gc11", 20)])
async def test_content_journey_service(data: Dataset, source: str, content_id: str, limit: int) -> None:
    journey = await data.journeys().content_journey(content_id, PERIOD, limit=limit, source=source)
    expected = expected_content_journey(data.rows, content_id)
    now = sum(n for (label, _, _), n in expected.items() if label == "0")
    assert (journey.views_in_sessions, journey.previous_views_in_sessions) == (now, sum(expected.values()) - now)

    def ranked(side: int) -> list[tuple[str, int, int, str | None]]:
        counts: dict[str, list[int]] = {}
        for (label, *steps), n in expected.items():
            counts.setdefault(steps[side], [0, 0])[int(label)] += n
        top = sorted(((s, c[0], c[1]) for s, c in counts.items() if c[0]), key=lambda t: (-t[1], t[0]))[:limit]
        return [(s, n, p, _title(s[8:]) if s.startswith("content:") and s != "content:" else None) for s, n, p in top]

    def shown(steps: list[JourneyStep]) -> list[tuple[str, int, int, str | None]]:
        return [(s.step, s.views, s.previous_views, s.title) for s in steps]

    assert shown(journey.before) == ranked(0)
    assert shown(journey.after) == ranked(1)
    paths = Counter({(b, a): n for (label, b, a), n in expected.items() if label == "0"})
    top_paths = sorted(paths.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    assert [(p.before, p.after, p.views) for p in journey.paths] == [(b, a, n) for (b, a), n in top_paths]
    # A content in the crawler's session has more neighbours than are shown.
    if content_id == "gc5":
        assert len({b for _, b, _ in expected}) > limit


def _expected_user(rows: list[Row], user_id: str, sessions: int) -> dict[str, Any]:
    mine = [r for r in rows if r.user_id == user_id]
    current = [r for r in mine if _label(r.timestamp) == "0"]
    grouped = _by_session(current)
    ordered = sorted(grouped.items(), key=lambda kv: (-kv[1][0].timestamp.timestamp(), kv[0]))[:sessions]
    return {
        "sessions_in_period": len({r.session_id for r in current if r.session_id}),
        "events_in_period": len(current),
        "previous": (
            len({r.session_id for r in mine if r.session_id and _label(r.timestamp) == "1"}),
            sum(1 for r in mine if _label(r.timestamp) == "1"),
        ),
        "sessions": [
            (
                sid or None,
                steps[0].timestamp,
                steps[-1].timestamp,
                len(steps) > MAX_EVENTS_PER_SESSION,
                [
                    (r.timestamp, r.id, r.event_type, r.content_key or None, r.query or None, _title_of(r))
                    for r in steps
                ][:MAX_EVENTS_PER_SESSION],
            )
            for sid, steps in ordered
        ],
        "transitions": expected_transitions(mine, 10),
    }


@pytest.mark.parametrize("user_id", ["u-tie", "u-cross", "u-bot", "gu3", "gu17"])
async def test_user_journey_equals_the_reference(data: Dataset, user_id: str) -> None:
    sessions = 100
    journey = await data.journeys().user_journey(user_id, PERIOD, sessions=sessions)
    expected = _expected_user(data.rows, user_id, sessions)
    assert (journey.sessions_in_period, journey.events_in_period) == (
        expected["sessions_in_period"],
        expected["events_in_period"],
    )
    assert (journey.comparison["sessions"].previous, journey.comparison["events"].previous) == expected["previous"]
    assert [
        (
            s.session_id,
            s.started,
            s.ended,
            s.truncated,
            [(e.timestamp, e.id, e.event_type, e.content_id, e.query, e.title) for e in s.events],
        )
        for s in journey.sessions
    ] == expected["sessions"]
    moves = [(t.from_content_id, t.to_content_id, t.count, t.previous_count) for t in journey.transitions]
    assert moves == expected["transitions"]
    assert [(t.from_title, t.to_title) for t in journey.transitions] == [
        (_title(a), _title(b)) for a, b, _, _ in expected["transitions"]
    ]


async def test_a_bot_users_sessions_are_cut_at_the_first_events(data: Dataset) -> None:
    journey = await data.journeys().user_journey("u-bot", PERIOD)
    (bot,) = [s for s in journey.sessions if s.session_id == "s-bot"]
    assert bot.truncated and len(bot.events) == MAX_EVENTS_PER_SESSION
    in_period = sorted(r.order for r in data.rows if r.session_id == "s-bot" and _label(r.timestamp) == "0")
    assert [(e.timestamp, e.id) for e in bot.events] == in_period[:MAX_EVENTS_PER_SESSION]
    assert datetime(2025, 3, 8, tzinfo=UTC) <= bot.started


# --- session_steps on a database made before it -------------------------------------------------


@pytest.fixture
def open_old(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ClickHouseEvents]:
    return release_before(MIGRATION, chdb_dir, monkeypatch)


def test_an_upgrade_copies_the_stored_steps_and_later_ones_arrive_once(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"journeys_{secrets.token_hex(4)}"
    rows = _hand_built() + _generated()
    before, after = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    old = open_old(database)
    old.insert(_table(before), "before")
    assert not old.query("EXISTS TABLE session_steps").rows[0][0]
    old.close()

    store = open_store(chdb_dir, database)
    assert _steps(store, "session_steps") == _expected_steps(before)
    store.insert(_table(after), "after")
    assert _steps(store, "session_steps") == _expected_steps(rows)
    assert _content_journey_rows(store, "A", "session_steps") == expected_content_journey(rows, "A")
    store.close()


def test_a_migration_cut_short_fills_the_copy_once_on_the_next_start(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"journeys_{secrets.token_hex(4)}"
    rows = _hand_built() + _generated()
    old = open_old(database)
    old.insert(_table(rows), "before")
    # The process died after the copy was filled and its view made, before the migration was recorded.
    (sql,) = [sql for _, name, sql in clickhouse.migration_files() if name == MIGRATION]
    for statement in clickhouse._statements(Template(sql).substitute(retention_days=3650)):
        old.client.command(statement)
    old.close()

    store = open_store(chdb_dir, database)
    assert _steps(store, "session_steps") == _expected_steps(rows)
    store.close()


def test_a_new_and_an_upgraded_database_have_the_same_session_steps(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    upgraded_name, fresh_name = f"journeys_{secrets.token_hex(4)}", f"journeys_{secrets.token_hex(4)}"
    open_old(upgraded_name).close()
    upgraded, fresh = open_store(chdb_dir, upgraded_name), open_store(chdb_dir, fresh_name)
    schemas = create_statements(upgraded, upgraded_name), create_statements(fresh, fresh_name)
    for name in ("session_steps", "session_steps_mv"):
        assert schemas[0][name] == schemas[1][name]
    assert "events_rollup_feed" in schemas[1]["session_steps_mv"]
    upgraded.close()
    fresh.close()
